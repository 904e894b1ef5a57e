"""Every number in the registry and on the command line is finite and within a stated bound (issue 16): .inf,
.nan, a huge integer or a negative timeout is one line naming the key and its bound, never a hang, a crash or
a traceback."""

from __future__ import annotations

import json
import re

import pytest

from support import REPO, run_script
from tmt_ops.errors import ConfigError
from tmt_ops.registry import load_registry
from tmt_ops.registry.schema import BOUNDS

SERVICE = 'a: {group: core, port: PORT, command: ["python", "-c", "pass"]MORE}'

# key (as BOUNDS names it) -> (where it is written: the top of the registry, or its service's mapping, with VALUE
# for the number; what the line starts with)
PLACES = {
    "startup_timeout": ("defaults: {startup_timeout: VALUE}", "defaults: startup_timeout"),
    "stop_grace": ("defaults: {stop_grace: VALUE}", "defaults: stop_grace"),
    "probe_timeout": ("defaults: {probe_timeout: VALUE}", "defaults: probe_timeout"),
    "compose_timeout": ("defaults: {compose_timeout: VALUE}", "defaults: compose_timeout"),
    "log_max_bytes": ("defaults: {log_max_bytes: VALUE}", "defaults: log_max_bytes"),
    "log_backups": ("defaults: {log_backups: VALUE}", "defaults: log_backups"),
    "deadline": ("health: {deadline: VALUE}", "health: deadline"),
    "monitor_interval": ("health: {monitor_interval: VALUE}", "health: monitor_interval"),
    "state_change_rounds": ("health: {state_change_rounds: VALUE}", "health: state_change_rounds"),
    "cpu_percent": ("health: {thresholds: {cpu_percent: {warning: 0, critical: VALUE}}}",
                    "health.thresholds.cpu_percent: critical"),
    "memory_percent": ("health: {thresholds: {memory_percent: {warning: 0, critical: VALUE}}}",
                       "health.thresholds.memory_percent: critical"),
    "disk_percent": ("health: {thresholds: {disk_percent: {warning: 0, critical: VALUE}}}",
                     "health.thresholds.disk_percent: critical"),
    "load_per_cpu": ("health: {thresholds: {load_per_cpu: {warning: 0, critical: VALUE}}}",
                     "health.thresholds.load_per_cpu: critical"),
    "after_rounds": ("heal: {after_rounds: VALUE}", "heal: after_rounds"),
    "max_per_hour": ("heal: {max_per_hour: VALUE}", "heal: max_per_hour"),
    "backoff_seconds": ("heal: {backoff_seconds: VALUE, backoff_max_seconds: 86400}", "heal: backoff_seconds"),
    "backoff_max_seconds": ("heal: {backoff_seconds: 0.1, backoff_max_seconds: VALUE}", "heal: backoff_max_seconds"),
    "service port": ("PORT", "service 'a': port"),
    "service startup_timeout": (", startup_timeout: VALUE", "service 'a': startup_timeout"),
    "service stop_grace": (", stop_grace: VALUE", "service 'a': stop_grace"),
    "service health.timeout": (", health: {type: tcp, timeout: VALUE}", "service 'a': health: timeout"),
    "service pre_stop.timeout": (", pre_stop: {path: /stop, timeout: VALUE}", "service 'a': pre_stop: timeout"),
    "service swarm.replicas": (", swarm: {replicas: VALUE}", "service 'a': swarm: replicas"),
}


def bound_of(place: str):
    return BOUNDS[place.split(" ")[-1].split(".")[-1]]


def registry(tmp_path, place: str, value: str) -> str:
    """A registry with `value` written at the place."""
    written, _ = PLACES[place]
    top, port, more = "", "9100", ""
    if place == "service port":
        port = value
    elif place.startswith("service "):
        more = written.replace("VALUE", value)
    else:
        top = written.replace("VALUE", value)
    path = tmp_path / "services.yaml"
    path.write_text(f"{top}\nservices:\n  {SERVICE.replace('PORT', port).replace('MORE', more)}\n")
    return str(path)


def refusal(path: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    line = str(info.value)
    assert "\n" not in line and line.startswith(f"{path}: ") and info.value.exit_code == 2
    return line[len(path) + 2:]


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf", "99999999999999999999999", "-1"])
def test_a_number_beyond_its_bound_is_one_line_naming_key_and_bound(tmp_path, place, value):
    bound, where = bound_of(place), PLACES[place][1]
    line = refusal(registry(tmp_path, place, value))
    if bound.integer and "." in value:  # not an integer at all: its type check says so
        assert line == f"{where}: expected an integer, got number {value.replace('.', '')}"
    else:
        assert line == f"{where}: must be {bound.text}, got {value}"


@pytest.mark.parametrize("place", PLACES)
def test_each_bound_itself_is_accepted(tmp_path, place):
    bound = bound_of(place)
    for limit in (bound.least, bound.most):
        load_registry(registry(tmp_path, place, str(int(limit)) if bound.integer else repr(float(limit))))


def test_an_unreadable_number_in_yaml_is_one_line_not_a_traceback(tmp_path):
    """PyYAML resolves these scalars as an int and a date, which Python cannot build (ValueError)."""
    assert refusal(registry(tmp_path, "log_backups", "9" * 5000)) == \
        "a value that cannot be read (Exceeds the limit (4300 digits) for integer string conversion)"
    path = tmp_path / "services.yaml"
    path.write_text("project: {name: 2001-13-45}\n" + path.read_text())
    assert refusal(str(path)) == "a value that cannot be read (month must be in 1..12)"


def test_the_readme_lists_every_bound_as_the_loader_checks_it():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^ *\| `([a-z_]+)`[^|]*\| (an integer [^|]+?|a finite number [^|]+?) \|$", readme, re.M))
    assert rows == {key: bound.text for key, bound in BOUNDS.items()}


# -- the command line ---------------------------------------------------------------------------------------------
SAFE = 'services:\n  cache: {group: infrastructure, port: 9, critical: false, health: {type: tcp}}\n'


@pytest.mark.parametrize("args, message", [
    (["--monitor", "--interval", "nan"], "argument --interval: must be a finite number from 0.05 to 86400 (seconds), got nan"),
    (["--monitor", "--interval", "inf"], "argument --interval: must be a finite number from 0.05 to 86400 (seconds), got inf"),
    (["--monitor", "--interval", "1e400"],
     "argument --interval: must be a finite number from 0.05 to 86400 (seconds), got 1e400"),
    (["-t", "-1"], "argument -t/--timeout: must be a finite number from 0.01 to 86400 (seconds), got -1"),
    (["-t", "nan"], "argument -t/--timeout: must be a finite number from 0.01 to 86400 (seconds), got nan"),
    (["--monitor", "--count", "99999999999999999999"],
     "argument --count: must be an integer from 1 to 1000000, got 99999999999999999999"),
])
def test_system_health_numbers_are_bounded_one_line_exit_3(tmp_path, args, message):
    path = tmp_path / "services.yaml"
    path.write_text(SAFE)
    proc = run_script("system-health.py", "--config", str(path), *args, timeout=30)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert proc.stderr == f"error: system-health.py: {message} (see --help)\n"


@pytest.mark.parametrize("tail", ["99999999999999999999", "-1", "nan", "9" * 5000])
def test_docker_restart_tail_is_bounded_one_line_exit_2(tmp_path, tail):
    path = tmp_path / "services.yaml"
    path.write_text(SAFE)
    proc = run_script("docker-restart.py", "--config", str(path), "logs", "--tail", tail, timeout=30)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: docker-restart.py: argument --tail: must be an integer from 0 to 1000000 "
                                  "(lines), got ")


def test_an_argument_that_holds_arguments_is_one_line_when_it_cannot_be_split(tmp_path):
    """tmt-ops systemd --monitor-args with an unclosed quote (at a7b405d: shlex's ValueError traceback)."""
    import os
    import subprocess
    import sys
    path = tmp_path / "services.yaml"
    path.write_text(SAFE)
    proc = subprocess.run([sys.executable, "-m", "tmt_ops", "systemd", "--config", str(path), "--monitor-args", '"'],
                          capture_output=True, text=True, timeout=30, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: ") and proc.stderr.endswith(  # the command named as it was invoked
        "-m tmt_ops systemd: argument --monitor-args: No closing quotation: '\"' (see --help)\n")


# -- numbers read back from the state directory ---------------------------------------------------------------------
RECORD = {"service": "orchestrator", "pid": 4_000_000, "pgid": 4_000_000, "sid": 4_000_000, "create_time": 1.0,
          "log_file": "x.log", "started_at": 1.0}


@pytest.mark.parametrize("field, value", [("started_at", 1e300), ("started_at", -1e300), ("create_time", 1e300)])
def test_a_run_record_number_its_readers_cannot_use_is_damage_not_a_traceback(registry_file, field, value):
    """A record naming a time the clock cannot say (time.localtime overflows past the year 9999) is unreadable:
    the stop carries on without it (at a7b405d: OverflowError in discovery, a traceback on every stop)."""
    from native_support import state_dir, stop
    from tmt_ops.native import records
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"])
    folder = state_dir(cfg) / "run"
    folder.mkdir(parents=True)
    (folder / "orchestrator.json").write_text(json.dumps({**RECORD, field: value}))
    assert records.read_all(state_dir(cfg)) == {}
    done = stop(cfg)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("marker", [{"at": 5.0, "pid": -5}, {"at": 5.0, "pid": 1 << 40}])
def test_a_stop_marker_number_out_of_range_reads_as_an_unreadable_marker(tmp_path, marker):
    from tmt_ops import stopped
    folder = tmp_path / "stopped"
    folder.mkdir()
    (folder / "orchestrator.json").write_text(json.dumps({"service": "orchestrator", **marker}))
    found = stopped.read(tmp_path)["orchestrator"]
    assert (found.pid, found.describe()) == (0, "stopped on purpose (its marker is unreadable)")
