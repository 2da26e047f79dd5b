"""The ``national:`` section of collector.yaml (layer 4).

```yaml
national:
  link: {url: https://ncsc.example.vn, key_id: vn-tth, secret: ${CANHGAC_NATIONAL_SECRET}, ca: ...}
  indicators: {enabled: true, interval: 5m, suppress: 10m}
  summaries: {enabled: true, interval: 1h}
  check: {enabled: true, interval: 1m, max_clock_skew: 30s, cert_min_days: 14}
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from canhgac.config import Duration, field_meta, load_section
from canhgac.national.link import LinkConfig
from canhgac.national.vocabulary import Severity


@dataclass
class IndicatorsConfig:
    enabled: bool = True
    interval: Duration = field(default=Duration(300), metadata=field_meta(min=0.1))
    suppress: Duration = Duration(600)  # one alert per (indicator, system) per window
    default_severity: Severity = "high"  # when the indicator carries none


@dataclass
class SummariesConfig:
    enabled: bool = True  # only when outputs.national is configured
    interval: Duration = field(default=Duration(3600), metadata=field_meta(min=1))


@dataclass
class CheckConfig:
    enabled: bool = True
    interval: Duration = field(default=Duration(60), metadata=field_meta(min=0.1))
    max_clock_skew: Duration = Duration(30)  # the center accepts 300 s; warn long before
    cert_min_days: float = field(default=14.0, metadata=field_meta(min=0))


@dataclass
class NationalSection:
    link: LinkConfig = field(default_factory=LinkConfig)
    indicators: IndicatorsConfig = field(default_factory=IndicatorsConfig)
    summaries: SummariesConfig = field(default_factory=SummariesConfig)
    check: CheckConfig = field(default_factory=CheckConfig)


def load(raw: Any, source: str) -> NationalSection:
    return load_section(raw, NationalSection, source, "national")
