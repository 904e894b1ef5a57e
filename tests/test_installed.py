"""Installed use, as a new user meets it: a wheel built from this repository, installed into a fresh venv, its
console commands run from an empty directory (no checkout anywhere near), finding their registry where an
operator puts it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest
import yaml

from support import REPO, advised, free_ports, write_registry

@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv with the wheel installed (its dependencies from the package index)."""
    root = tmp_path_factory.mktemp("installed")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(root / "dist"), str(REPO)],
                   check=True, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    (wheel,) = (root / "dist").glob("tmt_ops-*.whl")
    done = subprocess.run([str(root / "venv" / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return root

def command(venv, home, name, *args):
    """A console command of the installed toolkit, run in an empty directory with its own HOME."""
    work = home / "empty"
    work.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMT_", "XDG_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), NO_COLOR="1", PATH=f"{venv / 'venv' / 'bin'}{os.pathsep}{env['PATH']}")
    return subprocess.run([str(venv / "venv" / "bin" / name), *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)

def test_every_console_command_says_its_version(venv, tmp_path):
    for name in ("tmt-restart", "tmt-stop", "tmt-quick-restart", "tmt-docker", "tmt-health", "tmt-ops"):
        done = command(venv, tmp_path, name, "--version")
        assert done.returncode == 0 and done.stdout.strip().endswith("1.0.0"), (name, done.stdout, done.stderr)
    assert command(venv, tmp_path, "tmt-health", "-V").stdout.strip().endswith("1.0.0")

def test_without_a_registry_the_error_names_every_place_looked_at(venv, tmp_path):
    done = command(venv, tmp_path, "tmt-health")
    assert done.returncode == 3
    (line,) = [li for li in done.stderr.splitlines() if li.startswith("error: ")]
    for place in ("config/services.yaml", f"{tmp_path}/.config/tmt-ops/services.yaml", "/etc/tmt-ops/services.yaml"):
        assert place in line, line
    assert "tmt-ops init" in line and "site-packages" not in line

def test_the_starter_registry_runs_the_main_job_from_an_empty_directory(venv, tmp_path):
    init = command(venv, tmp_path, "tmt-ops", "init")
    assert init.returncode == 0, init.stderr
    registry = tmp_path / ".config" / "tmt-ops" / "services.yaml"
    state = tmp_path / ".local" / "state" / "tmt-ops"
    assert f"wrote {registry}" in init.stderr and state.is_dir()
    data = yaml.safe_load(registry.read_text())
    assert data["project"]["root"] == str(state)
    for service, port in zip(data["services"].values(), free_ports(len(data["services"]))):
        service["port"] = port  # tests never use the registry's production ports
    registry.write_text(yaml.safe_dump(data, sort_keys=False))
    again = command(venv, tmp_path, "tmt-ops", "init")
    assert again.returncode == 2 and "exists already" in again.stderr

    try:
        restarted = command(venv, tmp_path, "tmt-restart")
        assert restarted.returncode == 0, restarted.stderr
        assert "4 service(s) running and healthy" in restarted.stderr
        assert (state / "logs" / "orchestrator.log").is_file()
        health = command(venv, tmp_path, "tmt-health", "--format", "nagios")
        assert health.stdout.startswith("SYSTEM-HEALTH WARNING - 4 ok"), health.stdout  # only infrastructure is down
    finally:
        stopped = command(venv, tmp_path, "tmt-stop")
    assert stopped.returncode == 0 and "stopped 4 service(s)" in stopped.stderr, stopped.stderr

def test_the_installed_monitor_serves_its_status_page(venv, tmp_path):
    """The page's files are package data: a wheel without them would serve 404s (or fail at start)."""
    cfg = write_registry(tmp_path, drop=("prometheus", "grafana", "jaeger", "vault"))
    serve = command(venv, tmp_path, "tmt-health", "--config", str(cfg), "--serve", "127.0.0.1:0", "--count", "1")
    assert serve.returncode in (1, 2) and serve.stdout.startswith("serving http://127.0.0.1:"), serve.stderr
    probe = ("import urllib.request\n"
             "from tmt_ops.health.server import StatusServer\n"
             "from tmt_ops.health.snapshot import Publisher\n"
             "server = StatusServer('127.0.0.1', 0, Publisher(1, 1, False))\n"
             "server.start()\n"
             "for path in ('/', '/status.js', '/status.css'):\n"
             "    print(path, urllib.request.urlopen(server.url.rstrip('/') + path).status)\n"
             "server.close()\n")
    done = command(venv, tmp_path, "python", "-c", probe)
    assert done.stdout.split() == ["/", "200", "/status.js", "200", "/status.css", "200"], done.stderr


def test_the_advised_commands_are_the_installed_ones_and_run_where_printed(venv, tmp_path):
    """Installed and run from an empty directory, tmt-health advises commands of the install (never a checkout's
    script, which is not there, or the upstream script of the same name in a TMT checkout), and they run there."""
    cfg = write_registry(tmp_path, drop=("postgres", "redis", "kafka", "prometheus", "grafana", "jaeger", "vault"))
    try:
        assert command(venv, tmp_path, "tmt-ops", "start", "--config", str(cfg), "-q").returncode == 0
        assert command(venv, tmp_path, "tmt-stop", "--config", str(cfg), "--only", "dashboard", "-q").returncode == 0
        report = command(venv, tmp_path, "tmt-health", "--config", str(cfg), "--json")
        logs, restart = advised(json.loads(report.stdout), "dashboard")
        assert logs.startswith("tmt-ops logs ") and restart.startswith("tmt-restart "), (logs, restart)
        assert ".py" not in logs + restart
        read = command(venv, tmp_path, *shlex.split(logs))
        assert read.returncode == 0 and "dashboard" in read.stdout, read.stderr
        again = command(venv, tmp_path, *shlex.split(restart))
        assert again.returncode == 0 and "1 service(s) running and healthy" in again.stderr, again.stderr
        usage = command(venv, tmp_path, "tmt-restart", "--bogus")
        assert usage.returncode == 2 and usage.stderr.startswith("error: tmt-restart: "), usage.stderr
    finally:
        command(venv, tmp_path, "tmt-stop", "--config", str(cfg), "-q")
