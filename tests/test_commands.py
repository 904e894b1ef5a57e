"""One command line (tmt-ops and the spec's scripts as thin names for its commands): start, status and logs in every
mode through the same tests; the flags every command shares; a way of running added by one row of modes.py."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

import pytest
import yaml

from docker_helpers import CORE, down, healthy_containers
from fake_backend import ROW, RowBackend
from native_support import recorded_pids
from support import REPO, advised, kill_listeners, remove_cgroups, run_script, write_registry
from swarm_helpers import remove_stack, task_ids
from tmt_ops import modes


def ops(config, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """tmt-ops ARGS --config CONFIG (as python -m tmt_ops, from the checkout)."""
    return subprocess.run([sys.executable, "-m", "tmt_ops", *args, "--config", str(config)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env={**os.environ, "NO_COLOR": "1"},
                          stdin=subprocess.DEVNULL)


IDENTITY = {"native": lambda cfg: recorded_pids(cfg),  # what runs, by a means other than the command under test
            "docker": lambda cfg: healthy_containers(cfg), "swarm": lambda cfg: task_ids(cfg)}


@pytest.fixture(scope="module", params=["native", pytest.param("docker", marks=pytest.mark.docker),
                                        pytest.param("swarm", marks=pytest.mark.docker)])
def deployment(request, tmp_path_factory):
    """(mode, registry) with nothing running; whatever the tests start is removed after."""
    mode = request.param
    config = write_registry(tmp_path_factory.mktemp(mode), edit=lambda d: d["project"].update(default_mode=mode))
    yield mode, config
    ops(config, "stop", "--mode", mode, "--with-infra", "-q")
    if mode == "docker":
        down(config)
    elif mode == "swarm":
        remove_stack(config)
    data = yaml.safe_load(config.read_text())
    kill_listeners(s["port"] for s in data["services"].values())
    remove_cgroups(config.parent / "state", data["services"])


def states(config, mode: str, *only: str) -> tuple[int, dict[str, dict]]:
    done = ops(config, "status", "--mode", mode, "--json", *(("--only", *only) if only else ()))
    assert done.returncode in (0, 1) and not done.stderr.strip().startswith("error"), done.stderr
    return done.returncode, {s["service"]: s for s in json.loads(done.stdout)["services"]}


def test_start_brings_up_what_a_service_needs_and_touches_nothing_that_runs(deployment):
    mode, config = deployment
    first = ops(config, "start", "--mode", mode, "--only", "market-analysis")
    assert first.returncode == 0, first.stderr
    code, seen = states(config, mode, *CORE)
    assert code == 1  # not every one runs
    assert {n: seen[n]["state"] for n in CORE} == {"orchestrator": "running", "market-analysis": "running",
                                                   "execution-engine": "stopped", "dashboard": "stopped"}
    running = seen["orchestrator"]
    assert running["pids"] or running["container"], running  # what it runs as: a pid, a container or a task
    assert running["port"] and running["uptime_seconds"] is not None and running["backend"] in ("native", "compose",
                                                                                               "swarm")
    before = IDENTITY[mode](config)
    assert {"orchestrator", "market-analysis"} <= set(before)

    rest = ops(config, "start", "--mode", mode)
    assert rest.returncode == 0, rest.stderr
    after = IDENTITY[mode](config)
    assert {n: after.get(n) for n in ("orchestrator", "market-analysis")} == \
        {n: before[n] for n in ("orchestrator", "market-analysis")}  # left as they were
    assert states(config, mode, *CORE)[0] == 0

    again = ops(config, "start", "--mode", mode)
    assert again.returncode == 0 and "nothing to start" in again.stderr, again.stderr
    assert IDENTITY[mode](config) == after

    table = ops(config, "status", "--mode", mode, "--only", *CORE)
    assert table.returncode == 0 and table.stdout.split()[:3] == ["SERVICE", "STATE", "BACKEND"], table.stdout
    assert all(f"{name} " in table.stdout for name in CORE)


def test_logs_show_each_services_own_output_and_end_when_the_reader_goes(deployment):
    mode, config = deployment
    if set(IDENTITY[mode](config)) < set(CORE):
        assert ops(config, "start", "--mode", mode).returncode == 0
    one = ops(config, "logs", "--mode", mode, "orchestrator", "--tail", "3")
    assert one.returncode == 0, one.stderr
    assert 0 < len(one.stdout.splitlines()) <= 3 + 1, one.stdout  # (the engine may add one line of its own)
    every = ops(config, "logs", "--mode", mode, "--tail", "5")
    assert every.returncode == 0 and all(name in every.stdout for name in CORE), every.stdout
    assert ops(config, "logs", "--mode", mode, "orchestratr").returncode == 2

    follow = subprocess.Popen([sys.executable, "-m", "tmt_ops", "logs", "--mode", mode, "-f", "orchestrator",
                               "--tail", "1", "--config", str(config)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=REPO)
    try:
        assert follow.stdout.readline()  # it follows...
        follow.stdout.close()  # ...until the reader goes away (| head)
        run_script("system-health.py", "--config", str(config), "--mode", mode, timeout=120)  # more lines to write
        code = follow.wait(timeout=30)
    finally:
        follow.kill()
    assert code == 0 and b"Traceback" not in follow.stderr.read()


# -- the flags every command shares ---------------------------------------------------------------------------
EVERY = {"--config", "-q", "--quiet", "-v", "--verbose", "-V", "--version", "exit codes:"}
SELECTS = {"--mode", "--only"}
CHANGES = {"--no-deps", "--dry-run"}
STOPS = {"-t", "--timeout", "--force"}
FLAGS = {  # tmt-ops COMMAND: what its --help must offer
    "restart": EVERY | SELECTS | CHANGES | STOPS | {"--skip-health-check", "--no-build", "--with-infra"},
    "stop": EVERY | SELECTS | CHANGES | STOPS | {"--remove-stack", "--with-infra"},
    "start": EVERY | SELECTS | CHANGES | {"--skip-health-check", "--no-build", "--with-infra"},
    "quick-restart": EVERY | SELECTS | CHANGES | STOPS,
    "docker": EVERY | SELECTS | CHANGES | STOPS | {"--json", "--tail", "--follow"},
    "status": EVERY | SELECTS | {"--json"},
    "logs": EVERY | SELECTS | {"--tail", "-f", "--follow"},
    "health": EVERY | SELECTS | {"--json", "--format", "--monitor", "--serve", "--heal"},
    "systemd": EVERY | {"--mode", "--user"},
    "services": EVERY, "history": EVERY | {"--json"}, "alerts": EVERY,
    "init": {"-V", "--version", "exit codes:"}, "completion": {"-V", "--version", "exit codes:"},
}
SCRIPTS = {"restart-trading-system.py": "restart", "stop-trading-system.py": "stop", "quick-restart.py": "quick-restart",
           "docker-restart.py": "docker", "system-health.py": "health"}


def offered(help_text: str) -> set[str]:
    words = {w.strip("[],|") for w in help_text.split()}
    return {w for w in words if w.startswith("-")} | ({"exit codes:"} if "exit codes:" in help_text else set())


def test_tmt_ops_lists_every_command_and_each_offers_the_shared_flags():
    listed = subprocess.run([sys.executable, "-m", "tmt_ops", "--help"], capture_output=True, text=True, cwd=REPO)
    assert listed.returncode == 0
    named = {line.split()[0] for line in listed.stdout.split("commands:")[1].splitlines() if line.strip()}
    assert named == set(FLAGS)
    for command, flags in FLAGS.items():
        done = subprocess.run([sys.executable, "-m", "tmt_ops", command, "--help"], capture_output=True, text=True,
                              cwd=REPO, env={**os.environ, "COLUMNS": "200"})
        assert done.returncode == 0, (command, done.stderr)
        assert flags <= offered(done.stdout), (command, flags - offered(done.stdout))


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_script_is_its_command_under_the_specs_name(script):
    """The same options and help as tmt-ops COMMAND; only the name in its usage line differs."""
    env = {**os.environ, "COLUMNS": "200"}
    own = subprocess.run([sys.executable, str(REPO / script), "--help"], capture_output=True, text=True, env=env)
    same = subprocess.run([sys.executable, "-m", "tmt_ops", SCRIPTS[script], "--help"], capture_output=True,
                          text=True, cwd=REPO, env=env)
    assert own.returncode == same.returncode == 0
    assert own.stdout.startswith(f"usage: {script}")
    assert own.stdout.split("\n\n", 1)[1] == same.stdout.split("\n\n", 1)[1]  # everything after the usage


# -- a way of running is one row ---------------------------------------------------------------------------------
@pytest.fixture
def fake_row(monkeypatch, tmp_path):
    """The fake backend registered as a way of running (only for this test), and a registry on free ports."""
    monkeypatch.setattr(modes, "_WAYS", {**modes._WAYS})
    modes.register(ROW)
    RowBackend.ran.clear()
    yield write_registry(tmp_path, drop=("postgres", "redis", "kafka", "prometheus", "grafana", "jaeger", "vault"))
    RowBackend.ran.clear()


def test_a_backend_added_by_one_row_is_a_mode_everywhere(fake_row, capsys):
    from tmt_ops.cli.main import main
    from tmt_ops.registry import load_registry
    from tmt_ops.systemd import units
    config = str(fake_row)
    assert main(["restart", "--mode", "fake", "--config", config, "-q"]) == 0
    assert sorted(RowBackend.ran) == sorted(CORE)
    assert "4 service(s) running and healthy" in capsys.readouterr().err

    assert main(["status", "--config", config, "--json"]) == 0  # --mode auto finds it running
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] == "fake" and {s["backend"] for s in doc["services"]} == {"fake"}
    assert main(["logs", "--config", config, "orchestrator"]) == 0
    assert capsys.readouterr().out == "orchestrator | runs new\n"
    assert main(["stop", "--config", config, "--only", "dashboard"]) == 0 and "dashboard" not in RowBackend.ran
    assert main(["start", "--config", config]) == 0 and "dashboard" in RowBackend.ran
    capsys.readouterr()
    main(["health", "--config", config, "--json"])  # (its exit code counts the host's load too)
    report = json.loads(capsys.readouterr().out)
    assert report["deployment_mode"] == "fake"
    assert {name: s["status"] for name, s in report["services"].items()} == dict.fromkeys(CORE, "healthy")

    assert main(["restart", "--help"]) == 0 and "fake" in capsys.readouterr().out  # a --mode word, with its help
    data = yaml.safe_load(fake_row.read_text())
    data["project"]["default_mode"] = "fake"  # the registry takes it as a mode and as a service's own backend
    data["services"]["dashboard"]["backend"] = "fake"
    fake_row.write_text(yaml.safe_dump(data))
    registry = load_registry(fake_row)
    assert registry.default_mode == "fake" and registry.service("dashboard").backend == "fake"
    made = units(registry, "fake", [], fake_row.parent, user=("tmt", "tmt"))
    assert "docker.service" not in made["tmt-ops.service"]  # it needs no engine, as its row says


def test_the_row_is_gone_when_unregistered(tmp_path, capsys):
    """(The fixture's registration does not leak: without it, the word is a usage error.)"""
    from tmt_ops.cli.main import main
    assert "fake" not in modes.modes()
    assert main(["status", "--mode", "fake", "--config", str(write_registry(tmp_path))]) == 2
    assert "invalid choice: 'fake'" in capsys.readouterr().err



def test_stop_timeout_overrides_the_registrys_grace_for_one_run(registry_file):
    """-t/--timeout (compose's stop -t): a service that ignores SIGTERM, with a 60 s stop_grace, is stopped by
    SIGKILL (--force) one second after its stop signal; without --force, it is left running and named."""
    def slow(data):
        data["services"]["dashboard"]["stop_grace"] = 60
    cfg = registry_file(knobs={"dashboard": ["--ignore-sigterm"]}, edit=slow,
                        drop=("postgres", "redis", "kafka", "prometheus", "grafana", "jaeger", "vault"))
    assert ops(cfg, "start", "-q").returncode == 0
    pid = recorded_pids(cfg)["dashboard"]
    held = ops(cfg, "stop", "--only", "dashboard", "-t", "1", timeout=50)
    assert held.returncode == 1 and "dashboard" in held.stderr.splitlines()[-1], held.stderr
    assert recorded_pids(cfg).get("dashboard") == pid  # still running, still on record
    began = time.monotonic()
    killed = ops(cfg, "stop", "--only", "dashboard", "--timeout", "1", "--force", timeout=50)
    assert killed.returncode == 0, killed.stderr
    assert time.monotonic() - began < 30  # well inside the registry's 60 s: the grace was the one given
    assert "dashboard" not in recorded_pids(cfg)
    assert ops(cfg, "stop", "-q").returncode == 0


# -- a command the toolkit prints runs where it is printed -------------------------------------------------------
@pytest.mark.parametrize("style", ["script", "module"])
def test_the_advised_commands_run_where_they_are_printed(registry_file, tmp_path, style):
    """system-health.py run from another directory (a checkout's script by its path, or python -m tmt_ops) advises
    reading a down service's output and restarting it: each command, run as printed there, does that."""
    cfg = registry_file(drop=("postgres", "redis", "kafka", "prometheus", "grafana", "jaeger", "vault"))
    assert ops(cfg, "start", "-q").returncode == 0
    assert ops(cfg, "stop", "--only", "dashboard", "-q").returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    health = {"script": [sys.executable, str(REPO / "system-health.py")],
              "module": [sys.executable, "-m", "tmt_ops", "health"]}[style]
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run([*health, "--config", os.path.relpath(cfg, elsewhere), "--json"], capture_output=True,
                          text=True, cwd=elsewhere, env=env, timeout=120)
    logs, restart = advised(json.loads(done.stdout), "dashboard")
    assert {"script": f"{REPO / 'docker-restart.py'} logs", "module": "-m tmt_ops logs"}[style] in logs, logs
    assert {"script": f"{REPO / 'restart-trading-system.py'} ", "module": "-m tmt_ops restart"}[style] in restart
    read = subprocess.run(shlex.split(logs), capture_output=True, text=True, cwd=elsewhere, env=env, timeout=120)
    assert read.returncode == 0 and "dashboard" in read.stdout, (logs, read.stderr)
    again = subprocess.run(shlex.split(restart), capture_output=True, text=True, cwd=elsewhere, env=env, timeout=120)
    assert again.returncode == 0 and "dashboard" in recorded_pids(cfg), (restart, again.stderr)
    assert ops(cfg, "stop", "-q").returncode == 0
