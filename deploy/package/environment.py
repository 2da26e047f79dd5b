"""Wheels and the self-contained virtual environment of one package.

The environment is made at build time, not by postinst: what was built (and tested) is
exactly what lands on the server, installing needs no pip, no index and no compiler, and a
failed install cannot leave a half-made environment. It is created with Debian's own
interpreter (``/usr/bin/python3.11``, the package's Depends) in a staging directory and
then made relocatable to ``/opt/canhgac/<role>``: the only absolute paths a venv holds are
the interpreter symlink (already the final /usr/bin path), the script shebangs and
pyvenv.cfg, which are rewritten here. Byte code is not shipped; postinst compiles it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from roles import PYTHON, Role

WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-.*\.whl$")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path) -> dict[str, str]:
    """requirements.lock as name -> version (comments and markers dropped)."""
    pins: dict[str, str] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[normalize(name.split("[", 1)[0])] = version.strip()
    return pins


def download_wheels(role: Role, lock: Path, dest: Path) -> list[Path]:
    """The role's runtime closure as wheels, every version the locked one.

    pip resolves the closure with the lock as constraints, for CPython 3.11 on x86-64
    glibc (Debian 12), binary wheels only (pip's own cache makes a rebuild cheap); a
    wheel whose version is not the locked one (a dependency missing from the lock)
    stops the build.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
          "--disable-pip-version-check", "--python-version", "3.11", "--implementation", "cp",
          "--abi", "cp311", "--platform", "manylinux_2_36_x86_64", "--platform", "manylinux2014_x86_64",
          "--platform", "linux_x86_64", "-c", str(lock), "-d", str(dest), *role.requirements])
    pins = locked(lock)
    wheels = sorted(dest.iterdir())
    for path in wheels:
        match = WHEEL_NAME.match(path.name)
        if match is None:
            raise SystemExit(f"package: {role.package}: pip gave {path.name}, not a wheel")
        name, version = normalize(match["name"]), match["version"]
        if pins.get(name) != version:
            raise SystemExit(f"package: {role.package}: {name} {version} is not pinned in {lock}")
    return wheels


def _clean_env() -> dict[str, str]:
    """The environment without PYTHONPATH and friends: with the source tree on PYTHONPATH
    (as the tests run), pip would find its canhgac.egg-info, take canhgac for installed
    and leave it out of the environment."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PIP_TARGET", "PIP_PREFIX")}


def _run(cmd: list[str]) -> None:
    """A build step, quiet unless it fails (then its output explains why)."""
    done = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env())
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"package: failed ({done.returncode}): {' '.join(cmd[:6])} ...")


def build_project_wheel(source: Path, dest: Path) -> Path:
    """The canhgac wheel itself, from the working tree (pip fetches the build backend
    pyproject.toml names, in an isolated build environment)."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("canhgac-*.whl"):
        old.unlink()
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--disable-pip-version-check",
          "-w", str(dest), str(source)])
    (wheel,) = dest.glob("canhgac-*.whl")
    return wheel


def make_venv(role: Role, stage_root: Path, wheels: list[Path]) -> Path:
    """The role's environment at <stage_root>/<prefix>, relocated to <prefix>."""
    interpreter = shutil.which(PYTHON, path="/usr/bin")
    if interpreter is None:
        raise SystemExit(f"package: /usr/bin/{PYTHON} is missing: build on Debian 12 "
                         f"(apt-get install {PYTHON} {PYTHON}-venv)")
    venv = stage_root / role.prefix.lstrip("/")
    if venv.exists():
        shutil.rmtree(venv)
    _run([interpreter, "-m", "venv", "--without-pip", str(venv)])
    _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
          "install", "--quiet", "--no-index", "--no-deps", "--no-compile", "--ignore-installed",
          "--disable-pip-version-check", *map(str, wheels)])
    if not (venv / "bin" / "canhgac").is_file():
        raise SystemExit(f"package: {role.package}: pip did not install the canhgac command")
    _relocate(venv, role.prefix)
    _trim(venv)
    return venv


def _trim(venv: Path) -> None:
    """Only the canhgac command in bin/, and extension modules stripped of debug symbols
    (what dh_strip does for Debian's own Python packages: a third of their size)."""
    keep = {"canhgac", "python", "python3", PYTHON}
    for script in (venv / "bin").iterdir():
        if script.name not in keep:
            script.unlink()
    include = venv / "include"
    if include.is_dir() and not any(p.is_file() for p in include.rglob("*")):
        shutil.rmtree(include)  # venv's empty include/python3.11: no C extension is built here
    strip = shutil.which("strip")
    if strip is None:
        raise SystemExit("package: strip is missing (apt-get install binutils)")
    objects = [str(p) for p in venv.rglob("*.so*") if p.is_file() and not p.is_symlink()]
    if objects:
        _run([strip, "--strip-unneeded", "--remove-section=.comment", "--remove-section=.note", *objects])


def _relocate(venv: Path, prefix: str) -> None:
    staged = str(venv)
    for activate in venv.glob("bin/[Aa]ctivate*"):
        activate.unlink()  # interactive helpers; nobody activates a service's environment
    for script in (venv / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if data.startswith(b"#!") and staged.encode() in data.split(b"\n", 1)[0]:
            script.write_bytes(data.replace(staged.encode(), prefix.encode(), 1))
    cfg = venv / "pyvenv.cfg"
    lines = [ln for ln in cfg.read_text(encoding="utf-8").splitlines() if not ln.startswith("command")]
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for cache in list(venv.rglob("__pycache__")):
        shutil.rmtree(cache)
    for direct in venv.rglob("direct_url.json"):
        direct.unlink()  # names the build machine's path; not needed at run time
    leftovers = [str(p) for p in venv.rglob("*") if p.is_file() and not p.is_symlink()
                 and staged.encode() in p.read_bytes()]
    if leftovers:
        raise SystemExit(f"package: build paths left in {', '.join(leftovers[:5])}")
