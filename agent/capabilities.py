"""Which Linux capabilities each probe needs, and the systemd drop-in for an agent.yaml.

The agent runs as an unprivileged user; systemd hands it capabilities as ambient ones
(deploy/systemd/canhgac-agent.service). Granting a capability no enabled probe uses only
widens what a compromised agent could do, so the set follows the enabled probes:
``canhgac agent capabilities --config agent.yaml`` prints the drop-in that narrows (or
widens) the unit to exactly what that configuration needs. A probe missing its
capability degrades and says so in the heartbeat; it never crash-loops.
"""

from __future__ import annotations

from collections.abc import Iterable

# probe -> ((capability, what it is used for), ...). Probes not listed need none.
NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "process": (("CAP_NET_ADMIN",
                 "exec capture: the kernel's process events connector (older kernels); "
                 "without it the probe polls /proc and misses short-lived processes"),
                ("CAP_SYS_PTRACE",
                 "/proc/<pid>/exe and /proc/<pid>/cwd of other users' processes "
                 "(process.executable, process.working_directory)")),
    "socket": (("CAP_SYS_PTRACE",
                "/proc/<pid>/fd of other users' processes: which process owns a socket"),),
    "auth_log": (("CAP_DAC_READ_SEARCH",
                  "reading /var/log/auth.log (root:adm 0640); group adm is an alternative"),),
    "file_integrity": (("CAP_DAC_READ_SEARCH",
                        "hashing root-only files such as /etc/shadow and /etc/sudoers"),),
    "network_sensor": (("CAP_NET_RAW", "the AF_PACKET capture socket"),),
}

# A stable order (the unit's), so the drop-in does not change with probe order.
ORDER = ("CAP_NET_RAW", "CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN", "CAP_SYS_PTRACE")


def needed(enabled: Iterable[str]) -> list[str]:
    """The capabilities the given probes need, in ``ORDER``."""
    wanted = {cap for name in enabled for cap, _ in NEEDS.get(name, ())}
    return sorted(wanted, key=lambda c: ORDER.index(c) if c in ORDER else len(ORDER))


def dropin(caps: list[str]) -> str:
    """A systemd drop-in replacing the unit's capability sets with ``caps``.

    An empty assignment first resets what the unit set; ``CapabilityBoundingSet=`` with
    nothing after it would mean "no capabilities", which is what an empty ``caps`` wants.
    """
    value = " ".join(caps)
    return ("# /etc/systemd/system/canhgac-agent.service.d/capabilities.conf\n"
            "# made by `canhgac agent capabilities`; then: systemctl daemon-reload && "
            "systemctl restart canhgac-agent\n"
            "[Service]\n"
            "AmbientCapabilities=\n"
            f"AmbientCapabilities={value}\n"
            "CapabilityBoundingSet=\n"
            f"CapabilityBoundingSet={value}\n")


def explain(enabled: Iterable[str]) -> list[tuple[str, str, str]]:
    """(probe, capability, why) rows for the enabled probes that need any."""
    return [(name, cap, why) for name in enabled for cap, why in NEEDS.get(name, ())]
