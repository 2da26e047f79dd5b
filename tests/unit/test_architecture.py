"""Dependencies point inward: each package may import only the packages listed for it.

The kernel (canhgac) knows none of the packages built on it; the shipper knows only
the kernel; the agent, the collector and the mock national center never import each
other; only the local stack (`canhgac up`) and tests see everything. Checked on the
source (every import statement, lazy ones inside functions included), so a wrong
import fails here before it ships.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("canhgac", "shipper", "agent", "collector", "national_center", "stack")
ALLOWED: dict[str, set[str]] = {
    "canhgac": set(),
    "shipper": {"canhgac"},
    "agent": {"canhgac", "shipper"},
    "collector": {"canhgac", "shipper"},
    "national_center": {"canhgac"},
    "stack": {"canhgac", "shipper", "agent", "collector", "national_center"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_every_package_imports_only_inward() -> None:
    wrong: list[str] = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for line, module in _imports(path):
                top = module.split(".")[0]
                if top in PACKAGES and top != pkg and top not in ALLOWED[pkg]:
                    wrong.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    assert not wrong, "imports against the dependency direction:\n" + "\n".join(wrong)


def _modules_loaded_by(argv: list[str]) -> set[str]:
    code = (
        "import sys\n"
        "from canhgac.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    return set(res.stderr.split())


def test_cli_imports_only_the_subcommand_it_runs() -> None:
    agent = _modules_loaded_by(["agent", "--help"])
    assert "agent.cli" in agent
    assert not {m for m in agent if m.split(".")[0] in ("collector", "national_center", "stack")}
    version = _modules_loaded_by(["version"])
    assert not {m for m in version if m.split(".")[0] in ("agent", "collector", "stack")}


def test_help_lists_every_declared_subcommand() -> None:
    from canhgac.cli import HELP_ORDER, discover

    names = list(discover())
    assert set(HELP_ORDER) <= set(names), "a subcommand lost its entry point (pyproject.toml)"
    assert names[: len(HELP_ORDER)] == list(HELP_ORDER)


def test_probe_names_in_the_kernel_match_the_agent_registry() -> None:
    from agent.probes import PROBES
    from canhgac.probes import PROBE_NAMES

    assert sorted(PROBES) == sorted(PROBE_NAMES)
