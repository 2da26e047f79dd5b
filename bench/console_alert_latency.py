"""A new alert in an open alerts page: from the event posted to the ingest API to the row in
the browser's DOM (issue 11: within 2 s).

A real collector process (every component, the embedded store, the built-in detection
rules) with a one-system inventory and one enrolled agent; Debian's chromium (headless,
driven by selenium, as tests/integration/test_console_browser.py) signed in as an analyst
with /ui/alerts open. Each round posts one event over HTTPS to ``/v1/events`` as the agent
does — a user created with id 0 (``useradd -o -u 0``), which the rule
``canhgac_uid0_account`` turns into an alert; a new user name each round, so each is a new
alert, not an update of the last — and times it until the page shows a row it did not show
before. The page records that moment itself: a ``MutationObserver`` on the queue notes
``Date.now()`` when a new ``data-alert-id`` appears (installed through the WebDriver, so
the page's CSP, which forbids inline script, is untouched). Before each post a random
pause of up to one poll interval puts the post at a random point of the page's refresh
cycle, so the figures cover the whole cycle, not one phase of it.

    flock -x /tmp/canhgac-cpu.lock .venv/bin/python bench/console_alert_latency.py --rounds 40
    .venv/bin/python bench/console_alert_latency.py --poll 2s --rounds 20   # another interval
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import percentile, start_collector
from canhgac.schema import new_event
from canhgac.timeutil import parse_duration
from canhgac.tls import client_context
from collector.auth import AuthStore
from collector.search.model import Scope
from collector.search.operators import DB_NAME, OperatorStore

INVENTORY = {"province": "Thừa Thiên Huế", "systems": [{
    "id": "cong-ttdt", "name": "Cổng thông tin điện tử tỉnh", "unit": "Sở Thông tin và Truyền thông",
    "level": 3, "hosts": ["bench-01"]}]}

# Records, in the page, when each alert row first appears (epoch ms, the machine's clock).
OBSERVE = """
const q = document.getElementById('alert-queue');
window.__cg = {seen: {}};
const note = () => {
  for (const row of q.querySelectorAll('tr[data-alert-id]')) {
    const id = row.getAttribute('data-alert-id');
    if (!(id in window.__cg.seen)) window.__cg.seen[id] = Date.now();
  }
};
note();
new MutationObserver(note).observe(q, {childList: true, subtree: true});
"""


def uid0_event(n: int) -> dict[str, Any]:
    doc = new_event("iam", category=["iam"], type=["user", "creation"], action="useradd")
    doc["user"] = {"name": f"toor{n}", "id": "0"}
    doc["host"] = {"hostname": "bench-01", "name": "bench-01"}
    doc["message"] = f"useradd -o -u 0 toor{n}"
    return doc


def seen(driver: Any) -> dict[str, float]:
    return dict(driver.execute_script("return window.__cg.seen"))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--poll", default=None, help="console.poll_interval (default: the collector's)")
    ap.add_argument("--deadline", type=float, default=30.0, help="give up on a round after this")
    args = ap.parse_args()

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.fixtures.browser import console_errors, start_browser

    tmp = Path(tempfile.mkdtemp(prefix="canhgac-bench-alert-latency-"))
    state = tmp / "collector"
    state.mkdir(parents=True)
    inv = tmp / "inventory.yaml"
    inv.write_text(yaml.safe_dump(INVENTORY, allow_unicode=True), encoding="utf-8")
    ops = OperatorStore(state / DB_NAME)
    analyst = ops.create("bench-analyst", "analyst", Scope.everything())
    ops.close()
    auth = AuthStore(state / "auth.db")
    enroll = auth.create_enroll_token("cong-ttdt")
    auth.close()
    extra: dict[str, Any] = {"inventory": str(inv), "outputs": {"store": {}}}
    if args.poll:
        extra["console"] = {"poll_interval": args.poll}
    proc, url, ca = start_collector(tmp, extra)
    (tmp / "browser").mkdir()
    driver = None
    latencies: list[float] = []
    try:
        driver = start_browser(tmp / "browser")
        wait = WebDriverWait(driver, args.deadline, poll_frequency=0.05)
        driver.get(url + "/ui/login")
        driver.find_element(By.ID, "token").send_keys(analyst)
        driver.find_element(By.ID, "token").submit()
        wait.until(lambda d: "/ui/login" not in d.current_url)
        driver.get(url + "/ui/alerts")
        wait.until(lambda d: d.find_elements(By.ID, "alert-queue"))
        poll = float(driver.find_element(By.ID, "alert-queue").get_attribute("hx-trigger")
                     .split()[1].rstrip("s"))
        assert not args.poll or poll == parse_duration(args.poll)
        driver.execute_script(OBSERVE)
        rng = random.Random(11)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context(ca))) as s:
            async with s.post(f"{url}/v1/enroll", json={"token": enroll, "hostname": "bench-01"}) as r:
                body = await r.json()
            token = f"{body['agent_id']}.{body['secret']}"
            for n in range(args.rounds):
                known = set(seen(driver))
                await asyncio.sleep(rng.random() * poll)  # a random phase of the page's poll
                data = gzip.compress(orjson.dumps(uid0_event(n)), compresslevel=1)
                t0 = time.time() * 1000
                async with s.post(f"{url}/v1/events", data=data, headers={
                        "Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                        "X-Batch-Id": f"latency-{n}"}) as r:
                    assert r.status == 200, await r.text()
                new = wait.until(lambda d, known=known: [t for i, t in seen(d).items()
                                                         if i not in known])
                latencies.append(new[0] - t0)
                print(f"round {n + 1:3d}: {latencies[-1]:7.0f} ms", flush=True)
        errors = console_errors(driver)
        assert not errors, "browser console errors:\n" + "\n".join(errors)
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(15)
    print(f"console.poll_interval {poll:g} s, {len(latencies)} alerts: event posted -> row in the "
          f"open page: p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} "
          f"ms, max {max(latencies):.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
