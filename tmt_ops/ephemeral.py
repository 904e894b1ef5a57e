"""Registry ports in the kernel's ephemeral port range: a warning, said once by every script that loads the registry.

The kernel hands ports of that range (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 on Linux by default) to
outgoing connections. While a service is stopped, any client on the host may be given its port, and the service's
next start then fails to bind it (the address is in use) until that connection and its TIME_WAIT are gone: a
restart that works most of the time. Ports below the range, or ports reserved from it
(net.ipv4.ip_local_reserved_ports), are never handed out.

It reads the host, so it is not the loader's (which depends on the file and the environment only): the CLI asks it
once it has loaded the registry. Where the files cannot be read (not Linux), there is nothing to say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from .registry import Registry

PROC = Path("/proc/sys/net/ipv4")


def parse_ports(text: str) -> set[int]:
    """ip_local_reserved_ports' list ("N-M,P": ranges and single ports, or empty) as the ports it names."""
    ports: set[int] = set()
    for part in text.replace("\n", "").split(","):
        if part.strip():
            low, _, high = part.strip().partition("-")
            ports.update(range(int(low), int(high or low) + 1))
    return ports


def kernel_range(proc: Path = PROC) -> tuple[int, int, str] | None:
    """(low, high, the reserved ports as written) of this host; None where the range cannot be read."""
    try:
        low, high = map(int, (proc / "ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return None
    try:
        reserved = (proc / "ip_local_reserved_ports").read_text().strip()
    except OSError:  # a kernel without the setting reserves nothing
        reserved = ""
    return low, high, reserved


def in_range(ports: Mapping[str, int], low: int, high: int, reserved: set[int]) -> dict[str, int]:
    """The services whose port the kernel may hand to an outgoing connection."""
    return {name: port for name, port in ports.items() if low <= port <= high and port not in reserved}


def warnings(registry: Registry, proc: Path = PROC) -> list[str]:
    """The one warning for this registry's ports in the ephemeral range (none when there are none)."""
    found = kernel_range(proc)
    if found is None:
        return []
    low, high, reserved = found
    exposed = in_range({s.name: s.port for s in registry.services.values() if s.port is not None}, low, high,
                       parse_ports(reserved))
    if not exposed:
        return []
    ports = sorted(set(exposed.values()))
    widened = ",".join([reserved, *map(str, ports)] if reserved else map(str, ports))
    said = ", ".join(f"{port} ({name})" for name, port in exposed.items())
    many = len(exposed) > 1
    return [f"{'ports' if many else 'port'} {said} {'are' if many else 'is'} in the kernel's ephemeral port range "
            f"{low}-{high} (net.ipv4.ip_local_port_range): while a service is stopped, an outgoing connection may be "
            "given its port, and the service's next start then fails (address in use). Choose ports below "
            f"{low} in {registry.path}, or reserve {'them' if many else 'it'}: sysctl -w "
            f"net.ipv4.ip_local_reserved_ports={widened} (and the same in /etc/sysctl.d/ to keep it)"]
