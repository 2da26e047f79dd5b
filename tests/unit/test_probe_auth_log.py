"""Auth log follower: positions, restarts, rotation by rename and by copytruncate.

Every test runs twice: woken by inotify (with the safety-net re-check pushed out
to an hour, so a change inotify failed to report would time the test out), and
polling, as on a host without inotify.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from agent.probes import filewatch
from agent.probes.auth_log import AuthLogConfig, AuthLogProbe
from agent.probes.base import ProbeContext


@pytest.fixture(autouse=True, params=["inotify", "poll"])
def wake_mode(request, monkeypatch) -> str:
    if request.param == "poll":
        def unavailable() -> None:
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(filewatch.ino, "Inotify", unavailable)
    return request.param


class Collector:
    def __init__(self) -> None:
        self.events: list[dict] = []

    async def __call__(self, events: list[dict]) -> None:
        self.events.extend(events)

    @property
    def lines(self) -> list[str]:
        return [e["event"]["original"] for e in self.events]


def make_probe(state: Path, paths: list[str], **kw) -> AuthLogProbe:
    kw.setdefault("recheck_interval", 3600)
    cfg = AuthLogConfig(paths=paths, poll_interval=0.02, rotate_grace=0.2, journald="never", **kw)
    return AuthLogProbe(cfg, ProbeContext("a1", "h1", state))


async def run_until(probe, emit, cond, timeout=10.0):
    task = asyncio.create_task(probe.run(emit))
    try:
        for _ in range(int(timeout / 0.02)):
            if cond():
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


async def wait_for(cond, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def line(i: int) -> str:
    return f"Nov 23 15:38:06 web1 sshd[{1000 + i}]: Failed password for root from 10.0.0.1 port {i} ssh2"


def write(path: Path, lo: int, hi: int) -> None:
    with open(path, "a") as f:
        for i in range(lo, hi):
            f.write(line(i) + "\n")


async def test_start_at_end_then_follow_and_restart(tmp_path):
    log = tmp_path / "auth.log"
    write(log, 0, 5)
    state = tmp_path / "state"
    state.mkdir()
    c = Collector()
    p = make_probe(state, [str(log)], start_at="end")
    task = asyncio.create_task(p.run(c))
    await asyncio.sleep(0.1)
    write(log, 5, 10)
    await wait_for(lambda: not (len(c.lines) < 5))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert c.lines == [line(i) for i in range(5, 10)]
    # Lines written while stopped, including a half line finished after restart.
    write(log, 10, 13)
    append(log, line(13)[:20])
    p2 = make_probe(state, [str(log)], start_at="end")
    task = asyncio.create_task(p2.run(c))
    await asyncio.sleep(0.2)
    assert c.lines[-1] == line(12)  # the half line is not emitted
    append(log, line(13)[20:] + "\n")
    await wait_for(lambda: not (len(c.lines) < 9))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert c.lines == [line(i) for i in range(5, 14)]
    assert p2.status()["lines_read"] == 4


async def test_missing_file_appears_later_read_from_start(tmp_path):
    log = tmp_path / "secure"
    c = Collector()
    p = make_probe(tmp_path, [str(log)], start_at="end")
    task = asyncio.create_task(p.run(c))
    await asyncio.sleep(0.1)
    write(log, 0, 3)
    await wait_for(lambda: not (len(c.lines) < 3))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert c.lines == [line(i) for i in range(3)]


async def test_rename_rotation_while_running_with_late_writes(tmp_path):
    log = tmp_path / "auth.log"
    write(log, 0, 3)
    c = Collector()
    p = make_probe(tmp_path, [str(log)], start_at="beginning")
    task = asyncio.create_task(p.run(c))
    await asyncio.sleep(0.1)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    os.rename(log, str(log) + ".1")
    await asyncio.sleep(0.05)
    os.write(fd, (line(3) + "\n").encode())  # the writer has not reopened yet
    write(log, 4, 6)
    await asyncio.sleep(0.05)
    os.write(fd, (line(99) + "\n").encode())  # still within the grace period
    os.close(fd)
    await wait_for(lambda: not (len(c.lines) < 7))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(c.lines) == sorted([line(i) for i in (0, 1, 2, 3, 99, 4, 5)])
    assert len(c.lines) == 7
    assert p.status()["rotations"] == 1


async def test_rotation_while_stopped_resumes_in_old_file(tmp_path):
    log = tmp_path / "auth.log"
    write(log, 0, 3)
    c = Collector()
    await run_until(make_probe(tmp_path, [str(log)], start_at="beginning"), c,
                    lambda: len(c.lines) == 3)
    write(log, 3, 5)  # written before rotation, not yet read
    os.rename(log, str(log) + ".1")
    write(log, 5, 7)
    await run_until(make_probe(tmp_path, [str(log)]), c, lambda: len(c.lines) >= 7)
    assert c.lines == [line(i) for i in range(7)]


async def test_copytruncate_while_running_and_stopped(tmp_path):
    log = tmp_path / "auth.log"
    write(log, 0, 3)
    c = Collector()
    p = make_probe(tmp_path, [str(log)], start_at="beginning")
    task = asyncio.create_task(p.run(c))
    await wait_for(lambda: not (len(c.lines) < 3))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # While stopped: more lines, then copytruncate, then the file regrows past our offset.
    write(log, 3, 5)
    shutil.copyfile(log, str(log) + ".1")
    os.truncate(log, 0)
    write(log, 5, 12)
    await run_until(make_probe(tmp_path, [str(log)]), c, lambda: len(c.lines) >= 12)
    assert c.lines == [line(i) for i in range(12)]
    # While running: copytruncate again.
    p = make_probe(tmp_path, [str(log)])
    task = asyncio.create_task(p.run(c))
    await asyncio.sleep(0.1)
    write(log, 12, 14)
    os.rename(str(log) + ".1", str(log) + ".2")
    shutil.copyfile(log, str(log) + ".1")
    os.truncate(log, 0)
    write(log, 14, 30)  # regrows beyond the old offset before we look
    await wait_for(lambda: not (len(c.lines) < 30))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert c.lines == [line(i) for i in range(30)]
    assert p.status()["truncations"] >= 1


async def test_unparsed_lines_are_raw_and_log_path_set(tmp_path):
    log = tmp_path / "auth.log"
    log.write_bytes(b"Nov 23 15:38:06 web1 kernel: something \xff odd\nno header here\n")
    c = Collector()
    await run_until(make_probe(tmp_path, [str(log)], start_at="beginning"), c,
                    lambda: len(c.events) == 2)
    assert [e["event"]["dataset"] for e in c.events] == ["raw", "raw"]
    assert c.events[0]["log"]["file"]["path"] == str(log)
    assert "\ufffd" in c.events[0]["event"]["original"]


async def test_two_paths_in_one_directory_and_the_watch_mode(tmp_path, wake_mode):
    a, b = tmp_path / "auth.log", tmp_path / "secure"
    c = Collector()
    p = make_probe(tmp_path, [str(a), str(b)], start_at="beginning")
    task = asyncio.create_task(p.run(c))
    try:
        await wait_for(lambda: p.status().get("checks", 0) >= 1)
        assert p.status()["inotify"] is (wake_mode == "inotify")
        write(b, 0, 2)  # created after the start: the directory watch sees it
        await wait_for(lambda: len(c.lines) == 2)
        write(a, 2, 4)
        await wait_for(lambda: len(c.lines) == 4)
        write(b, 4, 5)
        await wait_for(lambda: len(c.lines) == 5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sorted(c.lines) == [line(i) for i in range(5)]


async def test_watch_wakes_for_our_names_and_files_only(tmp_path, wake_mode):
    if wake_mode == "poll":
        assert filewatch.LogWatch().start(asyncio.get_running_loop()) is False
        return
    loop = asyncio.get_running_loop()
    ours, other = tmp_path / "auth.log", tmp_path / "syslog"
    other.write_text("x\n")
    watch = filewatch.LogWatch()
    assert watch.covered(str(ours)) is False  # not started: the caller polls
    assert watch.start(loop) is True
    try:
        watch.sync(str(ours), {})
        assert watch.covered(str(ours))

        def woken() -> bool:
            watch._on_readable()  # what the loop would call: the kernel queued the events
            was = watch._wake.is_set()
            watch.clear()
            return was

        append(other, "busy neighbour\n")
        os.rename(other, str(other) + ".1")
        assert not woken()  # another log in /var/log does not wake us
        write(ours, 0, 1)  # created
        assert woken()
        fd = os.open(ours, os.O_RDONLY)
        st = os.fstat(fd)
        watch.sync(str(ours), {(st.st_dev, st.st_ino): fd})
        assert not woken()
        append(ours, "more\n")  # appended
        assert woken()
        os.rename(ours, str(ours) + ".1")  # rotated away: its name moves
        assert woken()
        append(Path(str(ours) + ".1"), "late writer\n")  # the open file, under its new name
        assert woken()
        os.truncate(str(ours) + ".1", 0)
        assert woken()
        watch.sync(str(ours), {})  # let go: no longer watched
        os.close(fd)
        woken()
        append(Path(str(ours) + ".1"), "not ours any more\n")
        assert not woken()
    finally:
        watch.close(loop)
