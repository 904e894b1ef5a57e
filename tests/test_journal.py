"""The journal (journal.py, audit.py) and `tmt-ops history`: every change on the record, with who made it and how
it ended, across a restart, a stop, a heal, an interrupt and a failure; private; rotated; and help, never a
requirement: a journal that cannot be written is one warning, the operation goes on."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import psutil
import pytest
import yaml

from native_support import recorded_pids, restart, state_dir, stop
from support import REPO, run_script, wait_for
from tmt_ops import journal

API_KEY = "oanda-live-key-2b7e61d0c4"


def history(cfg: Path, *args: str) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "tmt_ops", "history", "--config", str(cfg), "--json", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["records"]


def test_restart_and_stop_are_recorded_newest_first_with_who_and_how_they_ended(registry_file):
    cfg = registry_file()
    env = {"SSH_CONNECTION": "10.9.8.7 40000 10.0.0.1 22", "OANDA_API_KEY": API_KEY, "SUDO_USER": "alice"}
    assert restart(cfg, env=env).returncode == 0
    between = time.time()
    time.sleep(0.05)
    assert stop(cfg, "--only", "dashboard", env=env).returncode == 0
    stopped, restarted = history(cfg)
    assert (restarted["operation"], restarted["outcome"], restarted["exit_code"], restarted["changed"]) == \
        ("restart", "ok", 0, True)
    assert restarted["who"]["user"] == "root" and restarted["who"]["sudo_user"] == "alice"
    assert restarted["who"]["ssh_client"] == "10.9.8.7" and restarted["who"]["pid"] > 0
    assert restarted["mode"] == "native" and restarted["last"] == "4 service(s) running and healthy"
    assert set(restarted["results"]) == {"orchestrator", "market-analysis", "execution-engine", "dashboard"}
    assert restarted["results"]["orchestrator"]["state"] == "running"
    assert restarted["results"]["orchestrator"]["runs_as"] == f"pid {recorded_pids(cfg)['orchestrator']}"
    assert 0 < restarted["seconds"] < 60 and restarted["started"] < restarted["ended"] <= stopped["started"]
    assert (stopped["operation"], stopped["services"], stopped["last"]) == ("stop", ["dashboard"], "stopped 1 service(s)")
    assert stopped["command"] == f"stop-trading-system.py --config {cfg} --only dashboard"
    # the filters
    assert [r["operation"] for r in history(cfg, "--service", "orchestrator")] == ["restart"]
    assert [r["operation"] for r in history(cfg, "--since", datetime.fromtimestamp(between).isoformat())] == ["stop"]
    assert [r["operation"] for r in history(cfg, "--since", "1h")] == ["stop", "restart"]
    assert [r["operation"] for r in history(cfg, "--limit", "1")] == ["stop"]
    # private, and no secret value
    folder = state_dir(cfg) / "journal"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "journal.jsonl").stat().st_mode) == 0o600
    assert API_KEY not in (folder / "journal.jsonl").read_text()
    text = run_script("stop-trading-system.py", "--version")  # nothing changes: nothing recorded
    assert text.returncode == 0 and len(history(cfg)) == 2
    shown = subprocess.run([sys.executable, "-m", "tmt_ops", "history", "--config", str(cfg)], capture_output=True,
                           text=True, cwd=REPO, env={**os.environ, "NO_COLOR": "1"}, timeout=60)
    lines = shown.stdout.splitlines()
    assert lines[0].split("  ", 1)[1].startswith("stop ok in ") and lines[0].endswith("by root (sudo from alice) "
                                                                                        "from ssh 10.9.8.7")
    assert lines[1] == "    dashboard (native mode); exit 0: stopped 1 service(s)"
    stop(cfg)


def test_a_failed_restart_and_a_refused_one_are_recorded(registry_file):
    cfg = registry_file()
    refused = restart(cfg, "--only", "dashboard")  # what it needs does not run: preflight refuses, nothing changes
    assert refused.returncode == 1
    assert restart(cfg).returncode == 0
    data = yaml.safe_load(cfg.read_text())
    data["services"]["market-analysis"]["command"] += ["--crash-at-start"]
    broken = cfg.with_name("broken.yaml")
    broken.write_text(yaml.safe_dump(data, sort_keys=False))
    failed = restart(broken, "--only", "market-analysis")
    assert failed.returncode == 1
    failure, _, refusal = history(cfg)
    assert (refusal["outcome"], refusal["exit_code"], refusal["changed"]) == ("failed", 1, False)
    assert refusal["last"].startswith("preflight found 3 problem(s); nothing was stopped or started: Orchestrator at ")
    assert (failure["outcome"], failure["exit_code"], failure["changed"]) == ("failed", 1, True)
    assert "was rolled back" in failure["last"] and failure["results"]["market-analysis"]["state"] == "running"
    stop(cfg)


def test_an_interrupted_restart_is_recorded_and_a_killed_one_keeps_its_beginning(registry_file):
    cfg = registry_file()
    assert restart(cfg).returncode == 0
    before = recorded_pids(cfg)
    data = yaml.safe_load(cfg.read_text())
    data["services"]["market-analysis"]["command"] += ["--start-delay", "60"]
    slow = cfg.with_name("slow.yaml")
    slow.write_text(yaml.safe_dump(data, sort_keys=False))

    def background():
        return subprocess.Popen([sys.executable, str(REPO / "restart-trading-system.py"), "--config", str(slow), "--only",
                                 "market-analysis"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})

    def starting_slowly() -> bool:
        pid = recorded_pids(cfg).get("market-analysis")
        try:
            return pid != before["market-analysis"] and "--start-delay" in psutil.Process(pid).cmdline()
        except (psutil.Error, TypeError):
            return False

    proc = background()
    try:
        assert wait_for(starting_slowly, 20)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
    finally:
        proc.kill()
    interrupted = history(cfg)[0]
    assert (interrupted["outcome"], interrupted["exit_code"], interrupted["changed"]) == ("interrupted", 130, True)
    assert interrupted["last"].startswith("interrupted: what this run stopped was started again")
    before = recorded_pids(cfg)
    proc = background()  # killed outright (SIGKILL, a power cut): no end line, its beginning says who and what
    try:
        assert wait_for(starting_slowly, 20)
        proc.kill()
        proc.wait(10)
    finally:
        proc.kill()
    killed = history(cfg)[0]
    assert (killed["operation"], killed["outcome"], killed["services"][0]) == ("restart", "unknown", "market-analysis")
    assert "no end was recorded" in killed["last"] and "exit_code" not in killed
    assert restart(cfg).returncode == 0  # put the stack back as the registry says, then stop it
    stop(cfg)


def test_a_heal_is_recorded(registry_file, monitors):
    cfg = registry_file(edit=lambda d: d["heal"].update(after_rounds=2))
    assert restart(cfg).returncode == 0
    m = monitors(cfg, "--interval", "0.3", "--heal", "--json")
    assert m.wait_event(lambda e: e["type"] == "round")
    os.killpg(os.getpgid(recorded_pids(cfg)["dashboard"]), signal.SIGKILL)
    assert m.wait_event(lambda e: e["type"] == "heal" and e["event"] == "result", 40), m.err
    healed = history(cfg)[0]
    assert (healed["operation"], healed["outcome"], healed["exit_code"], healed["changed"]) == ("heal", "ok", 0, True)
    assert healed["services"] == ["dashboard"] and healed["results"] == {"dashboard": {"state": "running"}}
    assert "--heal" in healed["command"] and healed["command"].startswith("system-health.py ")
    assert [r["operation"] for r in m.get_json("/api/history")["records"]][:1] in (["heal"], [])
    assert wait_for(lambda: m.get_json("/api/history")["records"][0]["operation"] == "heal", 10)
    m.stop()
    stop(cfg)


def test_rotation_keeps_a_few_files_and_an_operation_reads_whole_across_them(tmp_path):
    state = tmp_path / "state"
    for n in range(40):
        journal.append(state, {"phase": "begin", "id": f"op{n}", "operation": "restart", "services": ["x"]}, 400)
        journal.append(state, {"phase": "end", "id": f"op{n}", "outcome": "ok"}, 400)
    files = sorted(p.name for p in (state / "journal").iterdir())
    assert files == ["journal.jsonl", *(f"journal.jsonl.{n}" for n in range(1, journal.KEEP + 1))]
    assert all(p.stat().st_size <= 400 for p in (state / "journal").iterdir())
    records = journal.read(state)
    ids = [r["id"] for r in records]
    assert ids[0] == "op39" and ids == sorted(ids, key=lambda i: -int(i[2:]))  # newest first, oldest rotated away
    assert "op0" not in ids and all(r.get("outcome") == "ok" for r in records if r.get("operation"))
    assert journal.read(state, limit=2, service="x") == records[:2]


@pytest.mark.parametrize("damage", ["fifo", "file instead of the folder", "symlink"])
def test_a_journal_that_cannot_be_written_is_one_warning_and_the_operation_goes_on(registry_file, tmp_path, damage):
    cfg = registry_file()
    folder = state_dir(cfg) / "journal"
    elsewhere = tmp_path / "elsewhere.jsonl"
    if damage == "file instead of the folder":
        folder.parent.mkdir(parents=True)
        folder.write_text("not a folder\n")
    else:
        folder.mkdir(parents=True)
        if damage == "fifo":
            os.mkfifo(folder / "journal.jsonl")
        else:
            elsewhere.write_text("")
            (folder / "journal.jsonl").symlink_to(elsewhere)
    began = time.monotonic()
    done = restart(cfg, timeout=120)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - began < 60  # a FIFO never blocks it
    warnings = [line for line in done.stderr.splitlines() if line.startswith("journal:")]
    assert len(warnings) == 1 and warnings[0].startswith("journal: this restart is not recorded (cannot write the "
                                                         "journal ") and warnings[0].endswith("; it goes on"), warnings
    assert "Traceback" not in done.stderr and elsewhere.exists() == (damage == "symlink")
    assert not elsewhere.exists() or elsewhere.read_text() == ""  # a symlink is never followed
    shown = subprocess.run([sys.executable, "-m", "tmt_ops", "history", "--config", str(cfg)], capture_output=True,
                           text=True, cwd=REPO, timeout=30)
    if damage == "symlink":  # read through, harmlessly: the file it names is empty
        assert shown.returncode == 0 and shown.stderr.startswith("nothing on record in "), shown.stderr
    else:  # what is there is said in one line, without waiting on the FIFO
        assert shown.returncode == 1 and shown.stderr.count("\n") == 1 and shown.stderr.startswith("error: "), \
            shown.stderr
    stop(cfg)


def test_history_says_what_is_wrong_with_its_arguments_in_one_line(registry_file):
    cfg = registry_file()
    for args, words in ((["--since", "yesterday"], "is neither a time"), (["--service", "dashbord"], "did you mean 'dashboard'"),
                        (["--limit", "0"], "a whole number of 1 or more")):
        done = subprocess.run([sys.executable, "-m", "tmt_ops", "history", "--config", str(cfg), *args],
                              capture_output=True, text=True, cwd=REPO, timeout=30)
        assert done.returncode == 2 and words in done.stderr and done.stderr.count("\n") == 1, done.stderr
    empty = subprocess.run([sys.executable, "-m", "tmt_ops", "history", "--config", str(cfg), "--json"],
                           capture_output=True, text=True, cwd=REPO, timeout=30)
    assert empty.returncode == 0 and json.loads(empty.stdout)["records"] == []
