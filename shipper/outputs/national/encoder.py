"""Batch encoding: policy + minimisation per line, then NDJSON requests of bounded size.

Each request carries a batch id derived from the lease's id *and* the SHA-256
of its payload: retries of the same lease produce the same id (so the center
acknowledges instead of storing twice), while a lease re-cut differently after
a restart, or a retry of only some lines, gets a new id instead of being
mistaken for a batch the center already has. Event ids stay the final guard.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import Counter
from dataclasses import dataclass, field

import orjson

from canhgac.schema import get_path
from shipper.outputs.national.observables import observables
from shipper.outputs.national.policy import SHARE_ALERT, Policy
from shipper.outputs.national.redact import Redactor


@dataclass(slots=True)
class Request:
    batch_id: str
    indexes: list[int]  # positions in the original Batch.lines
    body: bytes  # NDJSON content (signed)
    gz: bytes  # what goes on the wire
    systems: set[str] = field(default_factory=set)  # canhgac.system.id of the lines
    kinds: Counter[str] = field(default_factory=Counter)  # alert / summary / telemetry


@dataclass(slots=True)
class Encoded:
    requests: list[Request] = field(default_factory=list)
    filtered: Counter[str] = field(default_factory=Counter)
    shared: Counter[str] = field(default_factory=Counter)


class Encoder:
    def __init__(
        self, policy: Policy, redactor: Redactor, max_events: int, max_bytes: int, gzip_level: int
    ) -> None:
        self.policy = policy
        self.redactor = redactor
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.gzip_level = gzip_level

    def encode(self, batch_id: str, lines: list[bytes]) -> Encoded:
        out = Encoded()
        parts: list[tuple[list[int], list[bytes], set[str], Counter[str]]] = []
        idx: list[int] = []
        docs: list[bytes] = []
        systems: set[str] = set()
        kinds: Counter[str] = Counter()
        size = 0
        for i, line in enumerate(lines):
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                out.filtered["malformed"] += 1
                continue
            verdict = self.policy.decide(doc)
            if not verdict.startswith("share:"):
                out.filtered[verdict] += 1
                continue
            self.redactor.apply(doc)
            if verdict == SHARE_ALERT and self.policy.shares_observables(doc):
                found = observables(doc)
                cg = doc.get("canhgac")
                if found and isinstance(cg, dict):
                    cg["observables"] = found
            data = orjson.dumps(doc)
            if docs and (len(docs) >= self.max_events or size + len(data) + 1 > self.max_bytes):
                parts.append((idx, docs, systems, kinds))
                idx, docs, systems, kinds, size = [], [], set(), Counter(), 0
            sid = get_path(doc, "canhgac.system.id")
            if isinstance(sid, str):
                systems.add(sid)
            kinds[verdict[6:]] += 1
            idx.append(i)
            docs.append(data)
            size += len(data) + 1
        if docs:
            parts.append((idx, docs, systems, kinds))
        for n, (part_idx, part_docs, part_systems, part_kinds) in enumerate(parts):
            body = b"\n".join(part_docs) + b"\n"
            digest = hashlib.sha256(body).hexdigest()[:16]
            rid = f"{batch_id}.{n}.{digest}" if len(parts) > 1 else f"{batch_id}.{digest}"
            out.requests.append(Request(rid, part_idx, body, gzip.compress(body, self.gzip_level),
                                        part_systems, part_kinds))
            out.shared.update(part_kinds)
        return out
