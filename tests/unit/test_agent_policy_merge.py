"""agent.yaml's probes win over the central policy, key by key (agent/policy.py)."""

from __future__ import annotations

from agent.policy import merged


def test_local_keys_win_and_shorthands_become_sections() -> None:
    policy = {"process": {"interval": "10s", "min_lifetime": "1s"}, "session": True,
              "network_sensor": {"interface": "ens192"}}
    local = {"process": {"interval": "2s"}, "network_sensor": False, "synthetic": {"rate": 5}}
    assert merged(policy, local) == {
        "process": {"interval": "2s", "min_lifetime": "1s"},
        "session": {"enabled": True},
        "network_sensor": {"interface": "ens192", "enabled": False},
        "synthetic": {"rate": 5},
    }
    assert merged(policy, {}) == {"process": {"interval": "10s", "min_lifetime": "1s"},
                                  "session": {"enabled": True},
                                  "network_sensor": {"interface": "ens192"}}
    assert merged({"process": 3}, {})["process"] == 3  # not a section: resolve_probes says so
