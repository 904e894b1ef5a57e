"""Secrets in command lines (issue 16): masked wherever the toolkit shows a command line, by rule whatever the
environment holds (a stop from cron runs without the variable that held the secret), by the positions the
registry and the run records know, and for foreign processes too. Real processes and real output."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from native_support import port_of
from support import REPO, run_script, wait_for
from tmt_ops.redact import argv_secrets, command_line, mask_argv

KEY, TOKEN = "sk-live-key-5f1e9c3a", "tok-in-url-7d2b4e81"
ALONE = ["execution-engine", "dashboard"]


# -- the rules ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, shown", [
    (["svc", "--api-key", "s3cr3t-1"], "svc --api-key ***"),
    (["svc", "--api-key=s3cr3t-1"], "svc --api-key=***"),
    (["svc", "--client-secret", "s3cr3t-1", "--port", "80"], "svc --client-secret *** --port 80"),
    (["svc", "-password", "s3cr3t-1"], "svc -password ***"),
    (["env", "OANDA_API_KEY=s3cr3t-1", "svc"], "env OANDA_API_KEY=*** svc"),
    (["java", "-Djavax.net.ssl.keyStorePassword=s3cr3t-1", "Main"], "java -Djavax.net.ssl.keyStorePassword=*** Main"),
    (["svc", "--db", "postgresql://trader:s3cr3t-1@db/x"], "svc --db postgresql://trader:***@db/x"),
    (["svc", "-p", "8080", "-k", "value"], "svc -p 8080 -k value"),  # a one-letter option is not secret by its name
    (["svc", "--no-password", "--port", "80"], "svc --no-password --port 80"),  # a flag: the next word is an option
    (["svc", "--token"], "svc --token"),
])
def test_a_command_line_is_masked_by_rule(argv, shown):
    assert command_line(argv) == shown
    assert "s3cr3t-1" not in " ".join(mask_argv(argv))
    assert ("s3cr3t-1" in argv_secrets(argv)) == ("s3cr3t-1" in " ".join(argv))


def test_known_positions_are_masked_and_a_command_line_is_one_line():
    assert command_line(["svc", "--requires", "http://h/health?k=abc", "-c", "a\nb"], {2}) == \
        "svc --requires *** -c a b"
    assert argv_secrets(["svc", "--requires", "http://h/health?k=abc"], {2}) == {"http://h/health?k=abc"}


def test_the_registry_knows_which_arguments_hold_a_secret_whether_or_not_it_is_set(tmp_path):
    from tmt_ops.registry import load_registry
    path = tmp_path / "services.yaml"
    path.write_text('services:\n  a: {group: core, port: 9100, command: ["python", "-m", "x", "--api-key", '
                    '"${TMT_TEST_KEY}", "--plain", "${HOME}", "--db", "postgresql://u:${DB_PASS}@h/x", '
                    '"--requires", "http://h/health?k=${OANDA_TOKEN:-none}", "$${{API_KEY}}"]}\n')
    for environ in ({}, {"TMT_TEST_KEY": KEY, "DB_PASS": "pw-pw-pw", "OANDA_TOKEN": TOKEN, "HOME": "/home/x"}):
        service = load_registry(path, environ=environ).services["a"]
        assert service.secret_args == (4, 8, 10)  # not $${API_KEY}: a literal text, no reference


def test_a_run_record_of_an_older_version_without_secret_args_still_loads(tmp_path):
    from tmt_ops.native import records
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "old.json").write_text(json.dumps(
        {"service": "old", "pid": 5, "pgid": 5, "sid": 5, "create_time": 1.0, "log_file": "o.log", "started_at": 2}))
    (tmp_path / "run" / "bad.json").write_text(json.dumps(
        {"service": "bad", "pid": 5, "pgid": 5, "sid": 5, "create_time": 1.0, "log_file": "o.log", "started_at": 2,
         "secret_args": [-1]}))
    found = records.read_all(tmp_path)
    assert found["old"].secret_args == () and "bad" not in found


# -- a survivor's command line, shown by a stop that runs without the variables -----------------------------------------
def _with_secrets(data: dict) -> None:
    orchestrator, analysis = data["services"]["orchestrator"], data["services"]["market-analysis"]
    orchestrator["command"] += ["--api-key", "${TMT_TEST_KEY}", "--ignore-sigterm"]  # by rule: its option's name
    analysis["command"] += ["--requires", "http://127.0.0.1:{port:orchestrator}/health?k=${TMT_TEST_TOKEN}",
                            "--ignore-sigterm"]  # by position only: --requires is no secret's name
    orchestrator["stop_grace"] = analysis["stop_grace"] = 0.5


def test_a_survivors_secrets_never_show_when_the_stop_runs_without_the_variables(registry_file, tmp_path):
    cfg = registry_file(drop=ALONE, edit=_with_secrets)
    started = run_script("restart-trading-system.py", "--config", str(cfg), "--skip-health-check",
                         env={"TMT_TEST_KEY": KEY, "TMT_TEST_TOKEN": TOKEN}, timeout=120)
    assert started.returncode == 0, started.stderr
    # as cron or systemd would run them: neither variable set (run_script passes os.environ, which has neither)
    shown = [run_script("stop-trading-system.py", "--config", str(cfg), timeout=60),  # market-analysis survives
             run_script("stop-trading-system.py", "--config", str(cfg), "--only", "orchestrator", "--no-deps",
                        timeout=60),  # orchestrator survives
             run_script("system-health.py", "--config", str(cfg), "--json", timeout=60),
             run_script("stop-trading-system.py", "--config", str(cfg), "--force", timeout=60)]
    assert [p.returncode for p in shown][:2] == [1, 1] and shown[3].returncode == 0, shown[3].stderr
    assert "--requires *** --ignore-sigterm" in shown[0].stderr  # the recorded position
    assert "--api-key *** --ignore-sigterm" in shown[1].stderr  # the rule
    written = [p.read_text(errors="replace") for p in (tmp_path / "state").rglob("*") if p.is_file()]
    written.append((tmp_path / "logs" / "tmt-ops.log").read_text())
    for text in [p.stdout + p.stderr for p in shown] + written:
        assert KEY not in text and TOKEN not in text


# -- foreign processes -------------------------------------------------------------------------------------------------
LISTEN = "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); " \
         "time.sleep(120)"


def test_a_foreign_port_holders_secret_is_masked_in_every_health_output(registry_file):
    cfg = registry_file(drop=ALONE)
    port = port_of(cfg, "orchestrator")
    stranger = subprocess.Popen([sys.executable, "-c", LISTEN, str(port), "--password", "hunter2xyz"])
    try:
        assert wait_for(lambda: _answers(port), 10)
        outputs = [run_script("system-health.py", "--config", str(cfg), "--mode", "native", *fmt, timeout=60)
                   for fmt in ([], ["--json"], ["--format", "health+json"])]
        stop = run_script("stop-trading-system.py", "--config", str(cfg), timeout=60)
    finally:
        stranger.kill()
        stranger.wait()
    holders = [h for s in json.loads(outputs[1].stdout)["services"].values() for h in s["port_holders"]]
    assert [h["cmdline"] for h in holders if h["pid"] == stranger.pid] == \
        [f"{sys.executable} -c {' '.join(LISTEN.split())} {port} --password ***"]
    assert "--password ***" in outputs[0].stdout + outputs[0].stderr
    for proc in [*outputs, stop]:
        assert "hunter2xyz" not in proc.stdout + proc.stderr
    assert "hunter2xyz" not in (Path(cfg).parent / "logs" / "tmt-ops.log").read_text()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_the_run_lock_names_its_holder_with_secrets_masked(tmp_path):
    from tmt_ops.lock import holder
    script = tmp_path / "hold.py"
    script.write_text("import sys, time\nfrom pathlib import Path\nfrom tmt_ops.lock import run_lock\n"
                      "with run_lock(Path(sys.argv[1]), print):\n    print('held', flush=True)\n    time.sleep(60)\n")
    other = subprocess.Popen([sys.executable, str(script), str(tmp_path), "--token", "lock-secret-42"],
                             stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    try:
        assert other.stdout.readline() == "held\n"
        told = holder(tmp_path)
    finally:
        other.kill()
        other.wait()
    assert told is not None and "--token ***" in told and "lock-secret-42" not in told


# -- what the registry itself holds: plan lines and the start's own lines -----------------------------------------------
def test_a_secret_written_into_a_registry_command_never_shows(registry_file, tmp_path):
    literal = "sk-literal-0a9b8c7d"

    def edit(data):
        data["services"]["orchestrator"]["command"] += ["--api-key", literal]
    cfg = registry_file(drop=["market-analysis", *ALONE], edit=edit)
    plan = run_script("restart-trading-system.py", "--config", str(cfg), "--dry-run", timeout=60)
    done = run_script("restart-trading-system.py", "--config", str(cfg), "--skip-health-check", timeout=120)
    stopped = run_script("stop-trading-system.py", "--config", str(cfg), timeout=60)
    assert (plan.returncode, done.returncode, stopped.returncode) == (0, 0, 0), done.stderr
    assert "--api-key ***" in plan.stdout + plan.stderr
    for text in (plan.stdout + plan.stderr, done.stderr, stopped.stderr,
                 (tmp_path / "logs" / "tmt-ops.log").read_text()):
        assert literal not in text
