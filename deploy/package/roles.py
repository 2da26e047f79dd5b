"""What goes in each Debian package: one place, so the builder, the bundle and the docs agree.

The agent runs on every server, so it carries only what ``canhgac agent`` imports at run time
(no cryptography, Elasticsearch client, Sigma or spreadsheet libraries); the collector carries
every runtime dependency of the project. Test-only extras are in neither.
"""

from __future__ import annotations

from dataclasses import dataclass

PYTHON = "python3.11"  # Debian 12's interpreter; the venvs are bound to its ABI (cp311)


@dataclass(frozen=True)
class Role:
    name: str  # agent | collector
    requirements: tuple[str, ...]  # top-level PyPI names; versions come from requirements.lock
    description: str
    command: str  # the command in /usr/bin

    @property
    def package(self) -> str:
        return f"canhgac-{self.name}"

    @property
    def user(self) -> str:
        return f"canhgac-{self.name}"

    @property
    def prefix(self) -> str:
        return f"/opt/canhgac/{self.name}"

    @property
    def state_dir(self) -> str:
        return f"/var/lib/canhgac/{self.name}"

    @property
    def conffile(self) -> str:
        return f"/etc/canhgac/{self.name}.yaml"

    @property
    def unit(self) -> str:
        return f"{self.package}.service"


# python3.11: the interpreter the environments are bound to; libc6 (>= 2.28): the oldest glibc
# the manylinux wheels inside accept; passwd: useradd/groupadd in postinst. util-linux (runuser)
# and init-system-helpers (deb-systemd-helper) are Essential in Debian 12, so not named.
DEBIAN_DEPENDS = (PYTHON, "libc6 (>= 2.28)", "passwd")

AGENT = Role(
    name="agent",
    requirements=("aiohttp", "orjson", "psutil", "pyyaml"),
    description="canhgac security monitoring agent\n"
    " Collects host metrics, inventory, processes, sockets, sessions and, when\n"
    " enabled, authentication logs, file integrity and network sensor events,\n"
    " and ships them to a canhgac collector over TLS. Self-contained Python\n"
    " environment under /opt/canhgac/agent.",
    command="canhgac-agent",
)

COLLECTOR = Role(
    name="collector",
    # psutil: `canhgac up` and `agent status` on the collector host; scapy is left out (tests only).
    requirements=("aiohttp", "orjson", "pyyaml", "psutil", "cryptography", "prometheus-client",
                  "elasticsearch[async]", "pysigma", "openpyxl"),
    description="canhgac security event collector and command line\n"
    " Receives agent events over TLS, validates, enriches and stores them, runs\n"
    " detection rules, coverage and reporting to the national center.\n"
    " Self-contained Python environment under /opt/canhgac/collector; the\n"
    " canhgac command.",
    command="canhgac",
)

ROLES = (AGENT, COLLECTOR)
