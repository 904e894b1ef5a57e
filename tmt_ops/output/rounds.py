"""Monitor output: per round a line (or a JSON document per line, or the format's full render), a line per
state change and a line per heal event (--heal). With --output, the file is rewritten atomically every round
and stdout gets the lines.

When the reader of the rounds goes away (`--monitor | head -3`), write() raises BrokenPipeError and the
monitor ends quietly, as a pipeline's writer should; with --output the file is the data, with --serve the
server's answers are (`ends_with_reader` False), and it goes on."""

from __future__ import annotations

import logging
import sys
from typing import IO

from ..files import write_atomic
from ..console import LOGGER, Printer, write_out
from . import renderer
from .jsonout import render as render_json
from .text import STYLE, summary


LOG_LEVELS = {"warn": logging.WARNING, "error": logging.ERROR}  # of a heal event's level (a Printer style)


class RoundWriter:
    def __init__(self, fmt: str, output: str | None, printer: Printer, stream: IO | None = None, *,
                 ends_with_reader: bool = True):
        self.fmt, self.output, self.printer = fmt, output, printer
        self.stream = stream or sys.stdout
        self.render = renderer(fmt)
        self.ends_with_reader = ends_with_reader and not output

    @property
    def json_lines(self) -> bool:
        return self.fmt == "json" and not self.output

    def _data(self, text: str) -> None:
        if not write_out(self.stream, text) and self.ends_with_reader:
            raise BrokenPipeError("the reader of the monitor's output went away")

    def write(self, number: int, document: dict, changes: list[dict]) -> None:
        if self.output:
            write_atomic(self.output, self.render(document))
        if self.json_lines:
            self._data(render_json({"type": "round", "round": number, **document}, compact=True))
            for change in changes:
                self._data(render_json({"type": "state_change", "round": number, **change}, compact=True))
            return
        if self.fmt in ("text", "json") or self.output:
            self.printer.line(f"round {number}: {summary(document)}", STYLE[document["overall_status"]])
        else:
            self._data(self.render(document))
        for c in changes:
            style = STYLE.get(c["severity"], None)
            self.printer.line(f"{c['time']} {c['subject']}: {c['old']} -> {c['new']} "
                              f"(held {c['held_rounds']} rounds)", style)
        self._check_reader()

    def heal(self, event: dict) -> None:
        """A heal event (--heal; "type": "heal"): a JSON line with --json, else a line; in the toolkit log either
        way."""
        text, level = f"heal: {event['message']}", LOG_LEVELS.get(event["level"], logging.INFO)
        if self.json_lines:
            LOGGER.log(level, text)
            self._data(render_json(event, compact=True))
            return
        self.printer.line(text, event["level"], level)
        self._check_reader()

    def _check_reader(self) -> None:
        if self.printer.stream is None and self.ends_with_reader:  # these lines were the data, and no one reads them
            raise BrokenPipeError("the reader of the monitor's output went away")
