"""Words both sides of the national link agree on: severities and the summary dataset.

Severity. Alerts carry ECS ``event.severity`` (a number); we read it with the
Elastic Security risk ranges, whose upper bounds are the numbers our rules
emit: low 0-21 (21), medium 22-47 (47), high 48-73 (73), critical 74-100 (99).
A ``canhgac.alert.severity`` label, when present, wins. An alert with neither
is treated as medium: losing an alert is worse than sharing one the policy was
unsure about.
"""

from __future__ import annotations

from typing import Any, Literal

from canhgac.schema import get_path

Severity = Literal["low", "medium", "high", "critical"]
SUMMARY_DATASET = "national.summary"
SEVERITY_NUMBER: dict[str, int] = {"low": 21, "medium": 47, "high": 73, "critical": 99}
SEVERITY_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def severity_label(event: dict[str, Any]) -> str:
    label = get_path(event, "canhgac.alert.severity")
    if isinstance(label, str) and label.lower() in SEVERITY_RANK:
        return label.lower()
    num = get_path(event, "event.severity")
    if isinstance(num, int | float) and not isinstance(num, bool):
        if num <= 21:
            return "low"
        if num <= 47:
            return "medium"
        if num <= 73:
            return "high"
        return "critical"
    return "medium"
