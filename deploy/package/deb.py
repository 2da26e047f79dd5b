"""One Debian binary package, laid out the way dh would and built with dpkg-deb.

The staging tree is <stage>/DEBIAN (control, conffiles, md5sums, maintainer scripts) plus
the files at their installed paths. Everything is owned by root (``--root-owner-group``);
modes are normalized so the result does not depend on the builder's umask.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
from email.utils import formatdate
from pathlib import Path

from roles import DEBIAN_DEPENDS, Role

HERE = Path(__file__).resolve().parent
# Debian's convention: DEBFULLNAME and DEBEMAIL name whoever builds the package.
MAINTAINER = (f"{os.environ.get('DEBFULLNAME', 'canhgac maintainers')} "
              f"<{os.environ.get('DEBEMAIL', 'canhgac@example.org')}>")


def stage(role: Role, root: Path, repo: Path, version: str) -> None:
    """Everything but the venv (already in ``root``) and DEBIAN/."""
    etc = root / "etc" / "canhgac"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / f"{role.name}.yaml").write_text(packaged_config(role, repo), encoding="utf-8")
    units = root / "lib" / "systemd" / "system"
    units.mkdir(parents=True, exist_ok=True)
    shutil.copy(repo / "deploy" / "systemd" / role.unit, units / role.unit)
    command = root / "usr" / "bin" / role.command
    command.parent.mkdir(parents=True, exist_ok=True)
    command.write_text(substitute((HERE / "debian" / "command.in").read_text(encoding="utf-8"), role),
                       encoding="utf-8")
    command.chmod(0o755)
    doc = root / "usr" / "share" / "doc" / role.package
    doc.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "debian" / "copyright", doc / "copyright")
    (doc / "README").write_text(substitute((HERE / "debian" / f"README.{role.name}").read_text(
        encoding="utf-8"), role), encoding="utf-8")
    man = root / "usr" / "share" / "man" / "man1"
    man.mkdir(parents=True, exist_ok=True)
    _gzip(substitute((HERE / "debian" / f"{role.command}.1").read_text(encoding="utf-8"), role).encode(),
          man / f"{role.command}.1.gz")
    _gzip(changelog(role, version).encode(), doc / "changelog.gz")
    overrides = HERE / "debian" / f"{role.package}.lintian-overrides"
    if overrides.exists():
        dest = root / "usr" / "share" / "lintian" / "overrides" / role.package
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(overrides, dest)
    if role.name == "collector":
        rules = root / role.prefix.lstrip("/") / "share" / "canhgac" / "rules"
        shutil.copytree(repo / "configs" / "rules", rules, dirs_exist_ok=True)


def packaged_config(role: Role, repo: Path) -> str:
    """The example config of the repository with the package's state directory."""
    text = (repo / "configs" / f"{role.name}.yaml").read_text(encoding="utf-8")
    new, n = re.subn(r"(?m)^state_dir: .*$", f"state_dir: {role.state_dir}", text)
    if n != 1:
        raise SystemExit(f"package: configs/{role.name}.yaml: expected one top-level state_dir line")
    return new


def substitute(text: str, role: Role) -> str:
    for key, value in {"PKG": role.package, "USER": role.user, "ROLE": role.name,
                       "PREFIX": role.prefix, "STATE": role.state_dir, "CONF": role.conffile,
                       "UNIT": role.unit, "COMMAND": role.command}.items():
        text = text.replace(f"@{key}@", value)
    if re.search(r"@[A-Z]+@", text):
        raise SystemExit(f"package: unreplaced placeholder in a template for {role.package}")
    return text


def changelog(role: Role, version: str) -> str:
    date = formatdate(float(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None, localtime=False)
    return (f"{role.package} ({version}) unstable; urgency=medium\n\n"
            f"  * Package built from the canhgac repository (make package).\n\n"
            f" -- {MAINTAINER}  {date}\n")


def _gzip(data: bytes, dest: Path) -> None:
    with dest.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0,
                                               filename="") as gz:
        gz.write(data)


def control_files(role: Role, root: Path, version: str) -> None:
    debian = root / "DEBIAN"
    debian.mkdir(exist_ok=True)
    for script in ("postinst", "prerm", "postrm"):
        text = substitute((HERE / "debian" / f"{script}.in").read_text(encoding="utf-8"), role)
        (debian / script).write_text(text, encoding="utf-8")
        (debian / script).chmod(0o755)
    conffiles = [role.conffile]
    (debian / "conffiles").write_text("".join(f"{c}\n" for c in conffiles), encoding="utf-8")
    _normalize_modes(root)
    sums = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("DEBIAN/") or f"/{rel}" in conffiles:
            continue  # like dh_md5sums: conffiles are tracked by dpkg's own conffile hashes
        digest = hashlib.md5(path.read_bytes()).hexdigest()  # DEBIAN/md5sums is MD5 by format
        sums.append(f"{digest}  {rel}\n")
    (debian / "md5sums").write_text("".join(sums), encoding="utf-8")
    (debian / "md5sums").chmod(0o644)
    (debian / "conffiles").chmod(0o644)
    size_kib = sum(p.lstat().st_size for p in root.rglob("*") if "DEBIAN" not in p.parts) // 1024 + 1
    depends = ", ".join(DEBIAN_DEPENDS)
    (debian / "control").write_text(
        f"Package: {role.package}\n"
        f"Version: {version}\n"
        f"Architecture: amd64\n"
        f"Maintainer: {MAINTAINER}\n"
        f"Installed-Size: {size_kib}\n"
        f"Depends: {depends}\n"
        f"Section: admin\n"
        f"Priority: optional\n"
        f"Description: {role.description}\n", encoding="utf-8")
    (debian / "control").chmod(0o644)


def _normalize_modes(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            # Scripts in bin/ and maintainer scripts run; everything else, extension
            # modules included (Python loads them, nothing executes them), is data.
            executable = path.parent.name in ("bin", "DEBIAN") and path.name not in (
                "control", "conffiles", "md5sums")
            path.chmod(0o755 if executable else 0o644)


def build(root: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(dest)],
                   check=True, stdout=subprocess.DEVNULL)
    return dest
