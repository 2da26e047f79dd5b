"""Host inventory: what this machine is (os, kernel, boot, addresses).

One ``host.inventory`` event (kind ``state``) at start, then again every
``interval`` (default 6 h) or as soon as the address set changes, so the
collector's view of the host stays current without a steady stream of
duplicates. All fields are ECS ``host.*``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import platform
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from agent.probes.base import Emit, Probe, ProbeConfig, ProbeContext
from canhgac.config import Duration, field_meta
from canhgac.schema import HOST_INVENTORY, new_event
from canhgac.timeutil import from_epoch


@dataclass
class HostInventoryConfig(ProbeConfig):
    # Full inventory re-sent this often even when nothing changed.
    interval: Duration = field(default=Duration(6 * 3600), metadata=field_meta(min=60))
    # How often addresses are checked for changes (cheap: one netlink dump).
    check_interval: Duration = field(default=Duration(300), metadata=field_meta(min=10))


def read_os_release(path: str = "/etc/os-release") -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key and not key.startswith("#"):
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def _read_first_line(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def ecs_mac(mac: str) -> str:
    """ECS wants MACs upper-case, dash-separated: 00-00-5E-00-53-23."""
    return mac.replace(":", "-").upper()


def addresses() -> tuple[list[str], list[str]]:
    """Sorted (ips, macs) of every interface except loopback and all-zero MACs."""
    ips: set[str] = set()
    macs: set[str] = set()
    link = getattr(psutil, "AF_LINK", -1)
    for _ifname, addrs in psutil.net_if_addrs().items():
        for addr in addrs:
            if addr.family in (socket.AF_INET, socket.AF_INET6):
                ip = addr.address.split("%", 1)[0]
                try:
                    if ipaddress.ip_address(ip).is_loopback:
                        continue
                except ValueError:
                    continue
                ips.add(ip)
            elif addr.family == link and addr.address and addr.address != "00:00:00:00:00:00":
                macs.add(ecs_mac(addr.address))
    return sorted(ips), sorted(macs)


def os_fields() -> dict[str, Any]:
    rel = read_os_release()
    system = platform.system()
    fields: dict[str, Any] = {
        "type": system.lower(),
        "kernel": platform.release(),
        "full": rel.get("PRETTY_NAME") or f"{system} {platform.release()}",
    }
    if rel:
        fields["name"] = rel.get("NAME", "")
        fields["version"] = rel.get("VERSION") or rel.get("VERSION_ID", "")
        fields["platform"] = rel.get("ID", "")
        fields["family"] = (rel.get("ID_LIKE") or rel.get("ID", "")).split()[0] if (
            rel.get("ID_LIKE") or rel.get("ID")) else ""
        if rel.get("VERSION_CODENAME"):
            fields["codename"] = rel["VERSION_CODENAME"]
    return {k: v for k, v in fields.items() if v}


class HostInventoryProbe(Probe[HostInventoryConfig]):
    name = "host_inventory"
    datasets = (HOST_INVENTORY,)

    def __init__(self, config: HostInventoryConfig, context: ProbeContext) -> None:
        super().__init__(config, context)
        self.sent = 0
        self._last_addresses: tuple[list[str], list[str]] | None = None

    def collect(self) -> dict[str, Any]:
        ips, macs = addresses()
        self._last_addresses = (ips, macs)
        boot = psutil.boot_time()
        host: dict[str, Any] = {
            "hostname": self.context.hostname or socket.gethostname(),
            "name": self.context.hostname or socket.gethostname(),
            "architecture": platform.machine(),
            "os": os_fields(),
            "ip": ips,
            "mac": macs,
            "uptime": int(time.time() - boot),
        }
        machine_id = _read_first_line("/etc/machine-id")
        if machine_id:
            host["id"] = machine_id
        boot_id = _read_first_line("/proc/sys/kernel/random/boot_id")
        if boot_id:
            host["boot"] = {"id": boot_id}
        return new_event(
            HOST_INVENTORY, kind="state", category=["host"], type=["info"],
            host=host,
            message=f"host inventory: {host['os'].get('full', '')}, booted {from_epoch(boot)}",
        )

    async def run(self, emit: Emit) -> None:
        await emit([self.collect()])
        self.sent += 1
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(self.config.check_interval)
            changed = addresses() != self._last_addresses
            if changed or time.monotonic() - last_full >= self.config.interval:
                await emit([self.collect()])
                self.sent += 1
                last_full = time.monotonic()

    def status(self) -> dict[str, Any]:
        return {"sent": self.sent}
