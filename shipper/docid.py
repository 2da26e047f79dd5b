"""The stored identity of an event: ``<agent.id>:<event.id>``.

``event.id`` is chosen by the agent, so it is unique only per agent. Using it alone
as the store's primary key and Elasticsearch's ``_id`` made a second agent's event
with the same id a "duplicate": acknowledged, then silently never stored. Scoping
the id by the enrolled agent (``agent.id`` is stamped by the collector's enricher,
never taken from the payload) keeps a retry from the same agent idempotent while
two agents can never collide.
"""

from __future__ import annotations

import hashlib
from typing import Any

# Elasticsearch refuses an _id over 512 bytes; a longer key is hashed (still stable).
MAX_ID_BYTES = 512


def document_id(doc: dict[str, Any]) -> str | None:
    """The id to store ``doc`` under, or None when it has no usable ``event.id``."""
    ev = doc.get("event")
    eid = ev.get("id") if type(ev) is dict else None
    if type(eid) is not str or not eid:
        return None
    agent = doc.get("agent")
    aid = agent.get("id") if type(agent) is dict else None
    key = f"{aid}:{eid}" if type(aid) is str and aid else eid
    # (a UTF-8 character is at most 4 bytes: a short key needs no encoding to check)
    if len(key) * 4 > MAX_ID_BYTES and len(key.encode()) > MAX_ID_BYTES:
        return "sha256-" + hashlib.sha256(key.encode()).hexdigest()[:40]
    return key
