"""The literal prefilter changes nothing: the engine's candidates always include every match.

Reference: every rule of the event's dataset evaluated on the event (the compiled
predicates the per-modifier tests pin down). Optimised: only the rules
``DatasetIndex.candidates`` admits. On random events built from the rules' own
literals (in random case, with non-ASCII look-alikes such as the Kelvin sign and
the long s that ``re`` case folding treats as ASCII letters, lists, numbers and
booleans) the two must give the same set of matching rules.

Rules: the built-in packs, every loadable rule of the public SigmaHQ corpus in
``../shared/sigma-linux`` (when the checkout has it beside it) and the edge cases
below, which use every modifier the requirement reader knows about.
"""

from __future__ import annotations

import random
import string
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.detect.engine import Engine
from collector.detect.kinds.sigma import SigmaRule
from collector.detect.loader import BUILTIN_DIR, build_rule, builtin_packs, load_paths, load_rules
from collector.detect.prefilter import DatasetIndex, requirement
from collector.detect.sigma_compile import parse_condition, parse_detections

ROOT = Path(__file__).resolve().parents[2]
SIGMA_DIRS = [p for p in (ROOT.parent / "shared" / "sigma-linux",) if p.is_dir()]

EDGE_DETECTIONS: list[dict[str, Any]] = [
    {"sel": {"CommandLine|contains|cased": "SeCrEt"}, "condition": "sel"},
    {"sel": {"CommandLine": "*bash*-i*"}, "condition": "sel"},
    {"sel": {"CommandLine|cased": "a?c*Kx"}, "condition": "sel"},
    {"sel": {"CommandLine|re": "(?i)sku[0-9]+"}, "condition": "sel"},
    {"sel": {"CommandLine|re|i": "skip\\s+this"}, "condition": "sel"},
    {"sel": {"CommandLine|re": "^ab|cd$"}, "condition": "sel"},
    {"sel": {"CommandLine|re": "-(W|R)\\s?(\\s|')x{2}[0-9A-c]"}, "condition": "sel"},
    {"sel": {"CommandLine|re|i": "(?:sh|ba(sh)?)\\s+-[ci]"}, "condition": "sel"},
    {"sel": {"CommandLine|windash|contains": "-enc"}, "condition": "sel"},
    {"sel": {"CommandLine|base64offset|contains": "/bin/sh"}, "condition": "sel"},
    {"sel": {"CommandLine|contains|all": ["curl", "| sh"]}, "condition": "sel"},
    {"sel": {"Image|endswith": "/ſsh"}, "condition": "sel"},
    {"sel": {"Image|endswith": "/ssh"}, "flt": {"CommandLine|contains": "-T"},
     "condition": "sel and not flt"},
    {"sel": {"Image|endswith": "/bin/sh"}, "other": {"User": "root"},
     "condition": "sel or other"},
    {"sel": {"ProcessId": 4444}, "condition": "sel"},
    {"sel": {"CommandLine": None, "Image|endswith": "/kthreadd"}, "condition": "sel"},
    {"sel": {"CommandLine|exists": True, "Image|startswith": "/dev/shm/"},  # noqa: S108
     "condition": "sel"},
    {"sel": {"CommandLine|contains": ""}, "condition": "sel"},
    {"sel": {"CommandLine|endswith": "ế.sh"}, "condition": "sel"},
    {"sel": {"CommandLine|contains": ["ncat", "nc -e"]}, "img": {"Image|endswith": "/nc"},
     "condition": ["sel", "img"]},
    {"keywords": ["wget * | sh", "*Accepted*"], "condition": "keywords"},
    {"sel": {"event.type": "start"}, "condition": "sel"},
]


def _edge_rules() -> list[SigmaRule]:
    out = []
    for i, det in enumerate(EDGE_DETECTIONS):
        rule = build_rule({
            "title": f"edge {i}", "id": str(uuid.UUID(int=i + 1)), "level": "low",
            "logsource": {"product": "canhgac", "service": "process"}, "detection": det,
        })
        assert isinstance(rule, SigmaRule)
        out.append(rule)
    return out


def _all_rules() -> list[SigmaRule]:
    loaded = load_paths([(BUILTIN_DIR / p, f"canhgac/{p}") for p in builtin_packs()])
    for d in SIGMA_DIRS:
        loaded += load_rules([(d, d.name)]).loaded
    rules = [lr.rule for lr in loaded if isinstance(lr.rule, SigmaRule)]
    return rules + _edge_rules()


RULES = _all_rules()
ENGINE = Engine(list(RULES))
INDEX: dict[str, DatasetIndex] = ENGINE._index
BY_DATASET: dict[str, list[SigmaRule]] = {}
for _r in RULES:
    for _ds in _r.datasets:
        BY_DATASET.setdefault(_ds, []).append(_r)

# Literals the rules need, per field: what random events are built from.
LITERALS: dict[str, list[str]] = {}
for _r in RULES:
    for _clause in _r.requirement or ():
        for _path, _alts in _clause.items():
            LITERALS.setdefault(_path, []).extend(lit for lit, _ in _alts)
FIELDS = sorted(set(LITERALS) | {"process.command_line", "process.executable", "user.name",
                                 "process.pid", "file.path", "message", "event.original"})
NOISE = ["ſ", "\u212a", "İ", "Σ", "ς", "ế", "Đ", " ", "/", "-", "|", "\n", "*", "?", "é"]


def _mutate_case(rng: random.Random, text: str) -> str:
    roll = rng.random()
    if roll < 0.4:
        return text
    if roll < 0.6:
        return text.upper()
    if roll < 0.7:  # non-ASCII look-alikes that re's case folding equates with ASCII letters
        return text.replace("s", "ſ").replace("k", "\u212a")
    return "".join(c.upper() if rng.random() < 0.5 else c for c in text)


def _text(rng: random.Random, path: str) -> str:
    pool = LITERALS.get(path) or LITERALS["process.command_line"]
    pieces = []
    for _ in range(rng.randint(0, 4)):
        roll = rng.random()
        if roll < 0.6:
            pieces.append(_mutate_case(rng, rng.choice(pool)))
        elif roll < 0.8:
            pieces.append(rng.choice(NOISE))
        else:
            pieces.append("".join(rng.choices(string.ascii_letters + " /-.", k=rng.randint(1, 6))))
    return "".join(pieces)


def _value(rng: random.Random, path: str) -> Any:
    roll = rng.random()
    if roll < 0.75:
        return _text(rng, path)
    if roll < 0.85:
        return [_text(rng, path) for _ in range(rng.randint(0, 3))] + [None] * rng.randint(0, 1)
    if roll < 0.9:
        return rng.choice([4444, 0, 22, True, False, 1.5])
    if roll < 0.95:
        return {"nested": _text(rng, path)}
    return None


def random_event(rng: random.Random) -> dict[str, Any]:
    dataset = "process" if rng.random() < 0.6 else rng.choice(sorted(BY_DATASET))
    etype = rng.choice(["start", "start", "start", "end", "creation", "change", "deletion"])
    doc: dict[str, Any] = {"event": {"dataset": dataset,
                                     "type": [etype] if rng.random() < 0.9 else etype}}
    for path in [f for f in FIELDS if rng.random() < 0.5]:
        parts = path.split(".")
        cur = doc
        for p in parts[:-1]:
            nxt = cur.setdefault(p, {})
            if not isinstance(nxt, dict):
                break
            cur = nxt
        else:
            cur[parts[-1]] = _value(rng, path)
    return doc


def _reference(doc: dict[str, Any]) -> set[str]:
    return {r.meta.id for r in BY_DATASET.get(doc["event"]["dataset"], []) if r.predicate(doc)}


def _optimised(doc: dict[str, Any]) -> set[str]:
    index = INDEX.get(doc["event"]["dataset"])
    if index is None:
        return set()
    return {h.__self__.meta.id for h in index.candidates(doc)  # type: ignore[attr-defined]
            if h.__self__.predicate(doc)}  # type: ignore[attr-defined]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_prefilter_agrees_with_evaluating_every_rule(rng: random.Random) -> None:
    doc = random_event(rng)
    assert _optimised(doc) == _reference(doc), doc


def test_random_events_do_match_many_rules() -> None:
    """The generator is not vacuous: its events fire a good share of the rules."""
    rng = random.Random(15)
    fired: set[str] = set()
    for _ in range(50_000):
        doc = random_event(rng)
        got = _reference(doc)
        assert _optimised(doc) == got, doc
        fired |= got
    with_requirement = {r.meta.id for r in RULES if r.requirement}
    assert len(fired & with_requirement) >= len(with_requirement) // 3, (
        len(fired & with_requirement), len(with_requirement))


def test_most_rules_have_a_requirement() -> None:
    """The prefilter applies widely (otherwise the engine evaluates every rule)."""
    sigma = [r for r in RULES if r.meta.ruleset not in ("custom",)]
    assert sum(1 for r in sigma if r.requirement) >= 0.9 * len(sigma)


def _req(det: dict[str, Any]) -> Any:
    (cond,) = parse_detections(det).parsed_condition
    return requirement(parse_condition(cond))


def test_requirement_shapes() -> None:
    assert _req({"s": {"CommandLine|contains": "Bash -I"}, "condition": "s"}) == (
        {"process.command_line": frozenset({("bash -i", True)})},)
    # AND keeps the two most selective clauses; NOT gives none; OR needs every branch.
    two = _req({"a": {"Image|endswith": "/nc"}, "b": {"CommandLine|contains": " -e "},
                "c": {"User": "x"}, "condition": "a and b and c and not c"})
    assert [set(c) for c in two] == [{"process.command_line"}, {"process.executable"}]
    assert _req({"a": {"Image|endswith": "/nc"}, "b": {"ProcessId": 1},
                 "condition": "a or b"}) is None
    # A wildcard string needs its longest plain run, trusted on ASCII text only.
    assert _req({"s": {"CommandLine": "wget*http*|*bash"}, "condition": "s"}) == (
        {"process.command_line": frozenset({("wget", False)})},)
    # A regex needs its longest top-level run of fixed text, with its few alternatives.
    assert _req({"s": {"CommandLine|re": "busybox\\s+nc"}, "condition": "s"}) == (
        {"process.command_line": frozenset({("busybox", False)})},)
    assert _req({"s": {"CommandLine|re": "ab|cD"}, "condition": "s"}) == (
        {"process.command_line": frozenset({("ab", False), ("cd", False)})},)
    assert _req({"s": {"CommandLine|re": "-(W|r)\\s?[0-9]{2}x"}, "condition": "s"}) == (
        {"process.command_line": frozenset({("-w", False), ("-r", False)})},)
    assert _req({"s": {"CommandLine|re": "\\d+"}, "condition": "s"}) is None
    # Keywords: searched in the raw line fields.
    kw = _req({"keywords": ["Accepted password"], "condition": "keywords"})
    assert kw == ({"message": frozenset({("accepted password", True)}),
                   "event.original": frozenset({("accepted password", True)})},)
