"""Central agent policy: what each agent's probes do, decided on the collector.

A policy document has four scopes, applied in this order (later wins, probe section
by probe section, key by key)::

    defaults:                   # every agent
      probes: {process: {interval: 10s}}
    levels:                     # by the system's security level (cấp độ)
      3: {probes: {file_integrity: {enabled: true}}}
    units:                      # by the system's owner unit
      "Sở Y tế": {probes: {auth_log: {paths: [/var/log/his/auth.log]}}}
    systems:                    # by system id
      cong-ttdt: {probes: {network_sensor: {interface: ens192}}}

Under all of them lie the **level defaults of the compliance model**: the probes that
layer 2 requires at the system's level (collector/coverage/config.py) are enabled, so
a new level-3 system gets the level-3 probe set without anyone writing YAML.

The collector checks what it can know — scopes, levels, units and systems of the
inventory, probe names, sections being mappings, ``enabled`` a boolean. Each probe's
own keys are checked by the agent, which owns them: a section it cannot apply is
refused there and reported, and the previous policy stays in force (agent/policy.py).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from canhgac.config import did_you_mean
from canhgac.errors import ConfigError, ConfigErrors
from canhgac.probes import PROBE_NAMES
from canhgac.text import nfc
from collector.inventory import LEVELS, Inventory, System

SCOPES = ("defaults", "levels", "units", "systems")
SCOPE_KEYS = ("probes",)


@dataclass(frozen=True)
class PolicyDocument:
    """A validated policy document (plain data, as written)."""

    defaults: dict[str, Any] = field(default_factory=dict)
    levels: dict[int, dict[str, Any]] = field(default_factory=dict)
    units: dict[str, dict[str, Any]] = field(default_factory=dict)
    systems: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_plain(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.defaults:
            out["defaults"] = self.defaults
        if self.levels:
            out["levels"] = {int(k): v for k, v in sorted(self.levels.items())}
        if self.units:
            out["units"] = self.units
        if self.systems:
            out["systems"] = self.systems
        return out


def _nfc_all(data: Any) -> Any:
    if isinstance(data, dict):
        return {nfc(k) if isinstance(k, str) else k: _nfc_all(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_nfc_all(v) for v in data]
    return nfc(data) if isinstance(data, str) else data


def _check_scope(body: Any, path: str, errors: list[tuple[str, str]]) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        errors.append((path, "expected a mapping with probes:"))
        return {}
    for key in body:
        if key not in SCOPE_KEYS:
            errors.append((f"{path}.{key}", f"unknown key{did_you_mean(str(key), SCOPE_KEYS)} "
                                            f"(known keys: {', '.join(SCOPE_KEYS)})"))
    probes = body.get("probes") or {}
    if not isinstance(probes, dict):
        errors.append((f"{path}.probes", "expected a mapping of probe name to section"))
        return {}
    for name, section in probes.items():
        where = f"{path}.probes.{name}"
        if name not in PROBE_NAMES:
            errors.append((where, f"unknown probe{did_you_mean(str(name), PROBE_NAMES)} "
                                  f"(known probes: {', '.join(PROBE_NAMES)})"))
        elif isinstance(section, bool):
            continue  # shorthand for enabled: true/false, as in agent.yaml
        elif not isinstance(section, dict):
            errors.append((where, "expected a mapping, true or false"))
        elif "enabled" in section and not isinstance(section["enabled"], bool):
            errors.append((f"{where}.enabled", f"expected true or false, got {section['enabled']!r}"))
    return {"probes": probes} if probes else {}


def parse_policy(data: Any, source: str, inventory: Inventory | None = None) -> PolicyDocument:
    """Validate a policy document; every problem at once (ConfigErrors), each with its path."""
    data = _nfc_all(data)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, "(top level)", "expected a mapping with defaults, levels, "
                          "units or systems")
    errors: list[tuple[str, str]] = []
    for key in data:
        if key not in SCOPES:
            errors.append((str(key), f"unknown key{did_you_mean(str(key), SCOPES)} "
                                     f"(known keys: {', '.join(SCOPES)})"))
    defaults = _check_scope(data.get("defaults"), "defaults", errors)
    levels: dict[int, dict[str, Any]] = {}
    units: dict[str, dict[str, Any]] = {}
    systems: dict[str, dict[str, Any]] = {}
    known_units = inventory.unit_names() if inventory is not None else None
    known_systems = [s.id for s in inventory.systems] if inventory is not None else None
    for scope, target in (("levels", levels), ("units", units), ("systems", systems)):
        raw = data.get(scope) or {}
        if not isinstance(raw, dict):
            errors.append((scope, "expected a mapping"))
            continue
        for name, body in raw.items():
            path = f"{scope}.{name}"
            if scope == "levels":
                if isinstance(name, bool) or not isinstance(name, int) or name not in LEVELS:
                    errors.append((path, "a security level is 1 to 5"))
                    continue
            elif scope == "units" and known_units is not None and name not in known_units:
                errors.append((path, f"unknown unit {name!r}{did_you_mean(str(name), known_units)}"
                                     " (not in the inventory)"))
                continue
            elif scope == "systems" and known_systems is not None and name not in known_systems:
                errors.append((path, f"unknown system {name!r}"
                                     f"{did_you_mean(str(name), known_systems)} (not in the inventory)"))
                continue
            target[name] = _check_scope(body, path, errors)
    if errors:
        raise ConfigErrors([ConfigError(source, p, m) for p, m in errors])
    return PolicyDocument(defaults, levels, units, systems)


def _merge(into: dict[str, Any], probes: dict[str, Any]) -> None:
    for name, section in probes.items():
        if isinstance(section, bool):
            section = {"enabled": section}
        merged = into.setdefault(name, {})
        merged.update(copy.deepcopy(section))


def effective(doc: PolicyDocument, system: System | None,
              level_probes: dict[int, list[str]]) -> dict[str, Any]:
    """The probe sections an agent of ``system`` runs with (before its local overrides)."""
    probes: dict[str, Any] = {}
    if system is not None:
        _merge(probes, {name: {"enabled": True} for name in level_probes.get(system.level, [])})
    _merge(probes, doc.defaults.get("probes", {}))
    if system is not None:
        _merge(probes, doc.levels.get(system.level, {}).get("probes", {}))
        _merge(probes, doc.units.get(system.unit, {}).get("probes", {}))
        _merge(probes, doc.systems.get(system.id, {}).get("probes", {}))
    return {"probes": probes}


def etag(version: int, body: dict[str, Any]) -> str:
    """Changes when the policy version or what it gives this agent changes (a level moved)."""
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return f'"{version}-{digest}"'
