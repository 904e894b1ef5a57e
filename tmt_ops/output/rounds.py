"""Monitor output: per round a line (or a JSON document per line, or the format's full render), and a line per
state change. With --output, the file is rewritten atomically every round and stdout gets the lines.

When the reader of the rounds goes away (`--monitor | head -3`), write() raises BrokenPipeError and the
monitor ends quietly, as a pipeline's writer should; with --output the file is the data and it goes on."""

from __future__ import annotations

import sys
from typing import IO

from ..atomic import write_atomic
from ..console import Printer, write_out
from . import renderer
from .jsonout import render as render_json
from .text import STYLE, summary


class RoundWriter:
    def __init__(self, fmt: str, output: str | None, printer: Printer, stream: IO | None = None):
        self.fmt, self.output, self.printer = fmt, output, printer
        self.stream = stream or sys.stdout
        self.render = renderer(fmt)

    def _data(self, text: str) -> None:
        if not write_out(self.stream, text):
            raise BrokenPipeError("the reader of the monitor's output went away")

    def write(self, number: int, document: dict, changes: list[dict]) -> None:
        if self.output:
            write_atomic(self.output, self.render(document))
        if self.fmt == "json" and not self.output:
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
        if self.printer.stream is None and not self.output:  # these lines were the data, and no one reads them
            raise BrokenPipeError("the reader of the monitor's output went away")
