"""systemd: the generated units pass `systemd-analyze verify` and their commands do what they say; the monitor
speaks sd_notify (READY, STATUS, WATCHDOG, STOPPING) on the NOTIFY_SOCKET systemd gives it."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from health_stack import CALM
from native_support import recorded_pids
from support import REPO, run_script

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
# the units' user: an account of this host that is neither root nor nobody (systemd-analyze warns of User=nobody)
USER = next(p for p in sorted(pwd.getpwall(), key=lambda p: p.pw_uid) if 0 < p.pw_uid < 65534)
GROUP = grp.getgrgid(USER.pw_gid).gr_name


def systemd(cfg, *args, env=None):
    return subprocess.run([sys.executable, "-m", "tmt_ops", "systemd", "--config", str(cfg), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=60, env=env)


def units(cfg, tmp_path, *args):
    out = tmp_path / "units"
    done = systemd(cfg, "--write", str(out), *(() if "--user" in args else ("--user", USER.pw_name)), *args)
    assert done.returncode == 0, done.stderr
    return out


def setting(unit_file, key: str) -> str:
    return next(li for li in unit_file.read_text().splitlines() if li.startswith(f"{key}=")).split("=", 1)[1]


def exec_line(unit_file, key: str) -> list[str]:
    """A unit's command as systemd runs it: its words, with %% and $$ unescaped."""
    line = next(li for li in unit_file.read_text().splitlines() if li.startswith(f"{key}="))
    return [word.replace("%%", "%").replace("$$", "$") for word in shlex.split(line.split("=", 1)[1])]


@needs_analyze
@pytest.mark.parametrize("mode", ["native", "docker"])
def test_the_units_pass_systemd_analyze_verify(registry_file, tmp_path, mode):
    out = units(registry_file(), tmp_path, "--mode", mode, "--monitor-args", "--interval 15")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["tmt-ops-health-snapshot.service", "tmt-ops-health-snapshot.timer", "tmt-ops-monitor.service",
                     "tmt-ops.service"]
    done = subprocess.run([ANALYZE, "verify", *map(str, sorted(out.iterdir()))], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    boot = (out / "tmt-ops.service").read_text()
    assert ("After=network-online.target docker.service" in boot) == (mode == "docker")
    for unit in ("tmt-ops.service", "tmt-ops-monitor.service", "tmt-ops-health-snapshot.service"):
        assert (setting(out / unit, "User"), setting(out / unit, "Group")) == (USER.pw_name, GROUP)
    monitor = (out / "tmt-ops-monitor.service").read_text()
    assert "Type=notify" in monitor and "WatchdogSec=" in monitor and "--interval 15" in monitor
    assert "SuccessExitStatus=1 2" in monitor  # a stop ends it with the last verdict: not a failed unit
    broken = out / "broken.service"  # the verifier does object where a unit is wrong: a warning, or a failure
    broken.write_text(boot.replace("Type=oneshot", "Type=sometimes"))
    assert "Failed to parse service type" in subprocess.run([ANALYZE, "verify", str(broken)], capture_output=True,
                                                            text=True).stderr
    broken.write_text(boot.replace(f"ExecStart={sys.executable}", "ExecStart=/nonexistent/python"))
    assert subprocess.run([ANALYZE, "verify", str(broken)], capture_output=True).returncode != 0


def test_the_units_commands_bring_the_system_up_and_down_and_write_a_snapshot(registry_file, tmp_path):
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"])
    out = units(cfg, tmp_path, "--snapshot-dir", str(tmp_path))
    env = {**os.environ, "NO_COLOR": "1"}
    up = subprocess.run(exec_line(out / "tmt-ops.service", "ExecStart"), capture_output=True, text=True, env=env,
                        cwd="/", timeout=120)
    assert up.returncode == 0, up.stderr
    assert set(recorded_pids(cfg)) == {"orchestrator"}
    snapshot = subprocess.run(exec_line(out / "tmt-ops-health-snapshot.service", "ExecStart"), env=env, cwd="/",
                              capture_output=True, text=True, timeout=120)
    assert snapshot.returncode in (0, 1, 2), snapshot.stderr  # SuccessExitStatus=1 2: the verdict, not a failure
    (written,) = tmp_path.glob("health-*.json")
    assert written.name == f"health-{time.strftime('%Y%m%d')}.json"
    assert json.loads(written.read_text())["services"]["orchestrator"]["status"] == "healthy"
    down = subprocess.run(exec_line(out / "tmt-ops.service", "ExecStop"), capture_output=True, text=True, env=env,
                          cwd="/", timeout=120)
    assert down.returncode == 0 and recorded_pids(cfg) == {}, down.stderr


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_the_monitor_tells_systemd_it_is_ready_its_status_and_feeds_the_watchdog(registry_file, tmp_path, abstract):
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"])
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        name = f"tmt-notify-{os.getpid()}-{abstract}"
        address = "\0" + name if abstract else str(tmp_path / "notify.sock")
        listener.bind(address)
        listener.settimeout(10)
        env = {"NOTIFY_SOCKET": "@" + name if abstract else address, "WATCHDOG_USEC": "400000"}
        done = run_script("system-health.py", "--config", str(cfg), "--monitor", "--interval", "1", "--count", "2",
                          env=env, timeout=60)
        assert done.returncode == 2, done.stderr  # nothing runs: the orchestrator is down, critical
        messages = []
        listener.settimeout(0.5)
        try:
            while True:
                messages.append(listener.recv(4096).decode())
        except socket.timeout:
            pass
    first = dict(line.split("=", 1) for line in messages[0].splitlines())
    assert first["READY"] == "1" and first["WATCHDOG"] == "1" and first["STATUS"].endswith("(round 1)")
    assert first["STATUS"].startswith("CRITICAL: ")
    pings = [m for m in messages[1:] if m == "WATCHDOG=1"]
    assert len(pings) >= 2, messages  # fed while it waits the 1 s interval, every 0.2 s at most
    assert any("STATUS=" in m and "(round 2)" in m for m in messages) and messages[-1] == "STOPPING=1"


@needs_analyze
def test_the_monitor_unit_serves_and_heals_when_asked_and_still_passes_verify(registry_file, tmp_path):
    cfg = registry_file()
    out = units(cfg, tmp_path, "--serve", "127.0.0.1:9464", "--heal")
    monitor = out / "tmt-ops-monitor.service"
    command = exec_line(monitor, "ExecStart")
    assert command[command.index("--serve") + 1] == "127.0.0.1:9464" and "--heal" in command
    text = monitor.read_text()
    assert "KillMode=process" in text and "TimeoutStopSec=" in text  # what a heal starts outlives the monitor
    done = subprocess.run([ANALYZE, "verify", *map(str, sorted(out.iterdir()))], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    plain = (units(cfg, tmp_path / "plain").joinpath("tmt-ops-monitor.service")).read_text()
    assert "KillMode" not in plain and "--serve" not in plain and "--heal" not in plain
    bad = subprocess.run([sys.executable, "-m", "tmt_ops", "systemd", "--config", str(cfg), "--serve", "70000"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "from 0 to 65535" in bad.stderr


def test_a_serving_monitor_says_ready_and_a_heal_feeds_the_watchdog_while_it_restarts(registry_file, tmp_path):
    def edit(data):
        data["heal"] = {"after_rounds": 2, "backoff_seconds": 1}
        data["health"]["thresholds"] = dict(CALM)  # a busy test host's load is no finding of this test's
    cfg = registry_file(edit=edit, knobs={"dashboard": ["--start-delay", "2"]})
    started = run_script("restart-trading-system.py", "--config", str(cfg), "--skip-health-check", timeout=120)
    assert started.returncode == 0, started.stderr
    os.killpg(recorded_pids(cfg)["dashboard"], 9)
    messages = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(tmp_path / "notify.sock"))
        listener.settimeout(0.5)

        ended = threading.Event()

        def receive():  # as systemd does, at once: the kernel queues only a few datagrams
            while not ended.is_set():  # until the monitor has ended (its start may take longer than a timeout)
                try:
                    messages.append(listener.recv(4096).decode())
                except socket.timeout:
                    pass

        receiver = threading.Thread(target=receive)
        receiver.start()
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "400000"}
        try:
            done = run_script("system-health.py", "--config", str(cfg), "--serve", "127.0.0.1:0", "--heal",
                              "--interval", "0.3", "--count", "3", env=env, timeout=120)
        finally:
            ended.set()
            receiver.join()
    assert "heal: dashboard healed in " in done.stdout, done.stdout + done.stderr
    assert messages[0].startswith("READY=1\n")  # after the first round, serving or not
    healing = next(i for i, m in enumerate(messages) if "; healing dashboard" in m)
    after = next(i for i, m in enumerate(messages) if "(round 3)" in m)
    assert messages[healing].startswith("STATUS=WARNING: ")
    assert messages[healing + 1:after].count("WATCHDOG=1") >= 5, messages  # a 2 s start, pinged every 0.2 s


def test_the_units_run_as_the_user_who_makes_them_and_as_root_only_when_asked(registry_file, tmp_path):
    """Units made from a user's registry ran it as root (no User=). As root, tmt-ops systemd needs the user named,
    unless sudo says who ran it; --user names anyone, root included."""
    from tmt_ops.systemd import account
    cfg = registry_file()
    env = {k: v for k, v in os.environ.items() if k != "SUDO_USER"}
    plain = systemd(cfg, env=env)
    me = pwd.getpwuid(os.geteuid())
    if os.geteuid() == 0:
        assert plain.returncode == 2 and plain.stderr.count("\n") == 1, plain.stderr
        assert "runs as root: name the user the units run as, --user NAME (--user root" in plain.stderr
        through_sudo = systemd(cfg, "--write", str(tmp_path / "sudo"), env={**env, "SUDO_USER": USER.pw_name})
        assert through_sudo.returncode == 0, through_sudo.stderr
        assert setting(tmp_path / "sudo" / "tmt-ops.service", "User") == USER.pw_name
    else:  # the invoking user, whatever SUDO_USER says
        assert plain.returncode == 0 and f"\nUser={me.pw_name}\n" in plain.stdout, plain.stderr
    root = units(cfg, tmp_path / "root", "--user", "root")
    assert (setting(root / "tmt-ops.service", "User"), setting(root / "tmt-ops.service", "Group")) == ("root", "root")
    unknown = systemd(cfg, "--user", "no-such-user-of-tmt")
    assert unknown.returncode == 2 and "--user no-such-user-of-tmt: no such user on this host" in unknown.stderr
    # who runs it, when not root: that user, in its primary group
    assert account(None, USER.pw_uid, {"SUDO_USER": "root"}) == (USER.pw_name, GROUP)
    assert account(None, 0, {"SUDO_USER": USER.pw_name}) == (USER.pw_name, GROUP)


@needs_analyze
@pytest.mark.parametrize("mode", ["native", "docker"])
def test_the_start_and_stop_timeouts_are_the_waves_of_the_mode(registry_file, tmp_path, mode):
    """Waves go one after another, a wave's services at once: a start is the stop waves' graces, then the start
    waves' readiness, one health round and some slack; only a mode with containers waits for compose too. The
    infrastructure a native restart never starts counts only by its probe before the orchestrator's wave."""
    from tmt_ops.systemd import SLACK

    def edit(data):
        data["defaults"].update(startup_timeout=30, stop_grace=5, compose_timeout=900, probe_timeout=2)
        data["health"]["deadline"] = 4
        for svc in data["services"].values():  # the defaults for all: no hooks, no grace of its own
            for key in ("pre_stop", "post_start", "stop_grace", "startup_timeout"):
                svc.pop(key, None)
    cfg = registry_file(drop=("redis", "kafka", "prometheus", "grafana", "jaeger", "vault"), edit=edit)
    out = units(cfg, tmp_path, "--mode", mode)
    start, stop = (int(setting(out / "tmt-ops.service", key)) for key in ("TimeoutStartSec", "TimeoutStopSec"))
    if mode == "native":  # orchestrator, market-analysis, execution-engine, dashboard: a wave each
        assert stop == 4 * 5 + SLACK
        assert start == 4 * 5 + (2 + 4 * 30) + 4 + SLACK  # PostgreSQL probed (2 s) before the first wave
    else:  # PostgreSQL's container is a wave of its own, and compose may take its timeout
        assert stop == 5 * 5 + SLACK
        assert start == 5 * 5 + 5 * 30 + 4 + 900 + SLACK
    done = subprocess.run([ANALYZE, "verify", *map(str, sorted(out.iterdir()))], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
