"""Sigma rules: one event, one predicate, one hit.

The rule's ``logsource`` picks the dataset (see fields.LOGSOURCE_TO_DATASET), so
the engine offers it only that dataset's events. ``group_by`` (a canhgac
extension, default ``host.hostname``) is the throttle key: one alert per host per
window however many times the same thing happens there.
"""

from __future__ import annotations

from typing import Any

from collector.detect.fields import make_key_getter
from collector.detect.model import Match, RuleMeta, event_id, event_time
from collector.detect.prefilter import Requirement
from collector.detect.rule import Rule
from collector.detect.sigma_compile import Predicate

DEFAULT_KEY = ("host.hostname",)


class SigmaRule(Rule):
    kind = "sigma"

    def __init__(
        self,
        meta: RuleMeta,
        datasets: tuple[str, ...],
        predicate: Predicate,
        key_fields: tuple[str, ...] = DEFAULT_KEY,
        throttle_window: float | None = None,
        requirement: Requirement | None = None,
    ) -> None:
        super().__init__(meta, datasets, key_fields, throttle_window)
        self.predicate = predicate
        # Literals the predicate needs (prefilter.py): the engine skips the rule without them.
        self.requirement = requirement
        self._key = make_key_getter(key_fields)

    def on_event(self, doc: dict[str, Any], now: float) -> Match | None:
        if not self.predicate(doc):
            return None
        eid = event_id(doc)
        ts = event_time(doc, now)
        return Match(
            self.meta, self._key(doc), self.key_fields, doc,
            [eid] if eid else [], 1, ts, ts,
        )
