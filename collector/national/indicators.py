"""Threat indicators from the national center: the precompiled set, the stage, the pull loop.

Matching is on the hot path, so the set is compiled into plain dicts once per
pull and swapped atomically; each event costs one dict lookup per field (plus
one per distinct CIDR prefix length, and one per label of a domain so that an
indicator for ``evil.example`` also matches ``a.evil.example``).
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from canhgac.national.vocabulary import SEVERITY_NUMBER
from canhgac.schema import ALERT, get_path, new_event
from collector.national.config import IndicatorsConfig
from collector.national.stix import Indicator, parse_bundle

log = logging.getLogger(__name__)

IP_FIELDS = ("source.ip", "destination.ip", "client.ip", "server.ip")
DOMAIN_FIELDS = ("dns.question.name", "url.domain", "destination.domain", "server.domain")
URL_FIELDS = ("url.full", "url.original")
HASH_FIELDS = ("file.hash.sha256", "process.hash.sha256")
# Copied from the matching event into the alert, so the alert stands on its own.
_CONTEXT = ("host", "agent", "source", "destination", "client", "server", "dns", "url", "file",
            "process", "user", "network")
_STIX_TYPE = {"ipv4": "ipv4-addr", "ipv6": "ipv6-addr", "domain": "domain-name", "url": "url",
              "sha256": "file"}
RULE_ID = "canhgac-national-indicator"


def _norm_domain(value: str) -> str:
    return value.strip().rstrip(".").lower()


class IndicatorSet:
    """Immutable once built; ``match_*`` are O(1) per value (see module docstring)."""

    def __init__(self, indicators: list[Indicator]) -> None:
        self.ips: dict[str, Indicator] = {}
        self.v4_nets: dict[int, dict[int, Indicator]] = {}
        self.v6_nets: dict[int, dict[int, Indicator]] = {}
        self.domains: dict[str, Indicator] = {}
        self.urls: dict[str, Indicator] = {}
        self.hashes: dict[str, Indicator] = {}
        self.by_type: Counter[str] = Counter()
        for ind in indicators:
            self.by_type[ind.type] += 1
            if ind.type in ("ipv4", "ipv6"):
                try:
                    net = ipaddress.ip_network(ind.value, strict=False)
                except ValueError:
                    continue
                if net.num_addresses == 1:
                    self.ips[str(net.network_address)] = ind
                else:
                    table = self.v4_nets if net.version == 4 else self.v6_nets
                    table.setdefault(net.prefixlen, {})[int(net.network_address)] = ind
            elif ind.type == "domain":
                self.domains[_norm_domain(ind.value)] = ind
            elif ind.type == "url":
                self.urls[ind.value] = ind
            elif ind.type == "sha256":
                self.hashes[ind.value.lower()] = ind
        self._v4_masks = sorted(self.v4_nets, reverse=True)
        self._v6_masks = sorted(self.v6_nets, reverse=True)

    def __len__(self) -> int:
        return sum(self.by_type.values())

    def match_ip(self, value: Any) -> Indicator | None:
        if not isinstance(value, str):
            return None
        hit = self.ips.get(value)
        if hit is not None or not (self._v4_masks or self._v6_masks or ":" in value):
            return hit
        try:
            ip = ipaddress.ip_address(value)
        except ValueError:
            return None
        hit = self.ips.get(str(ip))
        if hit is not None:
            return hit
        n = int(ip)
        bits, masks, tables = (32, self._v4_masks, self.v4_nets) if ip.version == 4 else (
            128, self._v6_masks, self.v6_nets)
        for plen in masks:
            net = n >> (bits - plen) << (bits - plen)
            hit = tables[plen].get(net)
            if hit is not None:
                return hit
        return None

    def match_domain(self, value: Any) -> Indicator | None:
        if not isinstance(value, str) or not self.domains:
            return None
        name = _norm_domain(value)
        while name:
            hit = self.domains.get(name)
            if hit is not None:
                return hit
            _, _, name = name.partition(".")
        return None

    def match_url(self, value: Any) -> Indicator | None:
        return self.urls.get(value) if isinstance(value, str) else None

    def match_hash(self, value: Any) -> Indicator | None:
        return self.hashes.get(value.lower()) if isinstance(value, str) else None


@dataclass
class StageCounters:
    matches: int = 0
    alerts: int = 0
    suppressed: int = 0
    by_field: Counter[str] = field(default_factory=Counter)


class IndicatorStage:
    """Pipeline stage: annotates matching events and raises one alert per match.

    Alerts for the same (indicator, system) within ``suppress`` seconds are
    counted, not repeated, so a scanner hitting 10,000 times makes one alert.
    """

    name = "national.indicators"

    def __init__(self, config: IndicatorsConfig | None = None) -> None:
        self.config = config or IndicatorsConfig()
        self.set = IndicatorSet([])
        self.unsupported = 0
        self.counters = StageCounters()
        self._last_alert: dict[tuple[str, str], float] = {}

    def load(self, indicators: list[Indicator], unsupported: int = 0) -> None:
        self.set = IndicatorSet(indicators)  # atomic swap: process() reads self.set once
        self.unsupported = unsupported

    def process(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        s = self.set
        if not len(s):
            return []
        alerts: list[dict[str, Any]] = []
        now = time.monotonic()
        checks = ((IP_FIELDS, s.match_ip), (DOMAIN_FIELDS, s.match_domain),
                  (URL_FIELDS, s.match_url), (HASH_FIELDS, s.match_hash))
        for ev in events:
            ev_meta = ev.get("event")
            if isinstance(ev_meta, dict) and ev_meta.get("kind") == "alert":
                continue  # never alert on alerts (ours or the detection engine's)
            hits: list[tuple[str, Any, Indicator]] = []
            for fields, match in checks:
                for f in fields:
                    value = get_path(ev, f)
                    if value is None:
                        continue
                    ind = match(value)
                    if ind is not None and all(h[2].id != ind.id for h in hits):
                        hits.append((f, value, ind))
            for f, value, ind in hits:
                self.counters.matches += 1
                self.counters.by_field[f] += 1
                _annotate(ev, f, value, ind)
                system_id = str(get_path(ev, "canhgac.system.id") or "")
                key = (ind.id, system_id)
                last = self._last_alert.get(key)
                if last is not None and now - last < self.config.suppress:
                    self.counters.suppressed += 1
                    continue
                self._last_alert[key] = now
                self.counters.alerts += 1
                alerts.append(self._alert(ev, f, value, ind))
        if len(self._last_alert) > 100_000:
            cutoff = now - self.config.suppress
            self._last_alert = {k: t for k, t in self._last_alert.items() if t >= cutoff}
        return alerts

    def tick(self, now: float) -> list[dict[str, Any]]:
        return []

    def _alert(self, ev: dict[str, Any], f: str, value: Any, ind: Indicator) -> dict[str, Any]:
        sev = ind.severity or self.config.default_severity
        indicator = _indicator_fields(ind)
        alert = new_event(
            ALERT, kind="alert", category=["threat"], type=["indicator"],
            action="indicator-match",
            message=f"Event matched national center indicator {ind.name!r} "
                    f"({ind.type} {ind.value}) on {f}",
            rule={"id": RULE_ID, "name": f"National indicator match: {ind.name}",
                  "ruleset": "national", "category": "threat-intel"},
            threat={"indicator": indicator,
                    "enrichments": [{"indicator": indicator,
                                     "matched": {"field": f, "atomic": str(value),
                                                 "type": "indicator_match_rule"}}]},
        )
        alert["event"]["severity"] = SEVERITY_NUMBER[sev]
        alert["event"]["reference"] = ind.id
        for key in _CONTEXT:
            if key in ev:
                alert[key] = copy.deepcopy(ev[key])  # later stages may mutate ev
        cg = dict(ev.get("canhgac") or {})
        cg["alert"] = {"severity": sev, "source_event_ids": [get_path(ev, "event.id")],
                       "indicator_id": ind.id}
        alert["canhgac"] = cg
        return alert


def _indicator_fields(ind: Indicator) -> dict[str, Any]:
    out: dict[str, Any] = {"type": _STIX_TYPE[ind.type], "provider": "NCSC",
                           "name": ind.name, "id": ind.id}
    if ind.type in ("ipv4", "ipv6"):
        out["ip"] = ind.value
    elif ind.type == "domain":
        out["url"] = {"domain": ind.value}
    elif ind.type == "url":
        out["url"] = {"full": ind.value}
    else:
        out["file"] = {"hash": {"sha256": ind.value}}
    if ind.confidence is not None:
        out["confidence"] = ("Low" if ind.confidence < 40 else
                             "Medium" if ind.confidence < 70 else "High")
    return out


def _annotate(ev: dict[str, Any], f: str, value: Any, ind: Indicator) -> None:
    threat = ev.get("threat")
    if not isinstance(threat, dict):
        threat = {}
        ev["threat"] = threat
    enr = threat.get("enrichments")
    if not isinstance(enr, list):
        enr = []
        threat["enrichments"] = enr
    enr.append({"indicator": _indicator_fields(ind),
                "matched": {"field": f, "atomic": str(value), "type": "indicator_match_rule"}})


class IndicatorCache:
    """The last bundle and its ETag on disk, so a restart matches at once, before any pull."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> tuple[dict[str, Any] | None, str]:
        try:
            doc = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None, ""
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("indicator cache %s unreadable (%s); starting empty", self.path, exc)
            return None, ""
        return doc.get("bundle"), str(doc.get("etag", ""))

    def save(self, bundle: dict[str, Any], etag: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        data = orjson.dumps({"etag": etag, "saved": time.time(), "bundle": bundle})
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


@dataclass
class PullState:
    etag: str = ""
    last_success: float = 0.0
    last_attempt: float = 0.0
    errors: int = 0
    pulls: int = 0
    not_modified: int = 0
    last_error: str = ""


class IndicatorPuller:
    """GET /v1/indicators every ``interval`` with If-None-Match; swaps the stage's set."""

    def __init__(self, client: Any, stage: IndicatorStage, cache: IndicatorCache,
                 interval: float) -> None:
        self.client = client
        self.stage = stage
        self.cache = cache
        self.interval = interval
        self.state = PullState()
        self.changed = asyncio.Event()

    def restore(self) -> int:
        bundle, etag = self.cache.load()
        if bundle is None:
            return 0
        inds, unsupported = parse_bundle(bundle)
        self.stage.load(inds, unsupported)
        self.state.etag = etag
        return len(inds)

    async def pull_once(self) -> bool:
        """True if a new set was loaded. Raises on transport or HTTP errors."""
        self.state.last_attempt = time.time()
        headers = {"If-None-Match": self.state.etag} if self.state.etag else {}
        reply = await self.client.request("GET", "/v1/indicators", headers=headers)
        if reply.status == 304:
            self.state.not_modified += 1
            self.state.last_success = time.time()
            return False
        if reply.status != 200:
            raise RuntimeError(f"GET /v1/indicators answered {reply.status}")
        bundle = orjson.loads(reply.body)
        if not isinstance(bundle, dict) or bundle.get("type") != "bundle":
            raise RuntimeError("GET /v1/indicators did not return a STIX bundle")
        inds, unsupported = parse_bundle(bundle)
        etag = reply.headers.get("ETag", "")
        await asyncio.get_running_loop().run_in_executor(None, self.cache.save, bundle, etag)
        self.stage.load(inds, unsupported)
        self.state.etag = etag
        self.state.last_success = time.time()
        self.state.pulls += 1
        self.changed.set()
        log.info("national indicators: %d loaded (%d unsupported)", len(inds), unsupported)
        return True

    async def run(self) -> None:
        while True:
            try:
                await self.pull_once()
                self.state.last_error = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # network, HTTP, bad bundle: keep the last good set
                self.state.errors += 1
                msg = f"{type(exc).__name__}: {exc}"
                if msg != self.state.last_error:
                    log.warning("national indicator pull failed: %s", msg)
                self.state.last_error = msg
            await asyncio.sleep(self.interval)
