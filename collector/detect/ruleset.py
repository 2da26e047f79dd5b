"""Which rules a collector runs: built-in packs + rule directories - disabled ones."""

from __future__ import annotations

from pathlib import Path

from canhgac.errors import ConfigError
from collector.detect.config import DetectionConfig
from collector.detect.loader import BUILTIN_DIR, RuleSet, builtin_packs, load_rules


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
    return result
