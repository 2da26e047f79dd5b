"""The offline bundle: everything an air-gapped Debian 12 server needs, in one tarball.

    canhgac-offline-<version>/
      debs/       canhgac-agent, canhgac-collector and the Debian packages they depend on
                  (their whole dependency closure, resolved as if nothing were installed),
                  with an apt index (Packages, Release) so apt can install from it
      wheels/     the locked wheels the environments were made from (for audit or reuse)
      install.sh  installs with apt from debs/ only, no network
      SHA256SUMS

Installing through apt (not ``dpkg -i *.deb``) matters: apt takes from the bundle only what
the server lacks or has older, and never downgrades a library the server already has newer.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*\[([\w-]+)\]\)")


def depends_of(debs: list[Path]) -> list[str]:
    names: set[str] = set()
    for path in debs:
        field = subprocess.run(["dpkg-deb", "--field", str(path), "Depends"], check=True,
                               capture_output=True, text=True).stdout
        for item in field.split(","):
            names.add(item.split("|", 1)[0].split("(", 1)[0].strip())
    return sorted(n for n in names if n)


def closure(names: list[str]) -> list[tuple[str, str, str]]:
    """(package, version, arch) of every package needed on a system with nothing installed."""
    with tempfile.NamedTemporaryFile() as empty:
        out = subprocess.run(
            ["apt-get", "--simulate", "--no-install-recommends", "--quiet",
             "-o", f"Dir::State::status={empty.name}", "-o", "Debug::NoLocking=1",
             "-o", "APT::Get::Show-Versions=0", "install", *names],
            capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"package: apt-get cannot resolve {' '.join(names)} (run apt-get update?):\n"
                         f"{out.stderr.strip()}")
    found = [m.groups() for line in out.stdout.splitlines() if (m := INST.match(line))]
    if not found:
        raise SystemExit("package: apt-get resolved no packages: are the Debian package lists there?")
    return [(str(a), str(b), str(c)) for a, b, c in found]


def _filename(cache: Path, name: str, version: str, arch: str) -> Path:
    return cache / f"{name}_{version.replace(':', '%3a')}_{arch}.deb"


def download(packages: list[tuple[str, str, str]], cache: Path) -> list[Path] | None:
    """``apt-get download`` of each exact version, once per machine (kept in ``cache``).

    None when apt could not get them (lists older than the mirror: a version replaced by
    a security update is gone from it)."""
    cache.mkdir(parents=True, exist_ok=True)
    wanted = [f"{n}={v}" for n, v, a in packages if not _filename(cache, n, v, a).exists()]
    if wanted:
        done = subprocess.run(["apt-get", "download", "--quiet", "-o", "APT::Sandbox::User=root", *wanted],
                              cwd=cache, capture_output=True, text=True)
        if done.returncode != 0:
            return None
    files = [_filename(cache, *p) for p in packages]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise SystemExit(f"package: apt-get download did not give {', '.join(missing)}")
    return files


def dependency_debs(debs: list[Path], cache: Path) -> list[Path]:
    """The closure of the packages' Depends as .deb files; refreshes stale apt lists once."""
    names = depends_of(debs)
    files = download(closure(names), cache)
    if files is None:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        files = download(closure(names), cache)
    if files is None:
        raise SystemExit(f"package: apt-get download failed for the closure of {' '.join(names)}")
    return files


def build(version: str, debs: list[Path], wheels: list[Path], cache: Path, work: Path, out: Path) -> Path:
    name = f"canhgac-offline-{version}"
    top = work / name
    if top.exists():
        shutil.rmtree(top)
    (top / "debs").mkdir(parents=True)
    (top / "wheels").mkdir()
    for path in [*debs, *dependency_debs(debs, cache)]:
        shutil.copy2(path, top / "debs" / path.name)
    for wheel in wheels:
        shutil.copy2(wheel, top / "wheels" / wheel.name)
    index = subprocess.run(["apt-ftparchive", "packages", "."], cwd=top / "debs", check=True,
                           capture_output=True, text=True).stdout
    (top / "debs" / "Packages").write_text(index, encoding="utf-8")
    release = subprocess.run(["apt-ftparchive", "-o", "APT::FTPArchive::Release::Origin=canhgac",
                              "-o", f"APT::FTPArchive::Release::Label=canhgac-offline-{version}",
                              "release", "."], cwd=top / "debs", check=True,
                             capture_output=True, text=True).stdout
    (top / "debs" / "Release").write_text(release, encoding="utf-8")
    shutil.copy(HERE / "install.sh", top / "install.sh")
    (top / "install.sh").chmod(0o755)
    sums = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(top).as_posix()}\n"
            for p in sorted(top.rglob("*")) if p.is_file()]
    (top / "SHA256SUMS").write_text("".join(sums), encoding="utf-8")
    out.mkdir(parents=True, exist_ok=True)
    tarball = out / f"{name}.tar.gz"
    with tarfile.open(tarball, "w:gz", compresslevel=6) as tar:
        tar.add(top, arcname=name, filter=_owned_by_root)
    return tarball


def _owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info
