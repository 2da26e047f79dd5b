"""Host metrics: cpu, memory, swap, load, disk and network io, per-mount usage.

Field names: ECS ``host.*`` where ECS has the metric (``host.cpu.usage``,
``host.disk.read.bytes``, ``host.network.ingress.bytes`` ... which ECS defines
as the amount *since the last collection*, so those are deltas), otherwise
Metricbeat's ``system.*`` names (``system.memory.*``, ``system.load.*``,
``system.filesystem.*``) so existing dashboards and habits carry over.
Monotonic totals are kept as well (``system.diskio.*``, ``system.network.*``)
so a lost event never loses a count.

One ``host.metrics`` event per interval plus one per mounted filesystem
(Metricbeat's shape). Every psutil call here reads a handful of /proc files:
at the default 10 s interval the probe costs well under 0.1% of a core.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from agent.probes.base import Emit, Probe, ProbeConfig, ProbeContext
from canhgac.config import Duration, field_meta
from canhgac.schema import HOST_METRICS, new_event

DEFAULT_IGNORE_FSTYPES = [
    "squashfs", "overlay", "tmpfs", "devtmpfs", "ramfs", "nsfs", "proc", "sysfs",
    "cgroup", "cgroup2", "fuse.lxcfs", "autofs", "iso9660",
]


@dataclass
class HostMetricsConfig(ProbeConfig):
    interval: Duration = field(default=Duration(10), metadata=field_meta(min=1))
    # Filesystem types not reported in system.filesystem.* (pseudo and image mounts).
    ignore_fstypes: list[str] = field(default_factory=lambda: list(DEFAULT_IGNORE_FSTYPES))
    # Mount points not reported (exact paths).
    ignore_mounts: list[str] = field(default_factory=list)
    filesystems: bool = True


def _pct(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


class HostMetricsProbe(Probe[HostMetricsConfig]):
    name = "host_metrics"
    datasets = (HOST_METRICS,)

    def __init__(self, config: HostMetricsConfig, context: ProbeContext) -> None:
        super().__init__(config, context)
        self._prev_disk: Any = None
        self._prev_net: Any = None
        self._prev_time = 0.0
        self._cores = psutil.cpu_count() or 1
        self.samples = 0

    async def run(self, emit: Emit) -> None:
        psutil.cpu_percent(None)  # prime: the first call has no reference point
        self._prev_disk = psutil.disk_io_counters()
        self._prev_net = psutil.net_io_counters()
        self._prev_time = time.monotonic()
        while True:
            await asyncio.sleep(self.config.interval)
            await emit(self.collect())
            self.samples += 1

    def collect(self) -> list[dict[str, Any]]:
        """One sample: the host event plus one event per filesystem."""
        now = time.monotonic()
        period = max(now - self._prev_time, 1e-6)
        self._prev_time = now
        period_ms = int(period * 1000)

        cpu_pct = psutil.cpu_percent(None) / 100.0  # all cores, 0..1
        vm = psutil.virtual_memory()
        sw = psutil.swap_memory()
        load1, load5, load15 = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)

        host: dict[str, Any] = {"cpu": {"usage": round(cpu_pct, 4)}}
        system: dict[str, Any] = {
            "cpu": {"cores": self._cores, "total": {"norm": {"pct": round(cpu_pct, 4)}}},
            "memory": {
                "total": vm.total,
                "free": vm.free,
                "used": {"bytes": vm.total - vm.free, "pct": _pct(vm.total - vm.free, vm.total)},
                "actual": {
                    "free": vm.available,
                    "used": {
                        "bytes": vm.total - vm.available,
                        "pct": _pct(vm.total - vm.available, vm.total),
                    },
                },
                "swap": {
                    "total": sw.total,
                    "free": sw.free,
                    "used": {"bytes": sw.used, "pct": _pct(sw.used, sw.total)},
                },
            },
            "load": {
                "1": round(load1, 2), "5": round(load5, 2), "15": round(load15, 2),
                "norm": {
                    "1": round(load1 / self._cores, 4),
                    "5": round(load5 / self._cores, 4),
                    "15": round(load15 / self._cores, 4),
                },
                "cores": self._cores,
            },
        }

        disk = psutil.disk_io_counters()
        if disk is not None:
            prev = self._prev_disk or disk
            rd = max(disk.read_bytes - prev.read_bytes, 0)
            wr = max(disk.write_bytes - prev.write_bytes, 0)
            host["disk"] = {"read": {"bytes": rd}, "write": {"bytes": wr}}
            system["diskio"] = {
                "read": {"bytes": disk.read_bytes, "count": disk.read_count,
                         "bytes_per_sec": round(rd / period, 1)},
                "write": {"bytes": disk.write_bytes, "count": disk.write_count,
                          "bytes_per_sec": round(wr / period, 1)},
            }
            self._prev_disk = disk
        net = psutil.net_io_counters()
        if net is not None:
            prev = self._prev_net or net
            rx = max(net.bytes_recv - prev.bytes_recv, 0)
            tx = max(net.bytes_sent - prev.bytes_sent, 0)
            host["network"] = {
                "ingress": {"bytes": rx, "packets": max(net.packets_recv - prev.packets_recv, 0)},
                "egress": {"bytes": tx, "packets": max(net.packets_sent - prev.packets_sent, 0)},
            }
            system["network"] = {
                "in": {"bytes": net.bytes_recv, "packets": net.packets_recv,
                       "errors": net.errin, "dropped": net.dropin,
                       "bytes_per_sec": round(rx / period, 1)},
                "out": {"bytes": net.bytes_sent, "packets": net.packets_sent,
                        "errors": net.errout, "dropped": net.dropout,
                        "bytes_per_sec": round(tx / period, 1)},
            }
            self._prev_net = net

        metricset = {"name": "host", "period": period_ms}
        events = [new_event(HOST_METRICS, kind="metric", category=["host"], type=["info"],
                            host=host, system=system, metricset=metricset)]
        if self.config.filesystems:
            events.extend(self._filesystems(period_ms))
        return events

    def _filesystems(self, period_ms: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        ignore_types = set(self.config.ignore_fstypes)
        ignore_mounts = set(self.config.ignore_mounts)
        for part in psutil.disk_partitions(all=False):
            if part.fstype in ignore_types or part.mountpoint in ignore_mounts:
                continue
            if part.device in seen:  # bind mounts of the same device count once
                continue
            seen.add(part.device)
            try:
                usage = psutil.disk_usage(part.mountpoint)
                st = os.statvfs(part.mountpoint)
            except OSError:
                continue
            fs = {
                "device_name": part.device,
                "mount_point": part.mountpoint,
                "type": part.fstype,
                "total": usage.total,
                "free": usage.free + (st.f_bfree - st.f_bavail) * st.f_frsize,
                "available": usage.free,
                "used": {"bytes": usage.used, "pct": round(usage.percent / 100.0, 4)},
                "files": st.f_files,
                "free_files": st.f_ffree,
            }
            out.append(new_event(HOST_METRICS, kind="metric", category=["host"], type=["info"],
                                 system={"filesystem": fs},
                                 metricset={"name": "filesystem", "period": period_ms}))
        return out

    def status(self) -> dict[str, Any]:
        return {"samples": self.samples, "interval": float(self.config.interval)}
