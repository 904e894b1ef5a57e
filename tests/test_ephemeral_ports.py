"""A registry port in the kernel's ephemeral range is a warning, said once by every script that loads the registry:
an outgoing connection may be given that port while its service is stopped, and the next start then fails."""

from __future__ import annotations

import socket

import yaml

from support import SHIPPED, run_script
from tmt_ops.ephemeral import kernel_range, parse_ports, warnings
from tmt_ops.registry import load_registry


def proc_dir(tmp_path, port_range: str, reserved: str = ""):
    """Files shaped as /proc/sys/net/ipv4's two (the real ones cannot be changed by a test)."""
    folder = tmp_path / "ipv4"
    folder.mkdir(parents=True)
    (folder / "ip_local_port_range").write_text(port_range + "\n")
    (folder / "ip_local_reserved_ports").write_text(reserved + "\n")
    return folder


def with_port(registry_file, port: int):
    def edit(data):
        data["services"]["orchestrator"]["port"] = port
    return registry_file(edit=edit)


def test_reserved_ports_are_read_as_the_kernel_writes_them():
    assert parse_ports("8000-8002,9000\n") == {8000, 8001, 8002, 9000}
    assert parse_ports("\n") == set()


def test_a_port_in_the_range_warns_with_the_range_and_what_to_do_unless_it_is_reserved(registry_file, tmp_path):
    registry = load_registry(with_port(registry_file, 40001))
    (said,) = warnings(registry, proc_dir(tmp_path / "a", "32768\t60999"))
    assert said.startswith("port 40001 (orchestrator) is in the kernel's ephemeral port range 32768-60999")
    assert f"Choose ports below 32768 in {registry.path}" in said
    assert "sysctl -w net.ipv4.ip_local_reserved_ports=40001 " in said
    widened = warnings(registry, proc_dir(tmp_path / "b", "32768\t60999", "8000-8010"))[0]
    assert "net.ipv4.ip_local_reserved_ports=8000-8010,40001 " in widened  # the ports reserved already stay
    assert warnings(registry, proc_dir(tmp_path / "c", "32768\t60999", "40000-40010")) == []
    assert warnings(registry, proc_dir(tmp_path / "d", "50000\t60999")) == []
    assert warnings(registry, tmp_path / "no-such-proc") == []  # nothing to read (not Linux): nothing to say


def test_the_shipped_ports_are_below_the_range(tmp_path):
    shipped = load_registry(SHIPPED)
    assert warnings(shipped) == []  # this host's range
    assert warnings(shipped, proc_dir(tmp_path, "32768\t60999")) == []  # Linux's default


def test_every_script_says_it_once_and_the_test_registries_never(registry_file):
    assert kernel_range() is not None
    with socket.socket() as s:  # a port the kernel picks is one of its ephemeral range
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = with_port(registry_file, port)
    line = f"registry: port {port} (orchestrator) is in the kernel's ephemeral port range"
    for script, *args in (("system-health.py", "--json"), ("stop-trading-system.py", "--dry-run"),
                          ("restart-trading-system.py", "--dry-run", "-q")):
        done = run_script(script, "--config", str(cfg), *args)
        assert done.stderr.count(line) == 1, (script, done.stderr)
    low, high, _ = kernel_range()
    assert not low <= yaml.safe_load(cfg.read_text())["services"]["redis"]["port"] <= high  # support.free_ports
    plain = run_script("system-health.py", "--config", str(registry_file()), "--json")
    assert "ephemeral" not in plain.stderr, plain.stderr
