"""Every prompt survives the end of its input (issue 16): Ctrl-D on a terminal means "no", one line, the
prompt's exit code, never an EOFError traceback."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from support import REPO

pytestmark = pytest.mark.docker  # clean asks the engine what it would remove before it asks the operator


def test_ctrl_d_at_the_clean_prompt_is_no(registry_file):
    cfg = registry_file()
    master, terminal = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, str(REPO / "docker-restart.py"), "--config", str(cfg), "clean"],
                                stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "NO_COLOR": "1"})
        os.close(terminal)
        os.write(master, b"\x04")  # Ctrl-D: the terminal's end of input, waiting for the prompt's read
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(master)
    assert proc.returncode == 1 and "Traceback" not in err, err
    assert out == "Delete them and restart? [y/N] "
    assert err.splitlines()[-1] == "clean cancelled: nothing removed"
