"""Colour only for a terminal and without NO_COLOR; secrets masked on screen and in the toolkit log."""

import io
import os
import pty

from tmt_ops.console import LOGGER, Printer
from tmt_ops.toolkitlog import open_toolkit_log
from tmt_ops.redact import Redactor


def _tty_stream():
    master, slave = pty.openpty()
    return os.fdopen(slave, "w"), master


def test_a_terminal_gets_colour(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream, master = _tty_stream()
    try:
        printer = Printer(stream)
        assert printer.colour
        printer.error("boom")
        assert b"\x1b[" in os.read(master, 1024)
    finally:
        stream.close()
        os.close(master)


def test_no_color_or_a_pipe_gets_plain_text(monkeypatch):
    stream, master = _tty_stream()
    try:
        monkeypatch.setenv("NO_COLOR", "1")
        assert not Printer(stream).colour
    finally:
        stream.close()
        os.close(master)
    monkeypatch.delenv("NO_COLOR")
    piped = io.StringIO()
    Printer(piped).error("boom")
    assert piped.getvalue() == "boom\n"


def test_secrets_are_masked_on_screen_and_in_the_toolkit_log(tmp_path):
    redactor = Redactor({"sk-live-123456"})
    open_toolkit_log(tmp_path / "an earlier registry's", redactor, 1 << 20, 1)  # one log per process: the last opened
    open_toolkit_log(tmp_path, redactor, 1 << 20, 1)
    try:
        out = io.StringIO()
        Printer(out, redactor, colour=False).warn("key sk-live-123456 at redis://:hunter22@cache:6379")
        for handler in LOGGER.handlers:
            handler.flush()
        logged = (tmp_path / "tmt-ops.log").read_text()
        for text in (out.getvalue(), logged):
            assert "sk-live-123456" not in text and "hunter22" not in text
            assert "key *** at redis://:***@cache:6379" in text
    finally:
        for handler in [h for h in LOGGER.handlers if getattr(h, "tmt_toolkit_log", False)]:
            LOGGER.removeHandler(handler)
            handler.close()
