"""uid/gid -> account name, cached: a lookup reads /etc/passwd or /etc/group, and a burst
of events (an exec storm, a scan of many files) repeats the same few ids."""

from __future__ import annotations

import grp
import pwd
from collections.abc import Callable

MAX_CACHED = 4096  # ids kept per kind; past it the cache starts over (bounded memory)


class AccountNames:
    def __init__(self) -> None:
        self.users: dict[int, str | None] = {}
        self.groups: dict[int, str | None] = {}

    def user(self, uid: int) -> str | None:
        return _cached(self.users, uid, lambda: pwd.getpwuid(uid).pw_name)

    def group(self, gid: int) -> str | None:
        return _cached(self.groups, gid, lambda: grp.getgrgid(gid).gr_name)

    def forget(self) -> None:
        """Accounts changed: names may have too."""
        self.users.clear()
        self.groups.clear()


def _cached(cache: dict[int, str | None], key: int, look_up: Callable[[], str]) -> str | None:
    if key in cache:
        return cache[key]
    if len(cache) >= MAX_CACHED:
        cache.clear()
    try:
        name: str | None = look_up()
    except KeyError:  # an id with no account (a deleted user, a container's)
        name = None
    cache[key] = name
    return name
