"""Detection in the collector: Sigma, threshold, sequence and absence rules, in-stream.

``setup(ctx)`` is the collector component entry point: it validates the
``detection:`` section, loads and compiles the rules, adds the ``detect`` stage to
the pipeline, registers the detection metrics and a watcher that reloads the
rules when their files change. Imports stay inside so that
importing this package (the CLI does) costs nothing. See docs/detection.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collector.context import CollectorContext
    from collector.detect.engine import Engine


def setup(ctx: CollectorContext) -> Engine | None:
    import logging

    from canhgac.config import load_section
    from collector.detect.config import DetectionConfig
    from collector.detect.engine import Engine, EngineLimits
    from collector.detect.metrics import DetectionMetrics
    from collector.detect.reload import RuleWatcher
    from collector.detect.ruleset import select

    cfg = load_section(ctx.config.detection, DetectionConfig, ctx.source, "detection")
    if not cfg.enabled:
        return None
    ruleset = select(cfg, ctx.source)
    loaded = ruleset.loaded
    log = logging.getLogger(__name__)
    for refusal in ruleset.refused:
        log.warning("detection rule refused (%s): %s", refusal.reason, refusal)
    limits = EngineLimits(
        throttle=float(cfg.throttle),
        max_keys=cfg.max_keys,
        max_event_ids=cfg.max_event_ids,
        heartbeat_interval=float(ctx.config.heartbeat_interval),
    )
    engine = Engine([lr.rule for lr in loaded], limits)
    watcher = RuleWatcher(engine, cfg, ctx.source, loaded, refused=ruleset.refused)
    ctx.pipeline.add(engine)
    ctx.registry.register(DetectionMetrics(engine, watcher))
    ctx.add_startable(watcher)
    if not loaded:
        log.warning("detection: no rules loaded (built-in packs missing from this install?)")
    log.info("detection: %d rules over datasets %s; %d refused", len(loaded),
             ", ".join(sorted(engine.datasets)), len(ruleset.refused))
    return engine
