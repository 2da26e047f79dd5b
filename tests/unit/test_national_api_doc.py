"""docs/national-api.yaml stays in step with the mock's routes."""

from __future__ import annotations

from pathlib import Path

import yaml

from canhgac.tls import issue_cert
from national_center.server import CenterSettings, MockCenter

DOC = Path(__file__).parents[2] / "docs" / "national-api.yaml"


def test_every_route_is_documented_and_every_documented_route_exists(test_ca, tmp_path):
    spec = yaml.safe_load(DOC.read_text(encoding="utf-8"))
    assert spec["openapi"].startswith("3.")
    documented = {(p, m.upper()) for p, ops in spec["paths"].items() for m in ops
                  if m in ("get", "post", "put", "delete")}
    cert = issue_cert(test_ca, tmp_path, "c", ["127.0.0.1"])
    center = MockCenter(CenterSettings(keys={}, db=tmp_path / "r.db", cert=cert.cert,
                                       key=cert.key))
    try:
        routes = {(r.resource.canonical, r.method) for r in center.app.router.routes()
                  if r.method != "HEAD"}
    finally:
        center.storage.close()
        center._executor.shutdown()
    assert routes == documented
    # Every $ref resolves.
    text = DOC.read_text(encoding="utf-8")
    for ref in {line.split('"#/')[1].split('"')[0] for line in text.splitlines() if '"#/' in line}:
        node = spec
        for part in ref.split("/"):
            node = node[part]
