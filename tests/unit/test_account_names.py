"""The probes' uid/gid name cache: right names, bounded, and still answering when full.

Regression: the exec-capture copy cleared its cache *after* storing a new id and then
read that id back, so the 4,097th distinct uid raised KeyError inside the probe."""

from __future__ import annotations

import os
import pwd

from agent.probes import account_names
from agent.probes.account_names import AccountNames


def test_names_are_the_systems() -> None:
    names = AccountNames()
    assert names.user(os.getuid()) == pwd.getpwuid(os.getuid()).pw_name
    assert names.user(4_000_000_000) is None  # no such account
    assert names.group(0) is not None


def test_a_full_cache_starts_over_and_still_answers(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(account_names, "MAX_CACHED", 8)
    names = AccountNames()
    for uid in range(4_000_000_000, 4_000_000_020):
        assert names.user(uid) is None and names.group(uid) is None
        assert len(names.users) <= 8 and len(names.groups) <= 8
    names.forget()
    assert names.users == {} and names.groups == {}
