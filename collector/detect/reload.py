"""Reload rules when rule files change, without a restart and without a gap.

Polled (a stat of every rule file every ``reload_interval``), like the inventory
watcher and for the same reasons; SIGHUP is left to the inventory, since an
asyncio loop has one handler per signal. Loading and compiling runs in a worker
thread; the swap (:meth:`Engine.install`) runs on the event loop, between
batches. A reload that fails leaves the rules in force untouched and says why,
once, in the log: a typo in one rule must never switch detection off.

Rules whose document did not change are kept as they are, with their windows
and open throttles; only new or edited rules start with empty state.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from canhgac.errors import ConfigError
from collector.detect.config import DetectionConfig
from collector.detect.engine import Engine
from collector.detect.loader import BUILTIN_DIR, LoadedRule, Refusal, RuleSet, rule_files
from collector.detect.rule import Rule
from collector.detect.ruleset import select

log = logging.getLogger(__name__)

Stamp = tuple[tuple[str, int, int, int], ...]


class RuleWatcher:
    def __init__(
        self,
        engine: Engine,
        cfg: DetectionConfig,
        source: str,
        loaded: list[LoadedRule],
        builtin_root: Path = BUILTIN_DIR,
        refused: list[Refusal] | None = None,
    ) -> None:
        self.engine = engine
        self.cfg = cfg
        self.source = source
        self.builtin_root = builtin_root
        self.loaded = loaded
        self.refused: list[Refusal] = list(refused or [])
        self.reloads_ok = 0
        self.reloads_failed = 0
        self.last_error = ""
        self._stamp = self.stamp()
        self._task: asyncio.Task[None] | None = None

    def _roots(self) -> list[Path]:
        packs = self.cfg.packs
        if packs is None:
            roots = [self.builtin_root]
        else:
            roots = [self.builtin_root / p for p in packs]
        return roots + list(self.cfg.rules_dirs)

    def stamp(self) -> Stamp:
        """Identity, size and mtime of every rule file: any edit, add or remove moves it."""
        out: list[tuple[str, int, int, int]] = []
        for root in self._roots():
            try:
                files = rule_files(root) if root.is_dir() else [root]
            except ConfigError:
                continue
            for f in files:
                try:
                    st = os.stat(f)
                except OSError:
                    continue
                out.append((str(f), st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(sorted(out))

    def load(self) -> RuleSet:
        """Worker-thread part: read and compile everything (ConfigError: config mistakes only)."""
        return select(self.cfg, self.source, builtin_root=self.builtin_root)

    def swap(self, fresh: list[LoadedRule]) -> None:
        """Event-loop part: keep unchanged rules' objects (and state), install the set."""
        previous = {(lr.rule.meta.id, lr.source): lr for lr in self.loaded}
        keep: list[LoadedRule] = []
        rules: list[Rule] = []
        for lr in fresh:
            old = previous.get((lr.rule.meta.id, lr.source))
            chosen = old if old is not None and old.doc == lr.doc else lr
            keep.append(chosen)
            rules.append(chosen.rule)
        self.engine.install(rules)
        self.loaded = keep

    async def check(self) -> bool:
        """Reload if any rule file moved; True when a new rule set was installed."""
        stamp = await asyncio.to_thread(self.stamp)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            result = await asyncio.to_thread(self.load)
        except ConfigError as exc:
            self.reloads_failed += 1
            if str(exc) != self.last_error:
                log.error("detection rules not reloaded, the rules in force stay: %s", exc)
            self.last_error = str(exc)
            return False
        # The good files apply; a refused rule is said once, while it stays refused.
        before = {str(r) for r in self.refused}
        for refusal in result.refused:
            if str(refusal) not in before:
                log.warning("detection rule refused (%s): %s", refusal.reason, refusal)
        self.refused = result.refused
        # A file that was good and now is not keeps its last good rules in force (a typo
        # must not open a detection gap); the good files beside it apply.
        broken = {r.source for r in result.refused}
        fresh_ids = {lr.rule.meta.id for lr in result.loaded}
        kept = [lr for lr in self.loaded
                if lr.source in broken and lr.rule.meta.id not in fresh_ids]
        self.swap(result.loaded + kept)
        self.reloads_ok += 1
        self.last_error = ""
        log.info("detection rules reloaded: %d rules, %d refused", len(result.loaded),
                 len(result.refused))
        return True

    async def start(self) -> None:
        if self.cfg.reload_interval > 0:
            self._task = asyncio.create_task(self._run(), name="detect-rules-watch")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.reload_interval)
            try:
                await self.check()
            except Exception:  # a watcher must never die: the next round retries
                log.exception("detection rule watch failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
