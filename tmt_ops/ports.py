"""Is a port free, and which processes hold it. Connect/bind to know; scan sockets only to learn who."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Holder:
    pid: int
    name: str
    user: str
    cmdline: str

    def describe(self) -> str:
        return f"pid {self.pid} ({self.name}, user {self.user}): {self.cmdline}"


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_holders(port: int) -> list[Holder]:
    """Processes with a listening socket on `port` (any address). Costly: call only when the answer is needed."""
    return listeners([port]).get(port, [])


def listeners(ports) -> dict[int, list[Holder]]:
    """port -> processes listening on it, for several ports in one socket scan (the scan is the cost)."""
    wanted = set(ports)
    pids: dict[int, set[int]] = {}
    for c in psutil.net_connections(kind="inet"):
        if c.pid and c.laddr and c.laddr.port in wanted and c.status == psutil.CONN_LISTEN:
            pids.setdefault(c.laddr.port, set()).add(c.pid)
    found: dict[int, list[Holder]] = {}
    for port, port_pids in pids.items():
        for pid in sorted(port_pids):
            try:
                proc = psutil.Process(pid)
                with proc.oneshot():
                    holder = Holder(pid, proc.name(), proc.username(), " ".join(proc.cmdline()) or proc.name())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            found.setdefault(port, []).append(holder)
    return found
