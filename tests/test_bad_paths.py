"""Every path the toolkit reads or writes may be missing, a directory, a FIFO, a character device or a symlink
(issue 16): it neither hangs on it nor replaces what is not a regular file of its own, and none of these is a
traceback. Real FIFOs (os.mkfifo), /dev/null, /dev/zero and symlinks; the scripts run as an operator runs them,
each under a timeout, so that a hang fails the test instead of the run.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support import REPO, run_script, write_registry

CORE_BUT_ORCHESTRATOR = ["market-analysis", "execution-engine", "dashboard"]
QUICK = 30  # seconds: everything here answers at once, or it hangs


def make(kind: str, path: Path) -> Path:
    """Something other than a regular file at `path`."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "dangling symlink":
        path.symlink_to(path.parent / "nowhere")
    elif kind == "symlink to /dev/zero":
        path.symlink_to("/dev/zero")
    else:
        raise ValueError(kind)
    return path


SOMETHING_ELSE = ["fifo", "directory", "dangling symlink", "symlink to /dev/zero"]
SHOWN = {"fifo": "a FIFO", "directory": "a directory", "dangling symlink": "a symlink",
         "symlink to /dev/zero": "a symlink"}


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def one_error(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def python(*args: str) -> subprocess.CompletedProcess:
    """`python ARGS` with this checkout's tmt_ops, e.g. a few lines of the library in a process of their own (a
    hang is then a TimeoutExpired, not a stuck test run)."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=QUICK, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, stdin=subprocess.DEVNULL)


# -- the registry ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("script, code", [("stop-trading-system.py", 2), ("system-health.py", 3)])
@pytest.mark.parametrize("kind, shown", [("fifo", "a FIFO"), ("/dev/zero", "a character device"),
                                         ("/dev/null", "a character device"), ("directory", "a directory")])
def test_a_registry_that_is_not_a_regular_file_is_one_line_at_once(tmp_path, script, code, kind, shown):
    path = Path(kind) if kind.startswith("/dev/") else make(kind, tmp_path / "services.yaml")
    for config in (["--config", str(path)], []):  # --config, and TMT_CONFIG
        proc = run_script(script, *config, env={"TMT_CONFIG": str(path)}, timeout=QUICK)
        assert proc.returncode == code
        assert one_error(proc) == (f"error: {path}: cannot read the registry: it is {shown}, not a regular file "
                                   "(is --config, or TMT_CONFIG, the right file?)")


def test_a_registry_read_through_a_symlink_stays_allowed(registry_file, tmp_path):
    cfg = registry_file(drop=CORE_BUT_ORCHESTRATOR)
    link = tmp_path / "link.yaml"
    link.symlink_to(cfg)
    proc = run_script("stop-trading-system.py", "--config", str(link), "--dry-run", timeout=QUICK)
    assert proc.returncode == 0, proc.stderr


# -- files of others the toolkit reads: the compose file, the docker CLI's configuration ---------------------------
@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink to /dev/zero"])
def test_a_compose_file_that_is_not_a_regular_file_is_a_configuration_error(tmp_path, kind):
    path = make(kind, tmp_path / "docker-compose.yml")
    done = python("-c", f"from tmt_ops.compose.stackfile import declared_services\n"
                  f"from tmt_ops.errors import ConfigError\n"
                  f"try:\n    declared_services(__import__('pathlib').Path({str(path)!r}))\n"
                  f"except ConfigError as exc:\n    print(exc)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"compose file {path}: it is {'a character device' if 'zero' in kind else SHOWN[kind]}, " \
                          "not a regular file\n"


@pytest.mark.parametrize("kind", ["fifo", "symlink to /dev/zero"])
def test_docker_cli_configuration_that_is_not_a_regular_file_never_hangs(tmp_path, kind):
    """config.json unreadable: as if no context was chosen (as when it is not JSON); a context's meta.json
    unreadable: a configuration error naming it."""
    make(kind, tmp_path / "config.json")
    meta = tmp_path / "contexts" / "meta" / hashlib.sha256(b"remote").hexdigest()
    meta.mkdir(parents=True)
    os.mkfifo(meta / "meta.json")
    code = f"""
from tmt_ops.engine import endpoint
from tmt_ops.errors import ConfigError
print(endpoint.resolve({{"DOCKER_CONFIG": {str(tmp_path)!r}}}).source)
try:
    endpoint.resolve({{"DOCKER_CONFIG": {str(tmp_path)!r}, "DOCKER_CONTEXT": "remote"}})
except ConfigError as exc:
    print(exc)
"""
    done = python("-c", code)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first == "default"
    assert second.startswith("docker context 'remote' (DOCKER_CONTEXT): ") and second.endswith(
        "meta.json is a FIFO, not a regular file")


# -- the toolkit log --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", SOMETHING_ELSE)
def test_a_toolkit_log_path_that_is_not_a_regular_file_is_one_warning_and_the_run_goes_on(registry_file, tmp_path, kind):
    cfg = registry_file(drop=CORE_BUT_ORCHESTRATOR)
    (tmp_path / "logs").mkdir()
    log = make(kind, tmp_path / "logs" / "tmt-ops.log")
    proc = run_script("stop-trading-system.py", "--config", str(cfg), timeout=QUICK)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "toolkit log" in line]
    assert warnings == [f"warning: the toolkit log is not kept ({log} is {SHOWN[kind]}, not a regular file: it is "
                        "left as it is (remove it, or choose another path)); the operation goes on without it"]
    assert not (tmp_path / "logs" / "nowhere").exists()  # a dangling symlink is not followed to make its target


def test_the_toolkit_log_and_its_rotated_files_are_private(tmp_path):
    """0600, also what an older version left 0644, in a log directory made 0700; a rotation moves only regular
    files, and a FIFO where a rotated file goes is one warning, then the log stops (no traceback per line)."""
    done = python("-c", f"""
import logging, os
from pathlib import Path
from tmt_ops.console import LOGGER
from tmt_ops.toolkitlog import open_toolkit_log
from tmt_ops.redact import Redactor
logs = Path({str(tmp_path)!r}) / "logs"
open_toolkit_log(logs, Redactor(), 1024, 2)
for n in range(40):
    LOGGER.info("line %d %s", n, "x" * 60)
os.unlink(logs / "tmt-ops.log.2")
os.mkfifo(logs / "tmt-ops.log.2")
for n in range(40):
    LOGGER.info("more %d %s", n, "x" * 60)
""")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    logs = tmp_path / "logs"
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("warning: the toolkit log stops here (")
    assert mode_of(logs) == 0o700
    assert {p.name: mode_of(p) for p in logs.iterdir() if p.is_file()} == \
        {"tmt-ops.log": 0o600, "tmt-ops.log.1": 0o600}
    assert stat.S_ISFIFO(os.lstat(logs / "tmt-ops.log.2").st_mode)  # left as it was

    older = tmp_path / "older"
    older.mkdir()
    for name in ("tmt-ops.log", "tmt-ops.log.1"):
        (older / name).write_text("from an older version\n")
        (older / name).chmod(0o644)
    done = python("-c", f"from tmt_ops.toolkitlog import open_toolkit_log\nfrom tmt_ops.redact import Redactor\n"
                  f"open_toolkit_log(__import__('pathlib').Path({str(older)!r}), Redactor(), 1 << 20, 3)\n")
    assert done.returncode == 0, done.stderr
    assert {p.name: mode_of(p) for p in older.iterdir()} == {"tmt-ops.log": 0o600, "tmt-ops.log.1": 0o600}
    assert mode_of(older) == 0o755  # a directory the toolkit did not make is left as it is


# -- each service's log ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dangling symlink", "directory", "fifo"])
def test_a_service_log_that_is_not_a_regular_file_is_found_before_anything_changes(registry_file, tmp_path, kind):
    cfg = registry_file(drop=CORE_BUT_ORCHESTRATOR)
    (tmp_path / "logs").mkdir()
    log = make(kind, tmp_path / "logs" / "orchestrator.log")
    proc = run_script("restart-trading-system.py", "--config", str(cfg), "--skip-health-check", timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"preflight: {log} is {SHOWN[kind]}, not a regular file: it is left as it is" in proc.stderr
    assert "nothing was stopped or started" in proc.stderr
    assert not (tmp_path / "logs" / "nowhere").exists()  # the output never went through the symlink


def test_a_fifo_as_a_service_log_fails_its_spawn_at_once(registry_file, tmp_path):
    """(Where it appears after the preflight looked: the spawn refuses it, and reading the failed service's last
    lines never opens it for good.)"""
    cfg = registry_file(drop=CORE_BUT_ORCHESTRATOR)
    (tmp_path / "logs").mkdir()
    os.mkfifo(tmp_path / "logs" / "orchestrator.log")
    done = python("-c", f"from tmt_ops.registry import load_registry\nfrom tmt_ops.native.spawn import prepare\n"
                  f"from tmt_ops.errors import OperationFailed\nr = load_registry({str(cfg)!r})\n"
                  f"try:\n    prepare(r, r.services['orchestrator'])\nexcept OperationFailed as exc:\n    print(exc)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"orchestrator: cannot write its log: {tmp_path / 'logs' / 'orchestrator.log'} is "
                                  "a FIFO, not a regular file")


def test_service_logs_are_private_and_their_directory_made_0700(registry_file, tmp_path):
    cfg = registry_file(drop=CORE_BUT_ORCHESTRATOR)
    proc = run_script("restart-trading-system.py", "--config", str(cfg), "--skip-health-check", timeout=60)
    assert proc.returncode == 0, proc.stderr
    logs = tmp_path / "logs"
    assert mode_of(logs) == 0o700
    assert {p.name: mode_of(p) for p in logs.iterdir()} == {"orchestrator.log": 0o600, "tmt-ops.log": 0o600}
    assert run_script("stop-trading-system.py", "--config", str(cfg), timeout=60).returncode == 0


@pytest.mark.parametrize("kind", SOMETHING_ELSE)
def test_a_rotation_moves_only_regular_files(tmp_path, kind):
    from tmt_ops.files import FileProblem
    from tmt_ops.native.spawn import rotate
    log = tmp_path / "svc.log"
    log.write_text("x" * 200)
    (tmp_path / "svc.log.1").write_text("older")
    odd = make(kind, tmp_path / "svc.log.2")
    with pytest.raises(FileProblem, match=f"{odd} is {SHOWN[kind]}, not a regular file"):
        rotate(log, max_bytes=100, backups=2)
    assert log.read_text() == "x" * 200 and (tmp_path / "svc.log.1").read_text() == "older"  # nothing moved
    assert os.path.lexists(odd) and not stat.S_ISREG(os.lstat(odd).st_mode)


def test_preflight_names_a_log_file_that_is_not_a_regular_file(tmp_path):
    from tmt_ops.preflight import writable
    fifo = make("fifo", tmp_path / "orchestrator.log")
    problem = writable(tmp_path, "log", "log_dir", [tmp_path / "dashboard.log", fifo])
    assert problem is not None and problem.exit_code == 2
    assert problem.text == f"{fifo} is a FIFO, not a regular file: it is left as it is (remove it, or choose another path)"


# -- the state directory ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, shown", [("fifo", "it is a FIFO, not a directory"),
                                         ("file", "it is a regular file, not a directory"),
                                         ("dangling symlink", "it is a symlink to a missing target, not a directory")])
def test_a_state_directory_that_is_not_one_is_named_by_the_preflight(registry_file, tmp_path, kind, shown):
    cfg = registry_file(drop=CORE_BUT_ORCHESTRATOR)
    state = tmp_path / "state"
    if kind == "file":
        state.write_text("not a directory")
    else:
        make(kind, state)
    for script in ("restart-trading-system.py", "quick-restart.py"):
        proc = run_script(script, "--config", str(cfg), timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert f"preflight: the state directory {state} is not writable ({shown}): fix it or set project.state_dir " \
               "in the registry" in proc.stderr
    stopped = run_script("stop-trading-system.py", "--config", str(cfg), timeout=60)
    assert stopped.returncode == 0 and "Traceback" not in stopped.stderr, stopped.stderr


# -- outputs -----------------------------------------------------------------------------------------------------------
OUTPUTS = ["fifo", "/dev/null", "directory", "dangling symlink"]


def _odd_output(tmp_path: Path, kind: str) -> Path:
    return Path(kind) if kind.startswith("/dev/") else make(kind, tmp_path / "out")


@pytest.mark.parametrize("kind", OUTPUTS)
@pytest.mark.parametrize("monitor", [[], ["--monitor", "--count", "1", "--interval", "0.1"]])
def test_system_health_output_that_is_not_a_regular_file_is_refused(registry_file, tmp_path, kind, monitor):
    cfg = registry_file(drop=CORE_BUT_ORCHESTRATOR)
    out = _odd_output(tmp_path, kind)
    proc = run_script("system-health.py", "--config", str(cfg), "--format", "prometheus", "--output", str(out),
                      *monitor, timeout=60)
    assert proc.returncode == 3
    assert one_error(proc).startswith(f"error: {out} is ")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("kind", OUTPUTS)
def test_init_to_a_path_that_is_not_a_regular_file_is_refused_never_written_through(tmp_path, kind):
    to = _odd_output(tmp_path, kind)
    proc = python("-m", "tmt_ops", "init", "--to", str(to), "--root", str(tmp_path / "root"), "--force")
    assert proc.returncode == 2
    assert one_error(proc).startswith(f"error: {to} is ") and "not a regular file: it is left as it is" in proc.stderr
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("kind", OUTPUTS)
def test_systemd_write_never_writes_through_what_is_not_a_regular_file(registry_file, tmp_path, kind):
    cfg = registry_file(drop=CORE_BUT_ORCHESTRATOR)
    units = tmp_path / "units"
    units.mkdir()
    target = units / "tmt-ops.service"
    if kind == "/dev/null":  # a masked unit is a symlink to /dev/null
        target.symlink_to("/dev/null")
    else:
        make(kind, target)
    proc = python("-m", "tmt_ops", "systemd", "--config", str(cfg), "--user", "root", "--write", str(units))
    assert proc.returncode == 2
    assert one_error(proc).startswith(f"error: cannot write the units in {units}: {target} is ")
    assert not (units / "nowhere").exists()


# -- health.disk_paths -------------------------------------------------------------------------------------------------
def _unsearchable() -> str | None:
    """A path whose stat is refused to this user (EACCES), where there is one: /proc/1/root unless privileged."""
    try:
        os.stat("/proc/1/root")
    except PermissionError:
        return "/proc/1/root/etc"
    except OSError:
        pass
    return None


def test_disk_paths_may_name_anything(tmp_path):
    odd = [make("fifo", tmp_path / "fifo"), Path("/dev/zero"), make("dangling symlink", tmp_path / "link"),
           make("directory", tmp_path / "dir"), tmp_path / "missing" / "deeper"]
    if _unsearchable():
        odd.append(Path(_unsearchable()))

    def edit(data):
        data["health"]["disk_paths"] = [str(p) for p in odd]
    cfg = write_registry(tmp_path, drop=CORE_BUT_ORCHESTRATOR, edit=edit)
    proc = run_script("system-health.py", "--config", str(cfg), "--json", timeout=60)
    assert proc.returncode in (0, 1, 2) and "Traceback" not in proc.stderr, proc.stderr
    measured = {p for d in yaml.safe_load(proc.stdout)["system_metrics"]["disks"] for p in (d["path"], *d["other_paths"])}
    assert {str(p) for p in odd} <= measured
