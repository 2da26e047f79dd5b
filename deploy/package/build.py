"""`make package`: the two Debian packages and the offline bundle, from this repository.

    python deploy/package/build.py [--version V] [--out dist] [--no-bundle]

--version overrides the package version (the project's by default), which is how the
package test makes a "previous version" of the same tree. Work files go to build/package
(wheels and Debian packages downloaded once are reused from ~/.cache/canhgac).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import bundle
import deb
import environment
from roles import ROLES

REPO = Path(__file__).resolve().parents[2]
CACHE = Path.home() / ".cache" / "canhgac"


def project_version() -> str:
    text = (REPO / "canhgac" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if match is None:
        raise SystemExit("package: canhgac/__init__.py: no __version__")
    return match.group(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", default=None, help="package version (default: the project's)")
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "package")
    parser.add_argument("--no-bundle", action="store_true", help="only the .deb files")
    args = parser.parse_args(argv)
    version = args.version or project_version()
    if not re.fullmatch(r"[0-9][A-Za-z0-9.+~]*", version):
        parser.error(f"--version: {version!r} is not a Debian version (digits first, then [A-Za-z0-9.+~])")
    lock = REPO / "requirements.lock"
    work: Path = args.work
    if work.exists():
        shutil.rmtree(work)
    project_wheel = environment.build_project_wheel(REPO, work / "project-wheel")
    debs: list[Path] = []
    all_wheels: list[Path] = [project_wheel]
    for role in ROLES:
        wheels = environment.download_wheels(role, lock, work / "wheels" / role.name)
        all_wheels += wheels
        root = work / "stage" / role.package
        environment.make_venv(role, root, [*wheels, project_wheel])
        deb.stage(role, root, REPO, version)
        deb.control_files(role, root, version)
        debs.append(deb.build(root, args.out / f"{role.package}_{version}_amd64.deb"))
        print(f"built {debs[-1].relative_to(REPO) if debs[-1].is_relative_to(REPO) else debs[-1]}")
    if not args.no_bundle:
        tarball = bundle.build(version, debs, all_wheels, CACHE / "debs", work / "bundle", args.out)
        print(f"built {tarball}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
