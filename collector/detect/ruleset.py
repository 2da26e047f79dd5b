"""Which rules a collector runs: built-in packs + rule directories - disabled ones."""

from __future__ import annotations

from pathlib import Path

from canhgac.errors import ConfigError
from collector.detect.config import DetectionConfig
from collector.detect.loader import BUILTIN_DIR, RuleSet, builtin_packs, load_rules
from collector.detect.model import RuleError
from collector.detect.sigma_compile import Predicate, compile_detections


def select(
    cfg: DetectionConfig, source: str, section: str = "detection", builtin_root: Path = BUILTIN_DIR
) -> RuleSet:
    """Load what ``cfg`` asks for; config mistakes name collector.yaml and the key.

    A rule that cannot be read is refused (``RuleSet.refused``), never fatal.
    """
    available = builtin_packs(builtin_root)
    packs = available if cfg.packs is None else cfg.packs
    paths: list[tuple[Path, str]] = []
    for i, pack in enumerate(packs):
        if pack not in available:
            raise ConfigError(
                source, f"{section}.packs[{i}]",
                f"unknown pack {pack!r} (available: {', '.join(available) or 'none'})",
            )
        paths.append((builtin_root / pack, f"canhgac/{pack}"))
    for i, d in enumerate(cfg.rules_dirs):
        if not d.exists():
            raise ConfigError(source, f"{section}.rules_dirs[{i}]", f"{d} does not exist")
        paths.append((d, d.name if d.is_dir() else d.parent.name))
    result = load_rules(paths)
    loaded = result.loaded
    for i, selector in enumerate(cfg.disabled):
        if not any(lr.rule.meta.matches_selector(selector) for lr in loaded) and not result.refused:
            raise ConfigError(
                source, f"{section}.disabled[{i}]", f"no loaded rule has id or name {selector!r}"
            )
    result.loaded = [lr for lr in loaded
                     if not any(lr.rule.meta.matches_selector(s) for s in cfg.disabled)]
    _apply_exceptions(cfg, result, source, section)
    return result


def _apply_exceptions(cfg: DetectionConfig, result: RuleSet, source: str, section: str) -> None:
    """Compile each exception's selection and give it to the rules it names."""
    per_rule: dict[int, list[Predicate]] = {}
    for i, exc in enumerate(cfg.exceptions):
        path = f"{section}.exceptions[{i}]"
        if not exc.reason.strip():
            raise ConfigError(source, f"{path}.reason", "say why this activity is known good")
        targets = [lr.rule for lr in result.loaded if lr.rule.meta.matches_selector(exc.rule)]
        if not targets and not result.refused:
            raise ConfigError(source, f"{path}.rule", f"no loaded rule has id or name {exc.rule!r}")
        if not exc.when:
            raise ConfigError(source, f"{path}.when", "an empty selection would except everything")
        try:
            pred = compile_detections({"when": exc.when, "condition": "when"}, "")
        except RuleError as err:  # err.path is ".when.<key>"
            raise ConfigError(source, f"{path}{err.path}", err.problem) from None
        for rule in targets:
            per_rule.setdefault(id(rule), []).append(pred)
    for lr in result.loaded:
        lr.rule.exceptions = tuple(per_rule.get(id(lr.rule), ()))
