"""Auth log parser over real-format lines (Debian 12 rsyslog, RHEL secure, sshd -E)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest

from agent.probes.authparse import parse_line, split_header


def test_rfc3164_header_local_time_and_year():
    os.environ["TZ"] = "Asia/Ho_Chi_Minh"
    time.tzset()
    try:
        now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
        h = split_header("Nov 23 15:38:06 web1 sshd[812]: hello", now)
        assert h.timestamp == "2026-11-23T08:38:06.000Z"  # +07:00 local -> UTC
        assert (h.host, h.program, h.pid, h.message) == ("web1", "sshd", 812, "hello")
        # A December line read in early January belongs to last year.
        h = split_header("Dec 31 23:59:59 web1 su: x", datetime(2027, 1, 1, 0, 5, tzinfo=UTC))
        assert h.timestamp.startswith("2026-12-31T16:59:59")
        # Single-digit day is space padded.
        h = split_header("Feb  3 01:02:03 web1 sudo: x", now)
        assert h.timestamp.startswith("2026-02-02T18:02:03")
    finally:
        os.environ.pop("TZ", None)
        time.tzset()


def test_rfc3339_header():
    h = split_header("2026-11-23T15:38:06.123456+07:00 web1 sshd[9]: hi")
    assert h.timestamp == "2026-11-23T08:38:06.123Z"
    assert h.program == "sshd" and h.pid == 9
    h = split_header("2026-11-23T15:38:06Z web1 sudo: hi")
    assert h.timestamp == "2026-11-23T15:38:06.000Z" and h.pid is None


@pytest.mark.parametrize(
    ("line", "action", "outcome", "user", "ip", "port"),
    [
        ("Nov 23 15:38:06 web1 sshd[812]: Failed password for root from 203.0.113.9 port 50022 ssh2",
         "ssh_login", "failure", "root", "203.0.113.9", 50022),
        ("Nov 23 15:38:06 web1 sshd[812]: Failed password for invalid user admin from "
         "203.0.113.9 port 50024 ssh2", "ssh_login", "failure", "admin", "203.0.113.9", 50024),
        ("Nov 23 15:38:06 web1 sshd[812]: Accepted password for alice from 2001:db8::5 port "
         "41000 ssh2", "ssh_login", "success", "alice", "2001:db8::5", 41000),
        ("Nov 23 15:38:06 web1 sshd[812]: Accepted publickey for alice from 10.0.0.5 port 41000 "
         "ssh2: ED25519 SHA256:abcdefghijklmnop", "ssh_login", "success", "alice", "10.0.0.5",
         41000),
        ("Nov 23 15:38:06 web1 sshd[812]: Failed publickey for bob from 10.0.0.5 port 41000 ssh2: "
         "RSA SHA256:zzz", "ssh_login", "failure", "bob", "10.0.0.5", 41000),
        ("Nov 23 15:38:06 web1 sshd[812]: Invalid user oracle from 198.51.100.7 port 33000",
         "ssh_invalid_user", "failure", "oracle", "198.51.100.7", 33000),
        ("Nov 23 15:38:06 web1 sshd[812]: Disconnected from user alice 10.0.0.5 port 41000",
         "ssh_disconnect", "unknown", "alice", "10.0.0.5", 41000),
        ("Nov 23 15:38:06 web1 sshd[812]: Disconnected from invalid user admin 10.0.0.5 port 4 "
         "[preauth]", "ssh_disconnect", "unknown", "admin", "10.0.0.5", 4),
        ("Nov 23 15:38:06 web1 sshd[812]: Received disconnect from 10.0.0.5 port 41000:11: "
         "disconnected by user", "ssh_disconnect", "unknown", None, "10.0.0.5", 41000),
        ("Nov 23 15:38:06 web1 sshd[812]: Connection closed by authenticating user root "
         "10.0.0.5 port 41000 [preauth]", "ssh_disconnect", "unknown", "root", "10.0.0.5", 41000),
        ("2026-11-23T15:38:06.000001+00:00 web1 sshd-session[77]: error: maximum authentication "
         "attempts exceeded for root from 10.0.0.5 port 41000 ssh2 [preauth]",
         "ssh_max_auth_exceeded", "failure", "root", "10.0.0.5", 41000),
        # sshd -E file: no header at all
        ("Failed password for root from 127.0.0.7 port 40000 ssh2", "ssh_login", "failure",
         "root", "127.0.0.7", 40000),
    ],
)
def test_sshd(line, action, outcome, user, ip, port):
    ev = parse_line(line)
    assert ev["event"]["dataset"] == "auth"
    assert ev["event"]["action"] == action
    assert ev["event"]["outcome"] == outcome
    assert ev["event"]["original"] == line
    assert ev.get("user", {}).get("name") == user
    assert ev["source"]["ip"] == ip and ev["source"]["port"] == port
    assert ip in ev["related"]["ip"]
    if user:
        assert user in ev["related"]["user"]
    if "sshd[" in line:
        assert ev["process"] == {"name": "sshd", "pid": 812}


def test_sshd_method_and_key():
    ev = parse_line("Nov 23 15:38:06 web1 sshd[812]: Accepted publickey for alice from 10.0.0.5 "
                    "port 41000 ssh2: ED25519 SHA256:abc")
    assert ev["canhgac"]["ssh"] == {"method": "publickey", "key": "ED25519 SHA256:abc"}
    assert ev["event"]["category"] == ["authentication"] and ev["event"]["type"] == ["start"]


def test_pam_lines():
    ev = parse_line("Nov 23 15:38:06 web1 sshd[812]: pam_unix(sshd:auth): authentication failure; "
                    "logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root")
    assert ev["event"]["action"] == "sshd_auth_failure"
    assert ev["source"]["ip"] == "203.0.113.9" and ev["user"]["name"] == "root"
    ev = parse_line("Nov 23 15:38:06 web1 sshd[812]: pam_unix(sshd:session): session opened for "
                    "user alice(uid=1000) by (uid=0)")
    assert ev["event"]["action"] == "sshd_session_open" and ev["user"]["id"] == "1000"


@pytest.mark.parametrize(
    ("line", "outcome", "user", "target", "command", "reason"),
    [
        ("Nov 23 15:38:06 web1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; "
         "COMMAND=/usr/bin/id -u", "success", "alice", "root", "/usr/bin/id -u", None),
        ("Nov 23 15:38:06 web1 sudo:    alice : 3 incorrect password attempts ; TTY=pts/0 ; "
         "PWD=/home/alice ; USER=root ; COMMAND=/bin/bash", "failure", "alice", "root",
         "/bin/bash", "3 incorrect password attempts"),
        ("2026-11-23T15:38:06.5+07:00 web1 sudo[4242]:      bob : user NOT in sudoers ; "
         "TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/cat /etc/shadow", "failure", "bob",
         "root", "/bin/cat /etc/shadow", "user NOT in sudoers"),
    ],
)
def test_sudo(line, outcome, user, target, command, reason):
    ev = parse_line(line)
    assert ev["event"]["action"] == "sudo" and ev["event"]["outcome"] == outcome
    assert ev["user"]["name"] == user and ev["user"]["effective"]["name"] == target
    assert ev["process"]["name"] == "sudo"
    assert ev["process"]["command_line"] == command
    assert ev["event"].get("reason") == reason
    assert set(ev["related"]["user"]) == {user, target}


@pytest.mark.parametrize(
    ("line", "outcome"),
    [
        ("Nov 23 15:38:06 web1 su[999]: (to root) alice on pts/0", "success"),
        ("Nov 23 15:38:06 web1 su[999]: FAILED SU (to root) alice on pts/0", "failure"),
        ("Nov 23 15:38:06 web1 su: Successful su for root by alice", "success"),
        ("Nov 23 15:38:06 web1 su: + pts/0 alice:root", "success"),
    ],
)
def test_su(line, outcome):
    ev = parse_line(line)
    assert ev["event"]["action"] == "su" and ev["event"]["outcome"] == outcome
    assert ev["user"]["name"] == "alice" and ev["user"]["effective"]["name"] == "root"


@pytest.mark.parametrize(
    ("line", "action", "user", "group"),
    [
        ("Nov 23 15:38:06 web1 useradd[2001]: new user: name=mallory, UID=0, GID=0, "
         "home=/root, shell=/bin/bash, from=/dev/pts/0", "user_created", "mallory", None),
        ("Nov 23 15:38:06 web1 useradd[2001]: new group: name=devs, GID=1002", "group_created",
         None, "devs"),
        ("Nov 23 15:38:06 web1 groupadd[2002]: group added to /etc/group: name=ops, GID=1003",
         "group_created", None, "ops"),
        ("Nov 23 15:38:06 web1 usermod[2003]: add 'bob' to group 'sudo'", "user_added_to_group",
         "bob", "sudo"),
        ("Nov 23 15:38:06 web1 usermod[2003]: add 'bob' to shadow group 'sudo'",
         "user_added_to_group", "bob", "sudo"),
        ("Nov 23 15:38:06 web1 usermod[2003]: change user 'bob' shell from '/bin/sh' to "
         "'/bin/bash'", "user_modified", "bob", None),
        ("Nov 23 15:38:06 web1 usermod[2003]: lock user 'bob' password", "user_locked", "bob",
         None),
        ("Nov 23 15:38:06 web1 userdel[2004]: delete user 'bob'", "user_deleted", "bob", None),
        ("Nov 23 15:38:06 web1 userdel[2004]: removed group 'bob' owned by 'bob'",
         "group_deleted", "bob", "bob"),
        ("Nov 23 15:38:06 web1 groupdel[2005]: group 'ops' removed", "group_deleted", None, "ops"),
        ("Nov 23 15:38:06 web1 passwd[2006]: pam_unix(passwd:chauthtok): password changed for "
         "bob", "password_changed", "bob", None),
        ("Nov 23 15:38:06 web1 chpasswd[2007]: pam_unix(chpasswd:chauthtok): password changed "
         "for carol", "password_changed", "carol", None),
    ],
)
def test_iam(line, action, user, group):
    ev = parse_line(line)
    assert ev["event"]["dataset"] == "iam"
    assert ev["event"]["category"] == ["iam"]
    assert ev["event"]["action"] == action and ev["event"]["outcome"] == "success"
    assert ev.get("user", {}).get("name") == user
    if user:
        assert ev["user"]["target"]["name"] == user
    assert ev.get("group", {}).get("name") == group


def test_uid0_user_carries_uid():
    ev = parse_line("Nov 23 15:38:06 web1 useradd[2001]: new user: name=toor, UID=0, GID=0, "
                    "home=/root, shell=/bin/bash, from=/dev/pts/0")
    assert ev["user"]["id"] == "0" and ev["user"]["target"]["id"] == "0"
    assert ev["event"]["type"] == ["user", "creation"]
    ev = parse_line("Nov 23 15:38:06 web1 usermod[1]: change user 'bob' UID from '1001' to '0'")
    assert ev["user"]["target"]["id"] == "0"


@pytest.mark.parametrize(
    "line",
    [
        "Nov 23 15:38:06 web1 CRON[5]: pam_unix(cron:session): session closed for user root",
        "Nov 23 15:38:06 web1 systemd-logind[400]: New session 3 of user alice.",
        "Nov 23 15:38:06 web1 sshd[812]: Server listening on 0.0.0.0 port 22.",
        "garbage \x00 with no header",
        "",
    ],
)
def test_unknown_lines_are_kept(line):
    ev = parse_line(line)
    assert ev["event"]["original"] == line
    assert ev["event"]["id"]
    if "pam_unix(cron" not in line:
        assert ev["event"]["dataset"] == "raw"


def test_journal_entries():
    from agent.probes.authparse import parse_journal

    entry = {"MESSAGE": "Failed password for root from 10.0.0.9 port 2222 ssh2",
             "SYSLOG_IDENTIFIER": "sshd", "_PID": "901", "_HOSTNAME": "web1",
             "__REALTIME_TIMESTAMP": "1795449907022201", "SYSLOG_FACILITY": "10"}
    ev = parse_journal(entry)
    assert ev["event"]["action"] == "ssh_login" and ev["event"]["outcome"] == "failure"
    assert ev["@timestamp"] == "2026-11-23T16:05:07.022Z"
    assert ev["process"] == {"name": "sshd", "pid": 901}
    assert ev["host"] == {"hostname": "web1"}
    assert ev["event"]["original"].endswith("web1 sshd[901]: " + entry["MESSAGE"])
    # non-UTF-8 message (journald sends a byte array) and an unknown program: raw, kept
    ev = parse_journal({"MESSAGE": list(b"caf\xe9"), "SYSLOG_IDENTIFIER": "kernel"})
    assert ev["event"]["dataset"] == "raw" and "caf\ufffd" in ev["event"]["original"]
