"""Is a port free, and which processes hold it. Connect/bind to know; scan sockets only to learn who.

Whether a known set of processes holds a port is cheap (the port's listening sockets from /proc/net/tcp*,
then only those processes' descriptors); naming an unknown holder needs a scan of every process.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Iterable

import psutil

from .data import dataclass
from .redact import command_line


@dataclass(frozen=True)
class Holder:
    pid: int
    name: str
    user: str
    cmdline: str  # as shown: one line, its secrets masked (redact.command_line), wherever it goes (text, JSON)

    def describe(self) -> str:
        return f"pid {self.pid} ({self.name}, user {self.user}): {self.cmdline}"


def describe_holders(port: int, holders: Iterable[Holder]) -> str:
    """'port N is held by pid 4242 (nginx, user www): nginx -g ...' (several holders: joined by '; ')."""
    who = "; ".join(h.describe() for h in holders) or "a process this user cannot see"
    return f"port {port} is held by {who}"


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
                    holder = Holder(pid, proc.name(), proc.username(), command_line(proc.cmdline()) or proc.name())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            found.setdefault(port, []).append(holder)
    return found


def listening_sockets() -> dict[int, set[int]]:
    """port -> inodes of the listening TCP sockets on it (IPv4 and IPv6, this network namespace).

    Asked of the kernel's sock_diag netlink interface (as `ss -ltn` does), which returns only listening
    sockets: reading /proc/net/tcp instead costs milliseconds per thousand sockets, and a monitor's own
    probes leave thousands in TIME_WAIT. /proc is the fallback where sock_diag is not available."""
    try:
        return _sock_diag_listening()
    except OSError:
        return proc_net_listening()


NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP_REQUEST = 4, 20, 0x301
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_LISTEN = 10
# struct inet_diag_msg after the 16-byte netlink header: family, state, timer, retrans (4 bytes), then the
# socket id, whose first field is the source port (network order), ...; the inode is at byte 68.
DIAG_PORT, DIAG_INODE = 16 + 4, 16 + 68


def _sock_diag_listening() -> dict[int, set[int]]:
    found: dict[int, set[int]] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as netlink:
        netlink.settimeout(2)
        for family in (socket.AF_INET, socket.AF_INET6):
            request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN) + bytes(48)
            netlink.send(struct.pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_DUMP_REQUEST,
                                     family, 0) + request)
            while True:
                data, offset = netlink.recv(1 << 16), 0
                while offset < len(data):
                    length, kind = struct.unpack_from("=IH", data, offset)
                    if kind == NLMSG_DONE:
                        break
                    if kind == NLMSG_ERROR or length < DIAG_INODE + 4:
                        raise OSError("sock_diag refused the request")
                    (port,) = struct.unpack_from("!H", data, offset + DIAG_PORT)
                    (inode,) = struct.unpack_from("=I", data, offset + DIAG_INODE)
                    found.setdefault(port, set()).add(inode)
                    offset += (length + 3) & ~3
                else:
                    continue
                break
    return found


LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


def proc_net_listening() -> dict[int, set[int]]:
    """listening_sockets() read from /proc/net/tcp and tcp6."""
    found: dict[int, set[int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    if fields[3] == LISTEN:
                        found.setdefault(int(fields[1].rsplit(":", 1)[1], 16), set()).add(int(fields[9]))
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return found


def held_by(port: int, pids, listening: dict[int, set[int]]) -> bool | None:
    """True when every listening socket on `port` (from listening_sockets()) is held by one of `pids`; False
    when one is not (another process answers there too, or instead); None when nothing listens."""
    inodes = listening.get(port, set())
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    held = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone, or another user's
            continue
        for fd in fds:
            try:
                inode = wanted.get(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                continue
            if inode is not None:
                held.add(inode)
    return held == inodes
