"""Long waits are not silent: on a terminal a live line per service being started or stopped, with its elapsed
time and its limit, gone when it is done; in a pipe (and in the toolkit log) a plain "still waiting" line every
10 s at most."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys

from native_support import state_dir
from support import REPO

SCRIPT = str(REPO / "restart-trading-system.py")


def on_a_terminal(cfg) -> str:
    """A restart's raw output on a pseudo-terminal of its own, as an operator's ssh session shows it."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["NO_COLOR"] = "1"
        os.execv(sys.executable, [sys.executable, SCRIPT, "--config", str(cfg), "--skip-health-check"])
    out = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child ended: the terminal is gone
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    os.close(fd)
    return out.decode("utf-8", "replace")


def test_a_live_line_per_service_on_a_terminal(registry_file):
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"],
                        knobs={"orchestrator": ["--start-delay", "1.5"]})
    raw = on_a_terminal(cfg)
    live = re.findall(r"orchestrator: starting (\d+\.\d) s of 60 s", raw)
    assert len(live) >= 3 and float(live[-1]) >= 1.0, raw  # drawn again and again as the time goes
    assert "\x1b[1F\x1b[J" in raw  # and taken away: what stays on the terminal is the plain lines
    assert "orchestrator: ready in" in raw and raw.rstrip().endswith("1 service(s) running")
    log = (state_dir(cfg).parent / "logs" / "tmt-ops.log").read_text()
    assert "starting 1." not in log  # a live line is the terminal's only


def test_a_still_waiting_line_every_ten_seconds_in_a_pipe_and_the_log(registry_file):
    cfg = registry_file(drop=["market-analysis", "execution-engine", "dashboard"],
                        knobs={"orchestrator": ["--start-delay", "10.5"]})
    done = subprocess.run([sys.executable, SCRIPT, "--config", str(cfg), "--skip-health-check"], capture_output=True,
                          text=True, timeout=90, env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("still waiting for")]
    assert said == ["still waiting for orchestrator (starting): 10 s of 60"], done.stderr
    assert "\x1b[" not in done.stderr  # a pipe gets plain lines only
    log = (state_dir(cfg).parent / "logs" / "tmt-ops.log").read_text()
    assert "still waiting for orchestrator (starting): 10 s of 60" in log
