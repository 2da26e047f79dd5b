"""The inventory of information systems (danh mục hệ thống thông tin).

Minimal form used by enrichment: which system, unit and level a host belongs to.
The coverage area extends the model (approval, plan, layers) and adds reload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from canhgac.config import field_meta, load_file, load_section


@dataclass
class System:
    id: str
    name: str
    unit: str
    level: int = field(metadata=field_meta(min=1, max=5))
    hosts: list[str] = field(default_factory=list)


@dataclass
class Inventory:
    systems: list[System] = field(default_factory=list)

    def validate(self) -> tuple[str, str] | None:
        seen: dict[str, int] = {}
        hosts: dict[str, str] = {}
        for i, s in enumerate(self.systems):
            if s.id in seen:
                return (f"systems[{i}].id", f"duplicate system id {s.id!r} (also systems[{seen[s.id]}])")
            seen[s.id] = i
            for j, h in enumerate(s.hosts):
                if h in hosts and hosts[h] != s.id:
                    return (f"systems[{i}].hosts[{j}]", f"host {h!r} is already claimed by system {hosts[h]!r}")
                hosts[h] = s.id
        return None


class InventoryHolder:
    """Holds the inventory in force; a reload swaps it atomically."""

    def __init__(self, inventory: Inventory | None = None, source: str = "(none)") -> None:
        self.source = source
        self.set(inventory or Inventory())

    def set(self, inventory: Inventory) -> None:
        self.current = inventory
        self._by_id = {s.id: s for s in inventory.systems}
        self._by_host = {h: s for s in inventory.systems for h in s.hosts}

    def system(self, system_id: str) -> System | None:
        return self._by_id.get(system_id)

    def system_for_host(self, hostname: str) -> System | None:
        return self._by_host.get(hostname)


def load_inventory(path: str | Path | None) -> InventoryHolder:
    if path is None:
        return InventoryHolder()
    return InventoryHolder(load_file(path, Inventory), str(path))


def parse_inventory(data: object, source: str) -> Inventory:
    return load_section(data, Inventory, source)
