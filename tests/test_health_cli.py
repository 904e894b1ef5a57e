"""system-health.py end to end: real infrastructure, the simulated stack on free ports, the real script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

import realservers as rs
from support import REPO, run_script
from tmt_ops import __version__
from tmt_ops.states import Health

SCHEMA = json.loads((REPO / "tmt_ops" / "health" / "schema.json").read_text())
NAGIOS = re.compile(r"^SYSTEM-HEALTH (OK|WARNING|CRITICAL) - [^|\n]+ \| "
                    r"('[^'=]+'=(U|-?\d+(\.\d+)?)(s|%)?(;(-?\d+(\.\d+)?)?){0,4}( |$))+$")
PROM_SAMPLE = re.compile(r'^tmt_health_[a-z_]+(\{([a-z_]+="([^"\\\n]|\\.)*",?)*\})? -?\d+(\.\d+)?(e-?\d+)?$')


def health(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return run_script("system-health.py", *args, env=env, timeout=timeout)


def as_json(proc: subprocess.CompletedProcess) -> dict:
    document = json.loads(proc.stdout)
    jsonschema.validate(document, SCHEMA)
    return document


def checks(document: dict) -> dict:
    return {**document["services"], **document["infrastructure"]}


# -- all healthy ---------------------------------------------------------------------------------------------------
def test_all_healthy_is_exit_0_with_valid_json(healthy, infra):
    proc = health("--config", str(healthy.path), "--mode", "native", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    document = as_json(proc)
    assert document["overall_status"] == "healthy" and document["critical_issues_count"] == 0
    assert set(document["services"]) == {"orchestrator", "market-analysis", "execution-engine", "dashboard"}
    assert set(document["infrastructure"]) == {"postgres", "redis", "kafka"} - set(infra.missing)
    for name, check in checks(document).items():
        assert check["status"] == "healthy" and check["port_open"] is True, (name, check)
        assert check["response_time_ms"] is not None
    assert document["services"]["execution-engine"]["details"]["status"] == "running"
    assert document["services"]["orchestrator"]["details"]["system_health"] == "healthy"
    assert document["issues"] == [] and document["recommendations"] == []
    disks = document["system_metrics"]["disks"]  # a file system once, with the other paths checked on it
    assert {p for d in disks for p in (d["path"], *d["other_paths"])} >= {"/", str(healthy.registry.log_dir)}


def test_all_healthy_text_is_a_table_without_colour_when_not_a_tty(healthy):
    proc = health("--config", str(healthy.path), "--mode", "native")
    assert proc.returncode == 0 and proc.stderr == ""
    assert "TMT system health: HEALTHY" in proc.stdout and "\x1b[" not in proc.stdout
    for name in healthy.registry.services:
        assert re.search(rf"^{re.escape(name)}\s+\S+\s+(yes|no)\s+healthy\s", proc.stdout, re.M), name


def test_the_spec_ci_snippet_works(healthy, tmp_path):
    snippet = """
python system-health.py
if [ $? -eq 0 ]; then
    echo "System is healthy"
else
    echo "System has issues"
    python system-health.py --json
    exit 1
fi
"""
    env = {**os.environ, "TMT_CONFIG": str(healthy.path), "NO_COLOR": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    ok = subprocess.run(["bash", "-c", snippet], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "System is healthy" in ok.stdout
    broken = healthy.variant("broken.yaml", lambda d: d["health"]["thresholds"].update(
        memory_percent={"warning": 0.001, "critical": 0.002}))
    bad = subprocess.run(["bash", "-c", snippet], cwd=REPO, env={**env, "TMT_CONFIG": str(broken)},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "System has issues" in bad.stdout
    assert '"overall_status": "critical"' in bad.stdout


# -- formats -------------------------------------------------------------------------------------------------------
def test_nagios_is_one_plugin_line_with_perfdata(healthy):
    proc = health("--config", str(healthy.path), "--mode", "native", "--format", "nagios")
    assert proc.returncode == 0
    line = proc.stdout.rstrip("\n")
    assert "\n" not in line and NAGIOS.match(line), line
    assert line.startswith("SYSTEM-HEALTH OK - ")
    assert "'orchestrator_time'=" in line and re.search(r"'disk_/'=\d+(\.\d+)?%;101;101;0;100", line)


def test_prometheus_textfile_syntax(healthy):
    proc = health("--config", str(healthy.path), "--mode", "native", "--format", "prometheus")
    assert proc.returncode == 0
    families = set()
    for line in proc.stdout.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            families.add(line.split()[2])
            continue
        assert PROM_SAMPLE.match(line), line
        assert line.split("{")[0].split(" ")[0] in families, line
    assert 'tmt_health_check_up{service="orchestrator",group="core",critical="true"} 1' in proc.stdout
    assert "tmt_health_overall_severity{mode=\"native\"} 0" in proc.stdout
    assert not any(re.match(r"^up[ {]", l) for l in proc.stdout.splitlines())


def test_output_file_is_written_atomically_and_stdout_stays_empty(healthy, tmp_path):
    target = tmp_path / "out" / "tmt.prom"
    target.parent.mkdir()
    target.write_text("old\n")
    old_inode = target.stat().st_ino
    proc = health("--config", str(healthy.path), "--mode", "native", "--format", "prometheus", "--output", str(target))
    assert proc.returncode == 0 and proc.stdout == ""
    assert target.read_text().startswith("# HELP tmt_health_")
    assert target.stat().st_ino != old_inode  # replaced by rename, not rewritten in place
    assert [p.name for p in target.parent.iterdir()] == ["tmt.prom"]  # no temp file left
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_output_to_a_missing_directory_is_exit_3(healthy, tmp_path):
    missing = tmp_path / "no" / "x.json"
    proc = health("--config", str(healthy.path), "--mode", "native", "--json", "--output", str(missing))
    assert proc.returncode == 3 and proc.stdout == ""
    assert proc.stderr.startswith("error: cannot write") and "Traceback" not in proc.stderr


# -- the check itself cannot run: 3 --------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["--interval", "0", "--monitor"], ["--json", "--format", "nagios"],
                                  ["--mode", "kubernetes"], ["--interval", "5"], ["--bogus"]])
def test_bad_arguments_are_exit_3(args, healthy):
    proc = health("--config", str(healthy.path), *args)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    # a monitoring system reads stdout only: asked for the plugin line, it gets one saying why
    expected = f"SYSTEM-HEALTH UNKNOWN - {proc.stderr[len('error: '):]}" if "nagios" in args else ""
    assert proc.stdout == expected


def test_bad_registry_is_exit_3(tmp_path):
    bad = tmp_path / "services.yaml"
    bad.write_text("services: [\n")
    proc = health("--config", str(bad), "--json")
    assert proc.returncode == 3 and proc.stdout == ""
    assert "invalid YAML" in proc.stderr and "Traceback" not in proc.stderr
    missing = health("--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 3 and "registry not found" in missing.stderr


# -- faults --------------------------------------------------------------------------------------------------------
def test_critical_service_down_is_exit_2_with_its_restart_and_log(stack):
    s = stack()
    s.wait()
    s.procs["orchestrator"].stop()
    proc = health("--config", str(s.path), "--mode", "native", "--json")
    assert proc.returncode == 2, proc.stderr
    document = as_json(proc)
    orch = document["services"]["orchestrator"]
    assert orch["status"] == "unhealthy" and orch["severity"] == "critical" and orch["port_open"] is False
    assert document["services"]["market-analysis"]["status"] == "healthy"
    assert document["critical_issues_count"] == 1
    steps = [st["command"] for f in document["findings"] if f["subject"] == "orchestrator" for st in f["steps"]]
    read, again = steps  # run as this checkout's script: each printed command is that checkout's, and runs here
    assert again.endswith(f"/restart-trading-system.py --config {s.path} --mode native --only orchestrator"), again
    assert read.endswith(f"/docker-restart.py logs --config {s.path} --mode native orchestrator --tail 100"), read
    shown = subprocess.run(["sh", "-c", read], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert shown.returncode == 0 and "orchestrator" in shown.stdout, shown.stderr
    assert any("orchestrator" in r and "--only orchestrator" in r for r in document["recommendations"])


def test_non_critical_service_down_is_exit_1(stack):
    s = stack(start=("orchestrator", "market-analysis", "execution-engine"))
    s.wait()
    proc = health("--config", str(s.path), "--mode", "native", "--json")
    assert proc.returncode == 1, proc.stdout
    document = as_json(proc)
    assert document["overall_status"] == "warning"
    assert document["services"]["dashboard"]["severity"] == "warning"
    assert document["critical_issues_count"] == 0


def test_degraded_body_is_a_warning(stack):
    s = stack(knobs={"market-analysis": ["--degraded"]})
    s.wait(["orchestrator"])
    s.wait(["market-analysis"], status=Health.DEGRADED)
    proc = health("--config", str(s.path), "--mode", "native", "--json")
    document = as_json(proc)
    ma = document["services"]["market-analysis"]
    assert ma["status"] == "degraded" and ma["http_status"] == 200 and ma["details"]["status"] == "degraded"
    assert proc.returncode == 1


def test_hanging_health_endpoint_is_bounded_by_its_timeout(stack):
    def edit(data):
        data["services"]["dashboard"]["health"]["timeout"] = 1
        data["health"]["deadline"] = 10
    s = stack(knobs={"dashboard": ["--hang-health"]}, edit=edit)
    s.wait(["orchestrator", "market-analysis", "execution-engine"])
    s.wait_listening("dashboard")
    started = time.monotonic()
    proc = health("--config", str(s.path), "--mode", "native", "--json")
    elapsed = time.monotonic() - started
    document = as_json(proc)
    dash = document["services"]["dashboard"]
    assert dash["status"] == "timeout" and dash["port_open"] is True and "1s" in dash["error"]
    assert proc.returncode == 1
    assert elapsed < 4, elapsed  # one probe timeout plus interpreter start (a busy machine), not the 10 s deadline


def test_port_held_by_a_foreign_process_is_named(stack, tmp_path):
    s = stack(start=("orchestrator", "market-analysis", "execution-engine"))
    port = s.port("dashboard")
    foreign = rs.Proc([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], tmp_path / "foreign.log",
                      cwd=tmp_path)
    try:
        rs.wait_listening(foreign, port)
        s.wait()
        proc = health("--config", str(s.path), "--mode", "native", "--json")
    finally:
        foreign.stop()
    document = as_json(proc)
    dash = document["services"]["dashboard"]
    assert dash["status"] == "unhealthy" and dash["http_status"] == 404
    holders = dash["port_holders"]
    assert [h["pid"] for h in holders] == [foreign.pid] and holders[0]["ours"] is False
    assert "http.server" in holders[0]["cmdline"]
    finding = [f for f in document["findings"] if f"held by pid {foreign.pid}" in f["message"]]
    assert finding and finding[0]["steps"][0]["command"] == f"ps -o pid,user,etime,args -p {foreign.pid}"


def test_own_service_holding_its_port_is_not_called_foreign(stack):
    """The dashboard's listener is a grandchild of its wrapper command: still ours."""
    def edit(data):
        data["services"]["dashboard"]["health"]["timeout"] = 0.5
    s = stack(knobs={"dashboard": ["--hang-health"]}, edit=edit)
    s.wait(["orchestrator", "market-analysis", "execution-engine"])
    s.wait_listening("dashboard")
    document = as_json(health("--config", str(s.path), "--mode", "native", "--json"))
    dash = document["services"]["dashboard"]
    assert dash["status"] == "timeout"
    assert dash["port_holders"] and all(h["ours"] is True for h in dash["port_holders"]), dash["port_holders"]
    assert dash["port_holders"][0]["pid"] != s.procs["dashboard"].pid  # the listener is not the wrapper itself
    assert not any("held by pid" in f["message"] for f in document["findings"])


def test_disk_and_memory_thresholds(healthy):
    disk = healthy.variant("disk.yaml", lambda d: d["health"]["thresholds"].update(
        disk_percent={"warning": 0.001, "critical": 100}))
    proc = health("--config", str(disk), "--mode", "native", "--json")
    document = as_json(proc)
    assert proc.returncode == 1 and document["system_metrics"]["severity"]["disk_percent"] == "warning"
    assert any(f["subject"] == "disk /" and f["steps"][0]["command"].startswith("du -xh") for f in document["findings"])
    memory = healthy.variant("memory.yaml", lambda d: d["health"]["thresholds"].update(
        memory_percent={"warning": 0.001, "critical": 0.002}))
    proc = health("--config", str(memory), "--mode", "native", "--json")
    document = as_json(proc)
    assert proc.returncode == 2 and document["system_metrics"]["severity"]["memory_percent"] == "critical"
    assert any(f["subject"] == "memory" and f["severity"] == "critical" for f in document["findings"])


# -- secrets -------------------------------------------------------------------------------------------------------
def test_a_secret_in_database_url_is_absent_from_every_output(stack, tmp_path):
    password = "S3cretPassw0rd-xyz"
    url = f"postgresql://trader:{password}@127.0.0.1:5432/trading_system"
    s = stack(start=("orchestrator", "market-analysis", "execution-engine"), env={"DATABASE_URL": "${DATABASE_URL}"})
    port = s.port("dashboard")
    # a foreign process on the dashboard's port whose command line carries the URL: its holder line is printed
    foreign = rs.Proc([sys.executable, "-c", "import sys, http.server; http.server.test(port=int(sys.argv[1]), "
                                             "bind='127.0.0.1')", str(port), url], tmp_path / "foreign.log")
    env = {"DATABASE_URL": url}
    try:
        rs.wait_listening(foreign, port)
        s.wait()
        outputs = []
        for args in (["--json"], [], ["--format", "nagios"], ["--format", "prometheus"],
                     ["--monitor", "--count", "1", "--json"], ["--monitor", "--count", "1"]):
            proc = health("--config", str(s.path), "--mode", "native", *args, env=env)
            outputs += [proc.stdout, proc.stderr]
        out_file = tmp_path / "report.json"
        health("--config", str(s.path), "--mode", "native", "--json", "--output", str(out_file), env=env)
        outputs.append(out_file.read_text())
    finally:
        foreign.stop()
    outputs += [p.read_text() for p in s.registry.log_dir.glob("tmt-ops.log*")]
    document = json.loads(outputs[0])
    holder = document["services"]["dashboard"]["port_holders"][0]["cmdline"]
    assert "postgresql://trader:***@127.0.0.1" in holder  # the URL was there to leak: masked, not missing
    for text in outputs:
        assert password not in text


# -- monitor -------------------------------------------------------------------------------------------------------
def _monitor(path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "system-health.py"), "--config", str(path), "--mode", "native",
                             "--monitor", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"}, cwd=REPO)


def test_monitor_reports_a_state_change_after_it_holds_and_ctrl_c_returns_the_last_code(stack):
    s = stack()
    s.wait()
    monitor = _monitor(s.path, "--interval", "0.3", "--json")
    lines = []
    try:
        killed_at = first_bad = change = None
        deadline = time.monotonic() + 30
        while change is None and time.monotonic() < deadline:
            line = json.loads(monitor.stdout.readline())
            lines.append(line)
            if line["type"] == "round":
                if line["round"] == 2 and killed_at is None:
                    s.procs["dashboard"].stop()
                    killed_at = line["round"]
                elif killed_at and first_bad is None and line["services"]["dashboard"]["status"] != "healthy":
                    first_bad = line["round"]
            elif line["subject"] == "dashboard":
                change = line
        monitor.send_signal(2)  # Ctrl-C
        code = monitor.wait(10)
    finally:
        monitor.kill()
    assert change is not None, lines
    # state_change_rounds is 2: the first unhealthy round is not reported, the second is
    assert change["round"] == first_bad + 1 and change["held_rounds"] == 2
    assert (change["old"], change["new"], change["severity"]) == ("healthy", "unhealthy", "warning")
    rounds = [l for l in lines if l["type"] == "round"]
    assert [r["round"] for r in rounds] == list(range(1, len(rounds) + 1))
    for r in rounds:
        jsonschema.validate(r, SCHEMA)
    assert code == 1  # the last round: the non-critical dashboard down


def test_monitor_text_lines_and_interval_from_the_registry(healthy):
    quick = healthy.variant("quick.yaml", lambda d: d["health"].update(monitor_interval=0.2))
    started = time.monotonic()
    proc = health("--config", str(quick), "--mode", "native", "--monitor", "--count", "3")
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    rounds = proc.stdout.splitlines()
    assert [l.split(":")[0] for l in rounds] == ["round 1", "round 2", "round 3"]
    everything = f"HEALTHY: {len(healthy.registry.services)} healthy, 0 warning, 0 critical"
    assert all(everything in line for line in rounds), rounds
    assert elapsed < 10


def test_monitor_rewrites_the_output_file_atomically(healthy, tmp_path):
    target = tmp_path / "tmt.prom"
    monitor = _monitor(healthy.path, "--interval", "0.05", "--format", "prometheus", "--output", str(target))
    seen = 0
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                text = target.read_text()
            except FileNotFoundError:
                continue
            assert text.startswith("# HELP") and text.endswith(f'tmt_health_build_info{{version="{__version__}"}} 1\n'), \
                text[-200:]  # whole: the last family is there
            seen += 1
    finally:
        monitor.send_signal(2)
        monitor.wait(10)
    assert seen > 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmt.prom"]


def test_auto_mode_finds_the_native_stack_and_lists_its_pids(healthy):
    document = as_json(health("--config", str(healthy.path), "--json"))
    assert document["deployment_mode"] == "native"
    orch = document["services"]["orchestrator"]["backend"]
    assert orch["state"] == "running" and healthy.procs["orchestrator"].pid in orch["pids"]


def test_json_stdout_stays_json_when_the_registry_warns(healthy):
    def edit(data):
        data["services"]["orchestrator"]["env"]["TMT_TEST_UNSET"] = "${TMT_TEST_UNSET_VARIABLE}"
    proc = health("--config", str(healthy.variant("warns.yaml", edit)), "--mode", "native", "--json")
    assert "registry: " in proc.stderr and "TMT_TEST_UNSET_VARIABLE" in proc.stderr
    assert as_json(proc)["overall_status"] == "healthy" and proc.returncode == 0


def test_a_crash_is_unknown_not_warning(healthy, tmp_path):
    """A bug in the checker must read as UNKNOWN (3) to cron and Nagios, as the original's 1 did not."""
    shim = tmp_path / "crash.py"
    shim.write_text("import sys\nimport tmt_ops.health.report as report\n"
                    "def boom(*a, **k):\n    raise RuntimeError('simulated bug')\n"
                    "report.build = boom\nfrom tmt_ops.cli.health import main\nsys.exit(main())\n")
    proc = subprocess.run([sys.executable, str(shim), "--config", str(healthy.path), "--mode", "native"],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 3 and "simulated bug" in proc.stderr
