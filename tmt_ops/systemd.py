"""systemd: unit files for this installation, and the notification protocol the monitor speaks to it.

Units (tmt-ops systemd):
- tmt-ops.service: a oneshot that brings the system up at boot in dependency order (after network-online and,
  in docker mode, docker.service) and stops it at shutdown;
- tmt-ops-monitor.service: `system-health.py --monitor`, Type=notify: it says READY once its first round is
  done, feeds the watchdog, and its STATUS is the overall state;
- tmt-ops-health-snapshot.service and .timer: the JSON snapshot the spec's cron line writes, daily.
Every command is this interpreter running `-m tmt_ops`, with the registry's absolute path.
"""

from __future__ import annotations

import math
import os
import shlex
import socket
import sys
from pathlib import Path

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


def units(registry: Registry, mode: str, monitor_args: list[str], snapshot_dir: Path) -> dict[str, str]:
    """name -> text of each unit file."""
    docker = mode != "native"  # containers need the engine up first
    after = "network-online.target" + (" docker.service" if docker else "")
    needs = "Requires=docker.service\n" if docker else ""
    start_limit = math.ceil(sum(s.startup_timeout for s in registry.services.values()) + registry.compose_timeout)
    stop_limit = math.ceil(sum(s.stop_grace for s in registry.services.values()) + 60)
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
Description=TMT trading system health monitor (tmt-ops)
After=tmt-ops.service

[Service]
Type=notify
NotifyAccess=main
{common}
ExecStart={_command(registry, 'health', '--monitor', '--mode', mode, *monitor_args)}
WatchdogSec={watchdog}
Restart=on-failure
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

    def send(self, **fields: str) -> None:
        if not self.address:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, self.address)
        except OSError:  # systemd gone (shutdown): nothing to tell
            pass
