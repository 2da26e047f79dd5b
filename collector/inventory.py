"""The inventory of information systems (danh mục hệ thống thông tin).

One YAML file lists every system a province's units operate, with its security
level (cấp độ), the level dossier approval, the security plan, and what each of
the four protection layers rests on. Enrichment reads it on the hot path
(``system_for_host``); the coverage model reads everything else.

The file is edited by people, so validation is strict and every error names the
file, the key path and the problem; a reload that fails keeps the previous
inventory in force (a typo must never blank out the province's coverage).
See docs/inventory.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import fnmatch
import functools
import logging
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from canhgac.config import (
    did_you_mean,
    field_meta,
    line_of,
    load_section,
    read_yaml,
    yaml_lines,
)
from canhgac.errors import TOP_LEVEL, ConfigError, ConfigErrors
from canhgac.message import Message
from canhgac.text import nfc

log = logging.getLogger(__name__)

LEVELS = (1, 2, 3, 4, 5)
# planned -> building -> operating (-> upgrading -> operating) -> retired
STATUSES = ("planned", "building", "operating", "upgrading", "retired")
# The obligations (approval before go-live, plan, the four layers) are about systems in
# operation: an upgrade in progress runs on, a planned, building or retired one does not.
IN_OPERATION = frozenset({"operating", "upgrading"})
_GLOB_CHARS = frozenset("*?[")


def is_pattern(host: str) -> bool:
    """Hosts with glob characters are agent selectors, not hosts of their own."""
    return any(c in _GLOB_CHARS for c in host)


NOT_EMPTY = Message("must not be empty", "không được để trống")


def subject_system(system_id: str) -> Message:
    """What an inventory error is about: the system, by the id a person wrote."""
    return Message("system {id}", "hệ thống {id}", id=system_id)


def _unknown_unit(unit: str, units: set[str]) -> Message:
    return Message("unknown unit {unit!r}{hint} (not in units)",
                   "đơn vị {unit!r} không có trong danh sách units{hint}",
                   unit=unit, hint=did_you_mean(unit, units))


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_VN_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def parse_date(value: str) -> dt.date:
    """2024-09-30 (ISO) or 30/09/2024 (dd/mm/yyyy, as Vietnamese documents write it).

    Nothing else: not 20240930, not week dates, not mm/dd — an ambiguous date in a
    compliance record is worse than a refused one. Raises ValueError.
    """
    text = value.strip()
    if _ISO_DATE.match(text):
        return dt.date.fromisoformat(text)
    m = _VN_DATE.match(text)
    if m:
        return dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    raise ValueError(f"not a date: {value!r}")


def _check_date(value: str | None, key: str) -> tuple[str, str] | None:
    if value is None:
        return None
    try:
        parse_date(value)
    except ValueError:
        return (key, Message("not a date: {value!r} (use YYYY-MM-DD or dd/mm/yyyy, e.g. "
                             "2024-09-30 or 30/09/2024)",
                             "không phải ngày: {value!r} (viết YYYY-MM-DD hoặc dd/mm/yyyy, ví dụ "
                             "2024-09-30 hoặc 30/09/2024)", value=value))
    return None


def dates_to_text(data: Any) -> Any:
    """Text in one form before the typed loader sees it.

    YAML turns unquoted 2024-09-30 into a date: back to text. Every string (keys too) is
    normalised to Unicode NFC: "Sở Y tế" typed in decomposed form (NFD, what many
    keyboards and copy-paste give) is the same unit as the precomposed one on screen.
    """
    if isinstance(data, dict):
        return {nfc(k) if isinstance(k, str) else k: dates_to_text(v) for k, v in data.items()}
    if isinstance(data, list):
        return [dates_to_text(v) for v in data]
    if isinstance(data, dt.datetime):
        return data.date().isoformat()
    if isinstance(data, dt.date):
        return data.isoformat()
    if isinstance(data, str):
        return nfc(data)
    return data



@dataclass
class Approval:
    """The level dossier (hồ sơ đề xuất cấp độ) and its approval decision."""

    approved: bool = False
    decision: str = ""  # decision number, e.g. "1234/QĐ-UBND"
    date: str | None = None  # date of the approval decision
    authority: str = ""  # who approved: "UBND tỉnh", "Sở Thông tin và Truyền thông", ...

    def validate(self) -> tuple[str, str] | None:
        if self.approved and self.date is None:
            return ("date", Message("an approved level needs the decision date",
                                    "cấp độ đã phê duyệt cần ngày của quyết định phê duyệt"))
        return _check_date(self.date, "date")

    @property
    def day(self) -> dt.date | None:
        return parse_date(self.date) if self.date else None


@dataclass
class Plan:
    """The security plan (phương án bảo đảm an toàn thông tin) of the approved level."""

    deployed: str | None = None  # date the plan was fully deployed; absent = not yet
    document: str = ""

    def validate(self) -> tuple[str, str] | None:
        return _check_date(self.deployed, "deployed")

    @property
    def day(self) -> dt.date | None:
        return parse_date(self.deployed) if self.deployed else None


@dataclass
class Contact:
    name: str
    role: str = ""
    phone: str = ""
    email: str = ""
    trained: str | None = None  # last security training (đào tạo, tập huấn) attended

    def validate(self) -> tuple[str, str] | None:
        return _check_date(self.trained, "trained")


@dataclass
class Onsite:
    """Layer 1, lực lượng tại chỗ: the unit's own first responders."""

    team: list[Contact] = field(default_factory=list)


@dataclass
class Monitoring:
    """Layer 2, giám sát chuyên nghiệp: who runs the 24/7 SOC for this system."""

    provider: str = ""
    # in_house: the unit's (or the province's) own SOC, proven by canhgac telemetry;
    # contracted: a monitoring service under contract, in force between the two dates.
    kind: Literal["in_house", "contracted"] = "in_house"
    contract_from: str | None = None
    contract_until: str | None = None

    def validate(self) -> tuple[str, str] | None:
        for key in ("contract_from", "contract_until"):
            bad = _check_date(getattr(self, key), key)
            if bad:
                return bad
        if self.kind == "contracted":
            if not self.provider.strip():
                return ("provider", Message(
                    "a contracted monitoring service needs its provider's name",
                    "dịch vụ giám sát thuê ngoài cần tên nhà cung cấp"))
            if self.contract_until is None:
                return ("contract_until", Message(
                    "a contracted monitoring service needs the contract's end date",
                    "dịch vụ giám sát thuê ngoài cần ngày hết hạn hợp đồng"))
        if self.contract_from and self.contract_until and \
                parse_date(self.contract_from) > parse_date(self.contract_until):
            return ("contract_until", Message(
                "ends ({until}) before it starts ({start})",
                "kết thúc ({until}) trước khi bắt đầu ({start})",
                until=self.contract_until, start=self.contract_from))
        return None

    def in_force(self, today: dt.date) -> bool:
        """A contracted service whose contract covers ``today``."""
        if self.kind != "contracted" or self.contract_until is None:
            return False
        start = parse_date(self.contract_from) if self.contract_from else None
        return (start is None or start <= today) and today <= parse_date(self.contract_until)


@dataclass
class Finding:
    """One finding of an assessment, followed up until it is fixed (khắc phục)."""

    title: str
    owner: str = ""  # who must fix it
    due: str | None = None
    state: Literal["open", "fixed", "accepted"] = "open"  # accepted: risk accepted in writing
    fixed_on: str | None = None

    def validate(self) -> tuple[str, str] | None:
        if not self.title.strip():
            return ("title", NOT_EMPTY)
        for key in ("due", "fixed_on"):
            bad = _check_date(getattr(self, key), key)
            if bad:
                return bad
        if self.state == "fixed" and self.fixed_on is None:
            return ("fixed_on", Message("a fixed finding needs the date it was fixed",
                                        "tồn tại đã khắc phục cần ngày khắc phục"))
        return None

    def overdue(self, today: dt.date) -> bool:
        return self.state == "open" and self.due is not None and parse_date(self.due) < today


@dataclass
class Assessment:
    """Layer 3, one independent inspection (kiểm tra, đánh giá độc lập)."""

    date: str
    organisation: str  # the assessor (tổ chức kiểm tra, đánh giá)
    result: Literal["passed", "passed_with_findings", "failed"] = "passed"
    report: str = ""
    # Only an assessor independent of the owner and operating units counts for layer 3;
    # a self-assessment is recorded (it has findings too) but earns nothing.
    independent: bool = False
    findings: list[Finding] = field(default_factory=list)

    def validate(self) -> tuple[str, str] | None:
        return _check_date(self.date, "date")

    @property
    def day(self) -> dt.date:
        return parse_date(self.date)


@dataclass
class National:
    """Layer 4: whether this system's events are shared with the national center."""

    enabled: bool = False


@dataclass
class Hosting:
    """Where the system runs: the provincial data center (trung tâm dữ liệu) or elsewhere."""

    location: Literal["provincial_dc", "unit", "cloud", "other"] = "provincial_dc"
    name: str = ""  # e.g. the data center's or the cloud provider's name


@dataclass
class System:
    id: str
    name: str
    unit: str  # the owner unit (đơn vị chủ quản)
    level: Literal[1, 2, 3, 4, 5]  # the level the dossier proposes or had approved
    status: Literal["planned", "building", "operating", "upgrading", "retired"] = "operating"
    # The day it went (or goes) into operation: a system new after the province's
    # deadline must be approved before that day, not by the deadline it never had.
    operating_since: str | None = None
    # An upgrade (nâng cấp) goes into operation on this day: the level must be approved
    # again before it, like a new system's ("hệ thống mới hoặc nâng cấp").
    upgraded_on: str | None = None
    # The day the upgrade was decided: an approval dated before it approved the old
    # system. Defaults to operating_since (a re-approval comes after the first go-live).
    upgrade_started: str | None = None
    retired_on: str | None = None
    # A new level proposed in a dossier not yet approved (re-classification): shown and
    # flagged; obligations follow ``level`` until the approval is recorded.
    proposed_level: int | None = field(default=None, metadata=field_meta(min=1, max=5))
    operating_unit: str = ""  # đơn vị vận hành, when not the owner unit
    hosting: Hosting = field(default_factory=Hosting)
    hosts: list[str] = field(default_factory=list)
    approval: Approval = field(default_factory=Approval)
    plan: Plan = field(default_factory=Plan)
    onsite: Onsite = field(default_factory=Onsite)
    monitoring: Monitoring = field(default_factory=Monitoring)
    assessments: list[Assessment] = field(default_factory=list)
    national: National = field(default_factory=National)

    def validate(self) -> tuple[str, str] | None:
        if isinstance(self.level, bool):  # YAML true == 1 would pass the Literal check
            return ("level", Message("must be one of 1, 2, 3, 4, 5, got {got}",
                                     "phải là một trong 1, 2, 3, 4, 5, đang là {got}",
                                     got=str(self.level).lower()))
        if not self.id.strip():
            return ("id", NOT_EMPTY)
        # The id becomes a Prometheus label and a URL segment: keep it plain.
        if not all(c.isascii() and (c.isalnum() or c in "-_.") for c in self.id):
            return ("id", Message("{id!r}: use ASCII letters, digits, '-', '_' or '.'",
                                  "{id!r}: chỉ dùng chữ cái không dấu, chữ số, '-', '_' hoặc '.'",
                                  id=self.id))
        if not self.name.strip():
            return ("name", NOT_EMPTY)
        for key in ("operating_since", "upgraded_on", "upgrade_started", "retired_on"):
            bad_date = _check_date(getattr(self, key), key)
            if bad_date:
                return bad_date
        if not self.unit.strip():
            return ("unit", NOT_EMPTY)
        if self.status == "retired" and self.retired_on is None:
            return ("retired_on", Message("a retired system needs the day it was retired",
                                          "hệ thống đã dừng hoạt động cần ngày dừng"))
        if self.status == "upgrading" and self.upgraded_on is None:
            return ("upgraded_on", Message(
                "an upgrading system needs the day the upgrade goes live",
                "hệ thống đang nâng cấp cần ngày bản nâng cấp đưa vào vận hành"))
        if self.upgraded_on and not (self.upgrade_started or self.operating_since):
            return ("upgrade_started", Message(
                "an upgrade needs the day it was decided (or the system's operating_since): "
                "an approval before it is the old system's",
                "việc nâng cấp cần ngày quyết định nâng cấp (hoặc operating_since của hệ "
                "thống): phê duyệt trước ngày đó là của hệ thống cũ"))
        own = {nfc(self.unit).casefold(), nfc(self.operating_unit).casefold()} - {""}
        for j, a in enumerate(self.assessments):
            if a.independent and nfc(a.organisation).casefold() in own:
                return (f"assessments[{j}].independent", Message(
                    "{org!r} is the system's own unit: a self-assessment is not independent "
                    "(set independent: false)",
                    "{org!r} là đơn vị của chính hệ thống: tự đánh giá không phải đánh giá "
                    "độc lập (đặt independent: false)", org=a.organisation))
        seen: dict[str, int] = {}
        for j, h in enumerate(self.hosts):
            key = h.lower()
            if key in seen:
                return (f"hosts[{j}]", Message("host {host!r} is listed twice (also {other})",
                                               "máy {host!r} được liệt kê hai lần (cả ở {other})",
                                               host=h, other=f"hosts[{seen[key]}]"))
            seen[key] = j
        return None

    # Cached: the coverage model asks for these per system on every computation.
    @functools.cached_property
    def exact_hosts(self) -> list[str]:
        return [h for h in self.hosts if not is_pattern(h)]

    @functools.cached_property
    def host_patterns(self) -> list[str]:
        return [h for h in self.hosts if is_pattern(h)]

    def last_assessment(self) -> Assessment | None:
        return max(self.assessments, key=lambda a: a.day, default=None)

    @property
    def in_operation(self) -> bool:
        return self.status in IN_OPERATION

    @property
    def operator(self) -> str:
        """The unit that runs it day to day (the owner unless another is named)."""
        return self.operating_unit or self.unit

    @property
    def upgrade_boundary(self) -> dt.date | None:
        """Approvals before this day approved the system as it was before its upgrade."""
        if not self.upgraded_on:
            return None
        day = self.upgrade_started or self.operating_since
        return parse_date(day) if day else None

    def open_findings(self) -> list[tuple[Assessment, Finding]]:
        return [(a, f) for a in self.assessments for f in a.findings if f.state == "open"]


@dataclass
class Inventory:
    province: str = ""
    # The provincial department that organises the yearly inspection of every unit's
    # systems and keeps the link with the national center (Hải Dương 2b, 2c: "Giao Sở
    # Thông tin và Truyền thông"); obligations of those kinds are its own, not the unit's.
    department: str = ""
    units: list[str] = field(default_factory=list)  # when given, every system.unit must be one
    systems: list[System] = field(default_factory=list)

    def validate(self) -> tuple[str, str] | None:
        return next(self.problems(), None)

    def problems(self) -> Iterator[tuple[str, str]]:
        """Every problem of the whole (key path, message), not just the first."""
        if not self.systems:
            yield ("systems", Message("the inventory lists no system (at least one is needed)",
                                      "danh mục không có hệ thống nào (cần ít nhất một)"))
            return
        units = set(self.units)
        seen: dict[str, int] = {}
        hosts: dict[str, tuple[str, int, int]] = {}
        patterns: list[tuple[str, str, int, int]] = []
        for i, s in enumerate(self.systems):
            if s.id in seen:
                yield (f"systems[{i}].id", Message(
                    "duplicate system id {id!r} (also {other})",
                    "mã hệ thống {id!r} bị trùng (cả ở {other})",
                    id=s.id, other=f"systems[{seen[s.id]}]"))
                continue
            seen[s.id] = i
            if units and s.unit not in units:
                yield (f"systems[{i}].unit", _unknown_unit(s.unit, units))
            if units and s.operating_unit and s.operating_unit not in units:
                yield (f"systems[{i}].operating_unit", _unknown_unit(s.operating_unit, units))
            for j, h in enumerate(s.hosts):
                key = h.lower()
                if key in hosts and hosts[key][0] != s.id:
                    other, oi, oj = hosts[key]
                    yield (f"systems[{i}].hosts[{j}]", Message(
                        "host {host!r} is already claimed by system {other!r} ({where})",
                        "máy {host!r} đã thuộc hệ thống {other!r} ({where})",
                        host=h, other=other, where=f"systems[{oi}].hosts[{oj}]"))
                    continue
                hosts[key] = (s.id, i, j)
                if is_pattern(h):
                    patterns.append((key, s.id, i, j))
        # A hostname of one system that another system's selector would also match
        # is claimed twice just the same.
        for key, (sid, i, j) in hosts.items():
            if is_pattern(key):
                continue
            for pat, psid, pi, pj in patterns:
                if psid != sid and fnmatch.fnmatchcase(key, pat):
                    yield (f"systems[{i}].hosts[{j}]", Message(
                        "host {host!r} is also matched by {pattern!r} of system {other!r} "
                        "({where})",
                        "máy {host!r} cũng khớp mẫu {pattern!r} của hệ thống {other!r} ({where})",
                        host=key, pattern=pat, other=psid, where=f"systems[{pi}].hosts[{pj}]"))

    def unit_names(self) -> list[str]:
        """Declared units first (in order), then any others systems name."""
        out = list(self.units)
        for s in self.systems:
            if s.unit not in out:
                out.append(s.unit)
        return out


def parse_inventory(data: object, source: str, lines: dict[str, int] | None = None) -> Inventory:
    """Load and check the whole inventory; every problem at once (ConfigErrors), each with
    its key path, the system's id and, when ``lines`` come from the file, its line."""
    data = dates_to_text(data)
    if not isinstance(data, dict):
        raise ConfigError(source, TOP_LEVEL, Message(
            "expected a mapping with a systems: list",
            "cần một ánh xạ khóa: giá trị có danh sách systems:"))
    errors: list[ConfigError] = []
    raw_systems = data.get("systems")
    if raw_systems is not None and not isinstance(raw_systems, list):
        raise ConfigError(source, "systems", Message("expected a list of systems",
                                                     "cần một danh sách hệ thống"))
    head = load_section({k: v for k, v in data.items() if k != "systems"}, Inventory, source,
                        validate=False)
    systems: list[System] = []
    index: list[int] = []  # position in the file of each system that loaded
    for i, raw in enumerate(raw_systems or []):
        try:
            systems.append(load_section(raw, System, source, f"systems[{i}]"))
            index.append(i)
        except ConfigError as exc:
            errors.append(exc)
    inventory = dataclasses.replace(head, systems=systems)
    if systems or not errors:  # whole-inventory checks, over the systems that loaded
        for path, msg in inventory.problems():
            path = re.sub(r"systems\[(\d+)\]", lambda m: f"systems[{index[int(m.group(1))]}]",
                          path)
            errors.append(ConfigError(source, path, msg))
        errors.sort(key=lambda e: [int(n) for n in re.findall(r"\d+", e.path)[:1]] or [-1])
    if errors:
        raise ConfigErrors([_located(e, raw_systems or [], lines or {}) for e in errors])
    return inventory


def _located(exc: ConfigError, raw_systems: list[Any], lines: dict[str, int]) -> ConfigError:
    """The same error, with the system's id and the file's line where known."""
    subject = ""
    m = re.match(r"systems\[(\d+)\]", exc.path)
    if m and int(m.group(1)) < len(raw_systems):
        raw = raw_systems[int(m.group(1))]
        sid = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(sid, str) and sid:
            subject = subject_system(sid)
    return ConfigError(exc.source, exc.path, exc.problem, line=line_of(lines, exc.path),
                       subject=subject)


def read_inventory(path: str | Path) -> Inventory:
    """Load and validate; raises ConfigError(s) naming file, line, key path and problem."""
    p = Path(path)
    data = read_yaml(p)
    try:
        lines = yaml_lines(p.read_text(encoding="utf-8"))
    except OSError:
        lines = {}
    return parse_inventory(data, str(p), lines)


class InventoryHolder:
    """Holds the inventory in force; a reload swaps it atomically or not at all."""

    def __init__(self, inventory: Inventory | None = None, source: str = "(none)") -> None:
        self.source = source
        self.path: Path | None = None
        self.reloads_ok = 0
        self.reloads_failed = 0
        self.last_error = ""  # the problem with the file on disk, "" when it is in force
        self.loaded_at = 0.0
        self._listeners: list[Callable[[Inventory], None]] = []
        self.set(inventory or Inventory())

    def set(self, inventory: Inventory) -> None:
        by_id = {s.id: s for s in inventory.systems}
        by_host = {h.lower(): s for s in inventory.systems for h in s.exact_hosts}
        patterns = [(p.lower(), s) for s in inventory.systems for p in s.host_patterns]
        # One tuple assignment: readers on other threads see old or new, never a mix.
        self._by_id, self._by_host, self._patterns, self.current = by_id, by_host, patterns, inventory
        self.loaded_at = time.time()
        for fn in list(self._listeners):
            fn(inventory)

    def on_change(self, fn: Callable[[Inventory], None]) -> None:
        self._listeners.append(fn)

    def system(self, system_id: str) -> System | None:
        return self._by_id.get(system_id)

    def has_systems(self) -> bool:
        """An inventory is in force (without one, no system can be called unknown)."""
        return bool(self._by_id)

    def system_for_host(self, hostname: str) -> System | None:
        key = hostname.lower()
        found = self._by_host.get(key)
        if found is not None or not self._patterns:
            return found
        for pat, s in self._patterns:
            if fnmatch.fnmatchcase(key, pat):
                return s
        return None

    def reload(self) -> bool:
        """Re-read ``path``; on any problem log it and keep the inventory in force."""
        if self.path is None:
            return False
        try:
            inventory = read_inventory(self.path)
        except ConfigError as exc:
            self.reloads_failed += 1
            self.last_error = str(exc)
            log.error("inventory reload refused, previous inventory stays in force: %s", exc)
            return False
        self.set(inventory)
        self.reloads_ok += 1
        self.last_error = ""
        log.info("inventory reloaded from %s: %d systems", self.path, len(inventory.systems))
        return True


def load_inventory(path: str | Path | None) -> InventoryHolder:
    if path is None:
        return InventoryHolder()
    holder = InventoryHolder(read_inventory(path), str(path))
    holder.path = Path(path)
    return holder


class InventoryWatcher:
    """Reloads the holder when its file changes (polled) or on SIGHUP.

    Polling (stat every ``interval`` seconds) rather than inotify: it works on
    every filesystem, needs no extra dependency, and catches editors that
    replace the file by rename as well as ones that write in place.
    """

    def __init__(self, holder: InventoryHolder, interval: float = 2.0, sighup: bool = True) -> None:
        self.holder = holder
        self.interval = interval
        self.sighup = sighup
        self._task: asyncio.Task[None] | None = None
        self._stamp = self._stat()
        self._sighup_installed = False

    def _stat(self) -> tuple[int, int, int] | None:
        if self.holder.path is None:
            return None
        try:
            st = os.stat(self.holder.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def check(self) -> bool:
        """Reload when the file's identity, size or mtime moved; True if reloaded."""
        stamp = self._stat()
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        return self.holder.reload()

    async def start(self) -> None:
        if self.holder.path is None:
            return
        self._stamp = self._stat()
        if self.sighup:
            try:
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_sighup)
                self._sighup_installed = True
            except (NotImplementedError, RuntimeError, ValueError):  # not main thread / platform
                log.warning("SIGHUP reload unavailable here; file polling still reloads")
        self._task = asyncio.create_task(self._run(), name="inventory-watch")

    def _on_sighup(self) -> None:
        self._stamp = self._stat()
        self.holder.reload()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.check()
            except Exception:  # a watcher must never die: the next tick retries
                log.exception("inventory watch failed")

    async def stop(self) -> None:
        if self._sighup_installed:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._sighup_installed = False
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
