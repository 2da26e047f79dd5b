"""Log rotation under load: rename and copytruncate rotations and probe restarts while a
writer appends continuously. Every line must arrive exactly once, in order per file."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import threading
import time

from agent.probes.auth_log import AuthLogConfig, AuthLogProbe
from agent.probes.base import ProbeContext

N_LINES = 30_000


def line(i: int) -> str:
    return (f"Nov 23 15:38:06 web1 sshd[{i}]: Failed password for invalid user u{i} from "
            f"10.1.{i % 256}.{i // 256 % 256} port {i % 65536} ssh2")


class Writer(threading.Thread):
    """Appends lines like rsyslog: keeps its fd, reopens only when told (after HUP)."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.lock = threading.Lock()
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self.written = 0
        self.reopen = False
        # The last tenth waits for the test's rotations: how fast the writer runs
        # (it competes for the GIL with the probe) must not decide how many happen.
        self.may_finish = threading.Event()

    def run(self) -> None:
        rnd = random.Random(7)
        while self.written < N_LINES:
            with self.lock:
                if self.reopen:
                    os.close(self.fd)
                    self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                    self.reopen = False
                if self.written >= N_LINES * 9 // 10 and not self.may_finish.is_set():
                    time.sleep(0.001)  # held back, but still reopening when told
                    continue
                n = min(rnd.randint(1, 50), N_LINES - self.written)
                data = "".join(line(self.written + k) + "\n" for k in range(n))
                os.write(self.fd, data.encode())
                self.written += n
            time.sleep(0.0005)
        os.close(self.fd)


def rotate_rename(path: str, w: Writer) -> None:
    for k in range(8, 0, -1):
        if os.path.exists(f"{path}.{k}"):
            os.rename(f"{path}.{k}", f"{path}.{k + 1}")
    os.rename(path, path + ".1")
    time.sleep(0.01)  # the writer keeps writing to the renamed file for a moment
    w.reopen = True


def rotate_copytruncate(path: str, w: Writer) -> None:
    for k in range(8, 0, -1):
        if os.path.exists(f"{path}.{k}"):
            os.rename(f"{path}.{k}", f"{path}.{k + 1}")
    # Under the writer's lock: copytruncate's own race (lines between copy and
    # truncate) is not ours to test.
    with w.lock:
        shutil.copyfile(path, path + ".1")
        os.truncate(path, 0)


async def test_rotation_under_load_no_loss_no_duplicate(tmp_path):
    path = str(tmp_path / "auth.log")
    state = tmp_path / "state"
    state.mkdir()
    seen: list[str] = []

    async def emit(events: list[dict]) -> None:
        await asyncio.sleep(0.001)  # a durable queue takes time
        seen.extend(e["event"]["original"] for e in events)

    instances: list[AuthLogProbe] = []

    def probe() -> AuthLogProbe:
        cfg = AuthLogConfig(paths=[path], start_at="beginning", journald="never",
                            poll_interval=0.01,
                            rotate_grace=0.1, batch_lines=500)
        instances.append(AuthLogProbe(cfg, ProbeContext("a", "h", state)))
        return instances[-1]

    w = Writer(path)
    w.start()
    task = asyncio.create_task(probe().run(emit))
    rotations = 0
    restarts = 0
    for _ in range(10_000):
        if not w.is_alive():
            break
        await asyncio.sleep(0.15)
        if rotations % 3 == 2:
            # Restart the probe: stop mid-file, rotate once while it is down.
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            restarts += 1
            await asyncio.sleep(0.05)
            (rotate_rename if restarts % 2 else rotate_copytruncate)(path, w)
            await asyncio.sleep(0.05)
            task = asyncio.create_task(probe().run(emit))
        else:
            (rotate_copytruncate if rotations % 2 else rotate_rename)(path, w)
        rotations += 1
        if rotations >= 6 and restarts >= 2:
            w.may_finish.set()
    w.join()
    for _ in range(600):
        if len(seen) >= N_LINES:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert rotations >= 6 and restarts >= 2
    ids = sorted(int(s.split("[")[1].split("]")[0]) for s in seen)
    missing = sorted(set(range(N_LINES)) - set(ids))
    assert len(seen) == N_LINES, (
        f"{len(seen)} lines for {N_LINES}; missing {missing[:5]}...{missing[-5:]}; "
        f"rotations {rotations}, restarts {restarts}; probe states "
        f"{[p.status() for p in instances]}")
    assert len(set(seen)) == N_LINES
    assert sorted(seen, key=lambda s: int(s.split("[")[1].split("]")[0])) == [
        line(i) for i in range(N_LINES)]
