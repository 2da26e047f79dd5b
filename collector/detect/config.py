"""The ``detection:`` section of collector.yaml.

```yaml
detection:
  enabled: true
  packs: [auth, host, network, agent]   # built-in packs (sub-dirs of configs/rules); default all
  rules_dirs: [/etc/canhgac/rules]      # your own rules (Sigma or canhgac kinds)
  disabled: [canhgac_new_listening_port]   # rule ids or names to leave out
  throttle: 10m                         # one alert per rule and key per window (0: off)
  max_keys: 100000                      # per rule, keys held in windows and throttles
  max_event_ids: 50                     # contributing event ids carried per alert
  reload_interval: 10s                  # poll rule files and reload on change (0: never)
  exceptions:                           # known-good activity a rule must not alert on
    - rule: canhgac_new_listening_port  # rule id or name
      reason: Bacula backup agent on every server (change 2026-114)   # required: why
      when: {server.port: 9102, process.name: bacula-fd}   # a Sigma selection
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canhgac.config import Duration, field_meta


@dataclass
class RuleException:
    """Events a rule skips: a deployment's known-good activity, with why (for the audit)."""

    rule: str  # a rule id or name, as in ``disabled``
    reason: str
    when: dict[str, Any]  # a Sigma selection: fields AND-ed, a list of values OR-ed


@dataclass
class DetectionConfig:
    enabled: bool = True
    packs: list[str] | None = None  # None: every built-in pack
    rules_dirs: list[Path] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    throttle: Duration = Duration(600)
    max_keys: int = field(default=100_000, metadata=field_meta(min=10))
    max_event_ids: int = field(default=50, metadata=field_meta(min=1, max=10_000))
    reload_interval: Duration = Duration(10)
    exceptions: list[RuleException] = field(default_factory=list)
