"""Rule files -> compiled rules.

A rule file holds one rule, or several separated by ``---``. The kind is
``sigma`` (the default: a standard Sigma rule, parsed with pySigma) or one of
our own ``threshold``, ``sequence``, ``absence``, which share Sigma's metadata
keys and its ``detection:`` language. Sample events for a rule's tests live in
the rule itself under ``tests:`` so a rule cannot be shipped without them
drifting apart (see testing.py).

Every problem names the file, the key path inside the rule (prefixed ``[n].`` when
the file holds several rules) and the problem. ``load_rules`` isolates rules from
each other: a rule that cannot be read is *refused* with its reason (a bounded code
and the message) and every other rule still loads, so one bad file cannot stop a
collector or a reload; the refusals are logged, counted on /metrics and listed by
``canhgac rules list``. ``load_paths`` is the strict form (first problem raises), for
the built-in packs and the tests.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from canhgac.config import read_yaml_documents
from canhgac.errors import ConfigError
from canhgac.schema import ALERT, DATASETS
from collector.detect import syntax
from collector.detect.fields import (
    NO_TELEMETRY,
    dataset_for_logsource,
    event_type_guard,
    never_carried,
)
from collector.detect.kinds.absence import AbsenceRule
from collector.detect.kinds.sequence import SequenceRule, Step
from collector.detect.kinds.sigma import DEFAULT_KEY, SigmaRule
from collector.detect.kinds.threshold import ThresholdRule
from collector.detect.model import KINDS, SEVERITY, RuleError, RuleMeta, parse_tags
from collector.detect.reachability import absent_fields, possible
from collector.detect.rule import Rule
from collector.detect.sigma_compile import Predicate, compile_detections, compile_sigma


def builtin_dir(candidates: tuple[Path, ...] | None = None) -> Path:
    """Where the built-in rule packs are: configs/rules/ of a source checkout, else
    <prefix>/share/canhgac/rules of an installed environment (the Debian packages put
    them in /opt/canhgac/collector/share/canhgac/rules; a wheel has no configs/)."""
    if candidates is None:
        candidates = (Path(__file__).resolve().parents[2] / "configs" / "rules",
                      Path(sys.prefix) / "share" / "canhgac" / "rules")
    return next((c for c in candidates if c.is_dir()), candidates[0])


BUILTIN_DIR = builtin_dir()
RULE_SUFFIXES = (".yml", ".yaml")
KNOWN_DATASETS = frozenset(d for d in DATASETS if d != ALERT)

# Sigma's own metadata keys; accepted on every kind.
_META_KEYS = frozenset({
    "title", "id", "name", "description", "level", "tags", "references", "falsepositives",
    "author", "date", "modified", "status", "license", "related", "fields", "scope",
})
# Our extensions, accepted on every kind.
_EXT_KEYS = frozenset({"kind", "ruleset", "group_by", "throttle", "tests"})
_NATIVE_KEYS = {
    "threshold": frozenset({"dataset", "detection", "threshold"}),
    "sequence": frozenset({"dataset", "sequence"}),
    "absence": frozenset({"dataset", "detection", "absence"}),
}


@dataclass
class LoadedRule:
    """A compiled rule with where it came from and its embedded tests."""

    rule: Rule
    source: str
    prefix: str = ""  # "[n]." for the n-th rule of a multi-rule file
    tests: list[Any] = field(default_factory=list)
    doc: dict[str, Any] = field(default_factory=dict)  # the parsed document, for tests


# Why a rule was refused: a bounded set, used as a metric label.
REFUSAL_REASONS = ("yaml", "logsource", "no_auditd_telemetry", "never_fires", "detection",
                   "metadata", "kind_options", "tests", "duplicate_id")


@dataclass(frozen=True)
class Refusal:
    source: str
    path: str  # key path inside the file ("" for the whole file)
    reason: str  # one of REFUSAL_REASONS
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.path}: {self.message}" if self.path else \
            f"{self.source}: {self.message}"


@dataclass
class RuleSet:
    """What a set of rule paths gave: the rules that loaded and the ones refused."""

    loaded: list[LoadedRule] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    def refused_by_reason(self) -> dict[str, int]:
        counts = dict.fromkeys(REFUSAL_REASONS, 0)
        for r in self.refused:
            counts[r.reason] += 1
        return counts


_METADATA_KEYS = frozenset({"title", "id", "level", "tags", "description", "name", "references",
                            "ruleset", "kind", "throttle", "group_by"})


def _reason(path: str) -> str:
    head = path.split(".", 1)[0].split("[", 1)[0]
    if head == "logsource":
        return "logsource"
    if head in ("detection", "sequence") or head == "":
        return "detection"
    if head in ("threshold", "absence", "dataset"):
        return "kind_options"
    if head == "tests":
        return "tests"
    return "metadata" if head in _METADATA_KEYS else "detection"


def read_documents(path: Path) -> list[Any]:
    docs = [d for d in read_yaml_documents(path) if d is not None]
    if not docs:
        raise ConfigError(str(path), "", "holds no rule")
    return docs


def load_file(path: str | Path, ruleset: str = "custom") -> list[LoadedRule]:
    """All rules in one file, compiled; ConfigError on the first problem."""
    p = Path(path)
    docs = read_documents(p)
    out: list[LoadedRule] = []
    for i, doc in enumerate(docs):
        prefix = f"[{i}]." if len(docs) > 1 else ""
        try:
            rule = build_rule(doc, ruleset=ruleset, source=str(p))
        except RuleError as exc:
            raise exc.in_file(str(p), prefix) from None
        tests = doc.get("tests") or []
        if not isinstance(tests, list):
            raise ConfigError(str(p), f"{prefix}tests", "expected a list of test cases")
        out.append(LoadedRule(rule, str(p), prefix, tests, doc))
    return out


def rule_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ConfigError(str(directory), "", "rules directory not found")
    return sorted(
        f for f in directory.rglob("*")
        if f.suffix in RULE_SUFFIXES and f.is_file() and not f.name.startswith(".")
    )


def load_rules(paths: list[tuple[Path, str]]) -> RuleSet:
    """Rules from (file-or-directory, ruleset) pairs, each on its own: a bad one is refused.

    Rule ids must be unique across all; of two rules with one id the second is refused.
    A missing directory is still a ConfigError (a configuration mistake, not a rule's).
    """
    result = RuleSet()
    seen: dict[str, str] = {}
    for path, ruleset in paths:
        files = rule_files(path) if path.is_dir() else [path]
        for f in files:
            for item in _load_isolated(f, ruleset):
                if isinstance(item, Refusal):
                    result.refused.append(item)
                    continue
                rid = item.rule.meta.id
                if rid in seen:
                    result.refused.append(Refusal(item.source, f"{item.prefix}id", "duplicate_id",
                                                  f"rule id {rid} is also used in {seen[rid]}"))
                    continue
                seen[rid] = item.source
                result.loaded.append(item)
    return result


def _load_isolated(path: Path, ruleset: str) -> list[LoadedRule | Refusal]:
    try:
        docs = read_documents(path)
    except ConfigError as exc:
        return [Refusal(str(path), exc.path, "yaml", exc.problem)]
    out: list[LoadedRule | Refusal] = []
    for i, doc in enumerate(docs):
        prefix = f"[{i}]." if len(docs) > 1 else ""
        try:
            rule = build_rule(doc, ruleset=ruleset, source=str(path))
        except RuleError as exc:
            reason = exc.reason or _reason(exc.path)
            out.append(Refusal(str(path), f"{prefix}{exc.path}", reason, exc.problem))
            continue
        tests = doc.get("tests") or []
        if not isinstance(tests, list):
            out.append(Refusal(str(path), f"{prefix}tests", "tests", "expected a list of test cases"))
            continue
        out.append(LoadedRule(rule, str(path), prefix, tests, doc))
    return out


def load_paths(paths: list[tuple[Path, str]]) -> list[LoadedRule]:
    """The strict form: every rule must load (the first refusal is raised as a ConfigError)."""
    result = load_rules(paths)
    if result.refused:
        first = result.refused[0]
        raise ConfigError(first.source, first.path, first.message)
    return result.loaded


def builtin_packs(root: Path = BUILTIN_DIR) -> list[str]:
    """Built-in packs are the sub-directories of configs/rules/."""
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


# --- one rule document ---------------------------------------------------------------


def build_rule(doc: Any, *, ruleset: str = "custom", source: str = "") -> Rule:
    """Compile one parsed rule document (raises RuleError with a key path)."""
    doc = syntax.mapping(doc, "(top level)")
    kind = doc.get("kind", "sigma")
    if kind not in KINDS:
        raise RuleError("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    allowed = _META_KEYS | _EXT_KEYS
    if kind != "sigma":
        syntax.only_keys(doc, allowed | _NATIVE_KEYS[kind], "")
    meta = _meta(doc, kind, ruleset, source)
    throttle = syntax.duration(doc["throttle"], "throttle") if "throttle" in doc else None
    if kind == "sigma":
        return _sigma(doc, meta, throttle)
    if kind == "threshold":
        return _threshold(doc, meta, throttle)
    if kind == "sequence":
        return _sequence(doc, meta, throttle)
    return _absence(doc, meta, throttle)


def _meta(doc: dict[str, Any], kind: str, ruleset: str, source: str) -> RuleMeta:
    title = syntax.text(syntax.required(doc, "title", ""), "title")
    rid = syntax.required(doc, "id", "")
    if not isinstance(rid, str | int) or not str(rid).strip():
        raise RuleError("id", "expected a non-empty string (a UUID is recommended)")
    level = syntax.required(doc, "level", "")
    if level not in SEVERITY:
        raise RuleError("level", f"must be one of {', '.join(SEVERITY)}, got {level!r}")
    techniques, tactics = parse_tags(doc.get("tags"), "tags")
    description = doc.get("description") or ""
    if not isinstance(description, str):
        raise RuleError("description", "expected a string")
    name = doc.get("name") or ""
    if not isinstance(name, str):
        raise RuleError("name", "expected a string")
    refs = doc.get("references") or []
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise RuleError("references", "expected a list of URLs")
    own_ruleset = doc.get("ruleset", ruleset)
    if not isinstance(own_ruleset, str):
        raise RuleError("ruleset", "expected a string")
    return RuleMeta(
        id=str(rid), title=title, level=level, name=name, description=description.strip(),
        ruleset=own_ruleset, kind=kind, techniques=techniques, tactics=tactics,
        references=tuple(refs), source=source,
    )


def _group_by(doc: dict[str, Any], default: tuple[str, ...] | None) -> tuple[str, ...]:
    if "group_by" in doc:
        return syntax.field_list(doc["group_by"], "group_by")
    if default is None:
        raise RuleError("group_by", "is required for this kind of rule")
    return default


def _sigma(doc: dict[str, Any], meta: RuleMeta, throttle: float | None) -> Rule:
    from sigma.exceptions import SigmaError
    from sigma.rule import SigmaRule as PySigmaRule

    for key in ("dataset", "threshold", "sequence", "absence"):
        if key in doc:
            raise RuleError(
                key, "not a key of a Sigma rule (its dataset comes from logsource); "
                "set kind: threshold, sequence or absence for our rule kinds",
            )
    syntax.required(doc, "logsource", "")
    syntax.required(doc, "detection", "")
    try:
        uuid.UUID(str(doc["id"]))
    except ValueError:
        raise RuleError("id", f"a Sigma rule id must be a UUID, got {doc['id']!r}") from None
    logsource = syntax.mapping(doc["logsource"], "logsource")
    # The log source first: a rule for telemetry canhgac does not collect is refused for
    # that reason, not for a field name it would never have had to map.
    category, product, service = (logsource.get(k) for k in ("category", "product", "service"))
    datasets = dataset_for_logsource(category, product, service, KNOWN_DATASETS)
    if datasets is None:
        _refuse_logsource(logsource, service)
    compiled = compile_sigma(doc["detection"], "detection")
    _check_reachable(compiled.trees, datasets)
    predicate, needs = compiled.predicate, compiled.requirement
    types = event_type_guard(logsource.get("category"))
    if types is not None:
        predicate = _with_event_types(predicate, types)
    sigma_doc = {k: v for k, v in doc.items() if k not in _EXT_KEYS}
    try:
        PySigmaRule.from_dict(sigma_doc)  # Sigma's own checks: UUID id, status, dates, tags
    except SigmaError as exc:
        text = str(exc.args[0]) if exc.args else str(exc)
        raise RuleError("", f"not a valid Sigma rule: {text}") from None
    return SigmaRule(meta, datasets, predicate, _group_by(doc, DEFAULT_KEY), throttle, needs)


def _refuse_logsource(logsource: dict[str, Any], service: Any) -> NoReturn:
    hint = (f"use product: canhgac with service: one of {', '.join(sorted(KNOWN_DATASETS))}, "
            "or a logsource listed in docs/detection.md")
    reason = NO_TELEMETRY.get(str(service)) if service is not None else None
    if reason is not None:
        raise RuleError(
            "logsource", "no auditd telemetry: canhgac does not collect the Linux audit log "
            f"(service: {service}); process starts are in logsource category: process_creation",
            reason,
        )
    if service is not None and logsource.get("product") != "canhgac":
        raise RuleError("logsource", f"canhgac collects no {service!r} log ({logsource}); {hint}")
    raise RuleError("logsource", f"no canhgac telemetry matches {logsource}; {hint}")


def _check_reachable(trees: list[Any], datasets: tuple[str, ...]) -> None:
    """Refuse a rule that needs fields none of its datasets' events ever carry."""
    for ds in datasets:
        def absent(path: str, ds: str = ds) -> bool:
            return never_carried(ds, path)

        if any(possible(t, absent)[0] for t in trees):
            return
    missing = sorted(set().union(*(
        absent_fields(t, lambda p: any(never_carried(d, p) for d in datasets)) for t in trees)))
    raise RuleError(
        "detection", f"can never fire: {', '.join(datasets)} events never carry "
        f"{', '.join(missing)} (see docs/detection.md, log sources)", "never_fires",
    )


def _with_event_types(predicate: Predicate, types: frozenset[str]) -> Predicate:
    """The rule's predicate, for events whose ``event.type`` has one of ``types`` only."""

    def guarded(doc: dict[str, Any]) -> bool:
        ev = doc.get("event")
        got = ev.get("type") if isinstance(ev, dict) else None
        if isinstance(got, str):
            ok = got in types
        elif isinstance(got, list):
            ok = any(t in types for t in got if isinstance(t, str))
        else:
            ok = False
        return ok and predicate(doc)

    return guarded


def _dataset(doc: dict[str, Any], path: str, *, required: bool = True) -> tuple[str, ...]:
    if "dataset" not in doc:
        if required:
            raise RuleError(f"{path}dataset", "is required")
        return ()
    return syntax.dataset_list(doc["dataset"], f"{path}dataset", KNOWN_DATASETS)


def _threshold(doc: dict[str, Any], meta: RuleMeta, throttle: float | None) -> Rule:
    datasets = _dataset(doc, "")
    predicate = compile_detections(syntax.required(doc, "detection", ""), "detection")
    spec = syntax.mapping(syntax.required(doc, "threshold", ""), "threshold")
    syntax.only_keys(spec, {"count", "window", "distinct"}, "threshold")
    count = syntax.positive_int(syntax.required(spec, "count", "threshold"), "threshold.count")
    window = syntax.duration(syntax.required(spec, "window", "threshold"), "threshold.window")
    distinct = None
    if "distinct" in spec:
        (distinct,) = syntax.field_list(spec["distinct"], "threshold.distinct")[:1]
    return ThresholdRule(
        meta, datasets, predicate, _group_by(doc, None), count, window, distinct, throttle
    )


def _sequence(doc: dict[str, Any], meta: RuleMeta, throttle: float | None) -> Rule:
    default_ds = _dataset(doc, "", required=False)
    spec = syntax.mapping(syntax.required(doc, "sequence", ""), "sequence")
    syntax.only_keys(spec, {"window", "steps"}, "sequence")
    window = syntax.duration(syntax.required(spec, "window", "sequence"), "sequence.window")
    raw_steps = syntax.required(spec, "steps", "sequence")
    if not isinstance(raw_steps, list) or len(raw_steps) < 2:
        raise RuleError("sequence.steps", "expected a list of at least two steps")
    steps: list[Step] = []
    for i, raw in enumerate(raw_steps):
        path = f"sequence.steps[{i}]"
        raw = syntax.mapping(raw, path)
        syntax.only_keys(raw, {"name", "dataset", "detection", "count"}, path)
        ds = _dataset(raw, f"{path}.", required=False) or default_ds
        if not ds:
            raise RuleError(f"{path}.dataset", "is required (here or at the top of the rule)")
        pred = compile_detections(syntax.required(raw, "detection", path), f"{path}.detection")
        count = syntax.positive_int(raw.get("count", 1), f"{path}.count")
        steps.append(Step(str(raw.get("name") or f"step{i}"), ds, pred, count))
    if steps[-1].count != 1:
        raise RuleError(
            f"sequence.steps[{len(steps) - 1}].count", "the last step fires the rule: count must be 1"
        )
    return SequenceRule(meta, tuple(steps), _group_by(doc, None), window, throttle)


def _absence(doc: dict[str, Any], meta: RuleMeta, throttle: float | None) -> Rule:
    datasets = _dataset(doc, "")
    predicate = compile_detections(syntax.required(doc, "detection", ""), "detection")
    spec = syntax.mapping(syntax.required(doc, "absence", ""), "absence")
    syntax.only_keys(spec, {"timeout", "intervals"}, "absence")
    if ("timeout" in spec) == ("intervals" in spec):
        raise RuleError("absence", "give exactly one of timeout (a duration) or intervals")
    timeout = syntax.duration(spec["timeout"], "absence.timeout") if "timeout" in spec else None
    intervals = None
    if "intervals" in spec:
        value = spec["intervals"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise RuleError("absence.intervals", f"expected a positive number, got {value!r}")
        intervals = float(value)
    return AbsenceRule(
        meta, datasets, predicate, _group_by(doc, None), timeout, intervals, throttle
    )
