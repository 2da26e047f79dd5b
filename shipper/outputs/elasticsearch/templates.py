"""Component and index templates for the canhgac data streams, installed idempotently.

Layout (priority 200 beats Elasticsearch's built-in ``logs`` template at 100):

- component ``canhgac-ecs@mappings``: ECS mappings (``mappings.py``)
- component ``canhgac@settings``: index settings
- index template ``canhgac-logs-<ns>`` per retention class: pattern
  ``logs-canhgac.*-<ns>``, data stream lifecycle with that class's retention
- index template ``canhgac-deadletter-<ns>`` (priority 300): the dead-letter stream,
  with ``dynamic: false`` so a rejected document can never be rejected again.

Each body carries ``_meta.hash``; start-up compares it and only PUTs what changed,
so restarts cost a few GETs. ``python -m shipper.outputs.elasticsearch.templates DIR``
writes the same bodies as versioned JSON files (deploy/elasticsearch/templates/)
for installing by hand with curl.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path
from typing import Any

import orjson

from shipper.outputs.elasticsearch.config import ElasticsearchConfig
from shipper.outputs.elasticsearch.mappings import mappings

log = logging.getLogger(__name__)

TEMPLATE_VERSION = 1
MAPPINGS_COMPONENT = "canhgac-ecs@mappings"
SETTINGS_COMPONENT = "canhgac@settings"
PRIORITY = 200
DEADLETTER_PRIORITY = 300


def _days(seconds: float) -> str:
    if seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    return f"{max(1, int(seconds))}s"


def _meta(body: dict[str, Any], description: str) -> dict[str, Any]:
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return {**body, "_meta": {"managed_by": "canhgac", "version": TEMPLATE_VERSION,
                              "hash": digest, "description": description}}


def component_templates(config: ElasticsearchConfig | None = None) -> dict[str, dict[str, Any]]:
    index_settings: dict[str, Any] = {"codec": "best_compression",
                                      "mapping": {"total_fields": {"limit": 2000}}}
    if config is not None and config.replicas is not None:
        index_settings["number_of_replicas"] = config.replicas
    return {
        MAPPINGS_COMPONENT: _meta({"template": {"mappings": mappings()}},
                                  "ECS mappings for canhgac events"),
        SETTINGS_COMPONENT: _meta(
            {"template": {"settings": {"index": index_settings}}},
            "index settings for canhgac data streams",
        ),
    }


def deadletter_mappings() -> dict[str, Any]:
    kw = {"type": "keyword", "ignore_above": 1024}
    return {
        "dynamic": False,
        "properties": {
            "@timestamp": {"type": "date"},
            "message": {"type": "keyword", "ignore_above": 8191},
            "event": {"properties": {
                "id": kw, "dataset": kw, "kind": kw, "created": {"type": "date"},
                "original": {"type": "keyword", "index": False, "doc_values": False},
            }},
            "error": {"properties": {"message": {"type": "keyword", "ignore_above": 8191}, "type": kw}},
            "http": {"properties": {"response": {"properties": {"status_code": {"type": "long"}}}}},
            "canhgac": {"properties": {
                "system": {"properties": {"id": kw, "level": {"type": "long"}}},
                "unit": {"properties": {"name": kw}},
                "deadletter": {"properties": {"stream": kw}},
            }},
        },
    }


def index_templates(config: ElasticsearchConfig) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for rc in config.retention:
        ns = config.stream_namespace(rc.name)
        out[f"canhgac-logs-{ns}"] = _meta({
            "index_patterns": [f"logs-canhgac.*-{ns}"],
            "data_stream": {},
            "priority": PRIORITY,
            "composed_of": [MAPPINGS_COMPONENT, SETTINGS_COMPONENT],
            "template": {"lifecycle": {"data_retention": _days(rc.retention)}},
        }, f"canhgac events of systems at level {rc.min_level}+ ({rc.name}), "
           f"kept {_days(rc.retention)} online")
    dl_ns = config.namespace or "default"
    dl_settings: dict[str, Any] = {"codec": "best_compression"}
    if config.replicas is not None:
        dl_settings["number_of_replicas"] = config.replicas
    out[f"canhgac-deadletter-{dl_ns}"] = _meta({
        "index_patterns": [config.deadletter_stream],
        "data_stream": {},
        "priority": DEADLETTER_PRIORITY,
        "template": {
            "settings": {"index": dl_settings},
            "mappings": deadletter_mappings(),
            "lifecycle": {"data_retention": _days(config.deadletter_retention)},
        },
    }, "events Elasticsearch rejected, kept verbatim with the reason")
    return out


async def install(client: Any, config: ElasticsearchConfig) -> list[str]:
    """PUT every template whose ``_meta.hash`` differs from what the cluster has.

    Returns the names written. Components first: index templates refer to them.
    """
    written: list[str] = []
    for name, body in component_templates(config).items():
        current = await _existing(client.cluster.get_component_template, name, "component_templates",
                                  "component_template")
        if current != body["_meta"]["hash"]:
            await client.cluster.put_component_template(name=name, body=body)
            written.append(name)
    for name, body in index_templates(config).items():
        current = await _existing(client.indices.get_index_template, name, "index_templates",
                                  "index_template")
        if current != body["_meta"]["hash"]:
            await client.indices.put_index_template(name=name, body=body)
            written.append(name)
    if written:
        log.info("elasticsearch: installed templates %s", ", ".join(written))
    return written


async def _existing(getter: Any, name: str, list_key: str, item_key: str) -> str | None:
    from elasticsearch import NotFoundError

    try:
        resp = await getter(name=name)
    except NotFoundError:
        return None
    for item in resp.body.get(list_key, []):
        meta = (item.get(item_key) or {}).get("_meta") or {}
        return meta.get("hash")
    return None


def write_files(directory: Path, config: ElasticsearchConfig | None = None) -> list[Path]:
    """The templates as JSON files, one per API object, for curl (see install.sh)."""
    config = config or ElasticsearchConfig()
    paths: list[Path] = []
    for sub, items in (("component_template", component_templates(config)),
                       ("index_template", index_templates(config))):
        d = directory / sub
        d.mkdir(parents=True, exist_ok=True)
        for name, body in items.items():
            p = d / f"{name}.json"
            p.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
            paths.append(p)
    return paths


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    for path in write_files(Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/elasticsearch/templates")):
        print(path)
