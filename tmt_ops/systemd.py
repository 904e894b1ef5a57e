"""systemd: unit files for this installation, and the notification protocol the monitor speaks to it.

Units (tmt-ops systemd):
- tmt-ops.service: a oneshot that brings the system up at boot in dependency order (after network-online and,
  in docker mode, docker.service) and stops it at shutdown;
- tmt-ops-monitor.service: `system-health.py --monitor`, Type=notify: it says READY once its first round is
  done, feeds the watchdog, and its STATUS is the overall state; optionally serving its endpoints (--serve)
  and healing (--heal: the services a heal starts must outlive the monitor, hence KillMode=process);
- tmt-ops-health-snapshot.service and .timer: the JSON snapshot the spec's cron line writes, daily.
Every command is this interpreter running `-m tmt_ops`, with the registry's absolute path, as the user who runs
`tmt-ops systemd` (through sudo: the user who ran sudo), or the one --user names: units made from a user's registry
must not run it as root. Root only when named: --user root.
"""

from __future__ import annotations

import grp
import math
import os
import pwd
import shlex
import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import modes
from .errors import UsageError
from .registry import Registry, Service
from .registry.loader import CHECKOUT

NOTIFY_SOCKET = "NOTIFY_SOCKET"
SLACK = 60  # seconds for what no timeout bounds: spawning, the probes between waves, the final health round


def _command(registry: Registry, script: str, *args: str) -> str:
    parts = [sys.executable, "-m", "tmt_ops", script, "--config", str(registry.path.resolve()), *args]
    return " ".join(shlex.quote(p).replace("%", "%%") for p in parts)


def _environment() -> str:
    lines = ["Environment=NO_COLOR=1"]
    if (CHECKOUT / "restart-trading-system.py").is_file():  # tmt_ops runs from a source checkout
        lines.append(f"Environment=PYTHONPATH={CHECKOUT}")
    return "\n".join(lines)


def account(name: str | None, uid: int, environ=os.environ) -> tuple[str, str]:
    """(User=, Group=) of the units: `name` (--user), else the user `uid` is (through sudo: the user who ran sudo),
    in the user's primary group. Root without a name is a usage error: root must be asked for (--user root)."""
    if name is None:
        sudo = environ.get("SUDO_USER", "") if uid == 0 else ""
        if uid == 0 and sudo in ("", "root"):
            raise UsageError("tmt-ops systemd runs as root: name the user the units run as, --user NAME (--user root "
                             "to run the trading system as root)")
        name = sudo or pwd.getpwuid(uid).pw_name
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise UsageError(f"--user {name}: no such user on this host") from None
    try:
        return entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name
    except KeyError:  # a primary group without a name
        return entry.pw_name, str(entry.pw_gid)


def _started(registry: Registry, mode: str) -> list[Service]:
    """What a restart in this mode may start: native, the managed services and those with a backend of their own
    (a container); the container modes, whatever the compose file has, so every service."""
    engine = modes.of_mode(mode).engine
    return [s for s in registry.services.values() if engine or s.managed or s.backend]


def _containers(registry: Registry, mode: str) -> bool:
    """Whether containers run in this mode: every mode but native, and native with a service of a container backend
    of its own (infrastructure `backend: compose`)."""
    return modes.of_mode(mode).engine or any(s.backend and modes.of_backend(s.backend).engine
                                             for s in _started(registry, mode))


def _waves(waves: list[list[Service]], seconds) -> float:
    """A wave's services go at once: each wave takes its slowest, the waves one after another (a stop or a start
    that follows the graph instead ends no later)."""
    return sum(max(seconds(s) for s in wave) for wave in waves)


def restart_limits(registry: Registry, mode: str) -> tuple[int, int]:
    """Seconds a whole restart (it stops what runs, then starts it) and a whole stop of the system may take
    in this mode: the builds, the stop waves' pre-stop calls and graces, the start waves' dependencies outside the
    start probed, readiness (startup_timeout) and post-start calls, one health round; in a mode with containers
    compose_timeout more (a build or pull). (Every startup_timeout in a row plus compose_timeout, as it was, gave
    the shipped registry's native units 26 minutes: infrastructure it never starts, a compose call it never makes.)"""
    started = _started(registry, mode)
    names = {s.name for s in started}
    outside = {s.name: s.probe.timeout for s in registry.services.values() if s.name not in names and not s.oneshot}
    stop = _waves(registry.stop_waves(started), lambda s: (s.pre_stop.timeout if s.pre_stop else 0) + s.stop_grace)
    start = _waves(registry.start_waves(started), lambda s: max((outside.get(d.name, 0) for d in s.depends_on),
                                                                default=0) + s.startup_timeout +
                   (s.post_start.timeout if s.post_start else 0))
    builds = sum(s.build.timeout for s in started if s.build)
    compose = registry.compose_timeout if _containers(registry, mode) else 0
    return (math.ceil(builds + stop + start + registry.health.deadline + compose + SLACK),
            math.ceil(stop + SLACK))


def units(registry: Registry, mode: str, monitor_args: list[str], snapshot_dir: Path, *, user: tuple[str, str],
          serve: str | None = None, heal: bool = False) -> dict[str, str]:
    """name -> text of each unit file; user: (User=, Group=) (account()); serve ([HOST:]PORT) and heal extend the
    monitor's."""
    docker = _containers(registry, mode)  # containers need the engine up first
    after = "network-online.target" + (" docker.service" if docker else "")
    needs = "Requires=docker.service\n" if docker else ""
    start_limit, stop_limit = restart_limits(registry, mode)
    monitor = ["--monitor", "--mode", mode, *(["--serve", serve] if serve else []), *(["--heal"] if heal else []),
               *monitor_args]
    # A heal starts services: they must outlive the monitor (KillMode=process), and a stop during a heal lets
    # it finish the stops in flight and start again what it stopped.
    healing = f"KillMode=process\nTimeoutStopSec={start_limit + stop_limit}\n" if heal else ""
    interval = registry.health.monitor_interval
    watchdog = math.ceil(2 * interval + registry.health.deadline + 10)  # a round must end; pings come in between
    snapshot = f"{_command(registry, 'health', '--json')} > {shlex.quote(str(snapshot_dir))}/health-$$(date +%%Y%%m%%d).json"
    common = f"User={user[0]}\nGroup={user[1]}\n{_environment()}\nWorkingDirectory={registry.root}"
    return {
        "tmt-ops.service": f"""[Unit]
Description=TMT trading system, started in dependency order by tmt-ops ({mode} mode)
Documentation=man:systemd.service(5)
Wants=network-online.target
After={after}
{needs}
[Service]
Type=oneshot
RemainAfterExit=yes
{common}
ExecStart={_command(registry, 'restart', '--mode', mode)}
ExecStop={_command(registry, 'stop', '--mode', mode)}
TimeoutStartSec={start_limit}
TimeoutStopSec={stop_limit}

[Install]
WantedBy=multi-user.target
""",
        "tmt-ops-monitor.service": f"""[Unit]
Description=TMT trading system health monitor (tmt-ops){' that heals' if heal else ''}
After=tmt-ops.service

[Service]
Type=notify
NotifyAccess=main
{common}
ExecStart={_command(registry, 'health', *monitor)}
WatchdogSec={watchdog}
# it ends with the last round's verdict: 1 and 2 (warning, critical) are a stop, not a failure of the monitor
SuccessExitStatus=1 2
{healing}Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
""",
        "tmt-ops-health-snapshot.service": f"""[Unit]
Description=TMT trading system health snapshot as JSON (tmt-ops)

[Service]
Type=oneshot
{common}
ExecStart=/bin/sh -c {shlex.quote(snapshot)}
# 1 and 2 are the report's verdict (warning, critical), written all the same; 3 is a check that could not run
SuccessExitStatus=1 2
""",
        "tmt-ops-health-snapshot.timer": """[Unit]
Description=Daily TMT trading system health snapshot (tmt-ops)

[Timer]
OnCalendar=daily
Persistent=true

[Install]
WantedBy=timers.target
""",
    }


class Notifier:
    """sd_notify(3) without libsystemd: datagrams to $NOTIFY_SOCKET. Quiet where systemd did not ask for it."""

    def __init__(self, environ=os.environ) -> None:
        address = environ.get(NOTIFY_SOCKET, "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = environ.get("WATCHDOG_USEC", "")
        self.watchdog = int(usec) / 1e6 if usec.isdigit() and environ.get("WATCHDOG_PID", str(os.getpid())) == \
            str(os.getpid()) else None  # seconds; ping at least twice as often

    @contextmanager
    def feeding(self, status: str, limit: float) -> Iterator[None]:
        """While a long step runs between rounds (a heal's restart): STATUS says what it is, and the watchdog
        is fed from a thread, but for `limit` seconds at most: a step that hangs past its own timeouts is what
        the watchdog is for."""
        self.send(STATUS=status)
        if not self.watchdog:
            yield
            return
        done = threading.Event()

        def feed() -> None:
            end = time.monotonic() + limit
            while not done.wait(self.watchdog / 2) and time.monotonic() < end:
                self.send(WATCHDOG="1")

        thread = threading.Thread(target=feed, name="watchdog", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def send(self, **fields: str) -> None:
        if not self.address:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)  # a reader that lags (its queue full) must never stall a round or a heal
                sock.sendto(message, self.address)
        except OSError:  # systemd gone (shutdown), or its queue full: nothing to tell now
            pass
