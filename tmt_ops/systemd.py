"""systemd: unit files for this installation, and the notification protocol the monitor speaks to it.

Units (tmt-ops systemd):
- tmt-ops.service: a oneshot that brings the system up at boot in dependency order (after network-online and,
  in docker mode, docker.service) and stops it at shutdown;
- tmt-ops-monitor.service: `system-health.py --monitor`, Type=notify: it says READY once its first round is
  done, feeds the watchdog, and its STATUS is the overall state; optionally serving its endpoints (--serve)
  and healing (--heal: the services a heal starts must outlive the monitor, hence KillMode=process);
- tmt-ops-health-snapshot.service and .timer: the JSON snapshot the spec's cron line writes, daily.
Every command is this interpreter running `-m tmt_ops`, with the registry's absolute path.
"""

from __future__ import annotations

import math
import os
import shlex
import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .registry import Registry
from .registry.loader import CHECKOUT

NOTIFY_SOCKET = "NOTIFY_SOCKET"


def _command(registry: Registry, script: str, *args: str) -> str:
    parts = [sys.executable, "-m", "tmt_ops", script, "--config", str(registry.path.resolve()), *args]
    return " ".join(shlex.quote(p).replace("%", "%%") for p in parts)


def _environment() -> str:
    lines = ["Environment=NO_COLOR=1"]
    if (CHECKOUT / "restart-trading-system.py").is_file():  # tmt_ops runs from a source checkout
        lines.append(f"Environment=PYTHONPATH={CHECKOUT}")
    return "\n".join(lines)


def restart_limits(registry: Registry) -> tuple[int, int]:
    """Seconds a whole start, and a whole stop, of the system may take (every timeout of it in a row)."""
    start = math.ceil(sum(s.startup_timeout for s in registry.services.values()) + registry.compose_timeout)
    return start, math.ceil(sum(s.stop_grace for s in registry.services.values()) + 60)


def units(registry: Registry, mode: str, monitor_args: list[str], snapshot_dir: Path, *, serve: str | None = None,
          heal: bool = False) -> dict[str, str]:
    """name -> text of each unit file; serve ([HOST:]PORT) and heal extend the monitor's."""
    docker = mode != "native"  # containers need the engine up first
    after = "network-online.target" + (" docker.service" if docker else "")
    needs = "Requires=docker.service\n" if docker else ""
    start_limit, stop_limit = restart_limits(registry)
    monitor = ["--monitor", "--mode", mode, *(["--serve", serve] if serve else []), *(["--heal"] if heal else []),
               *monitor_args]
    # A heal starts services: they must outlive the monitor (KillMode=process), and a stop during a heal lets
    # it finish the stop wave in flight and start again what it stopped.
    healing = f"KillMode=process\nTimeoutStopSec={start_limit + stop_limit}\n" if heal else ""
    interval = registry.health.monitor_interval
    watchdog = math.ceil(2 * interval + registry.health.deadline + 10)  # a round must end; pings come in between
    snapshot = f"{_command(registry, 'health', '--json')} > {shlex.quote(str(snapshot_dir))}/health-$$(date +%%Y%%m%%d).json"
    common = f"{_environment()}\nWorkingDirectory={registry.root}"
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
