"""system-health.py: one concurrent health report (text, json, nagios, prometheus) or a monitor loop.

Exit codes (Nagios convention): 0 healthy, 1 warning, 2 critical, 3 the check itself could not run.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import traceback
from typing import Sequence

from ..console import Printer, open_toolkit_log, write_out
from ..errors import TmtError, UsageError
from ..backends import Deployment
from ..output import FORMATS, redact_tree, renderer
from ..redact import Redactor
from .common import ArgumentParser, add_common_arguments, add_mode_argument, deployment_from, registry_from, run

UNKNOWN = 3


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not 0 < value < math.inf:  # nan fails every comparison
            raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, got {text}")
        return value
    return parse


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog="system-health.py",
                       description="Health of every TMT service and infrastructure component, probed at once, "
                                   "with host resources, issues and the next command to run. "
                                   "Exit 0 healthy, 1 warning, 2 critical, 3 the check could not run.")
    add_common_arguments(p, short_version=True)
    add_mode_argument(p, "what to check")
    p.add_argument("--json", action="store_true", help="JSON on stdout (same as --format json); "
                                                       "everything human goes to stderr")
    p.add_argument("--format", choices=FORMATS, help="text (default), json, nagios (one plugin line with "
                                                     "perfdata) or prometheus (node_exporter textfile)")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE atomically (temp file + rename), "
                                                    "for cron and the textfile collector")
    p.add_argument("--monitor", action="store_true", help="check every --interval seconds until Ctrl-C")
    p.add_argument("--interval", type=_positive(float), metavar="SECONDS",
                   help="seconds between monitor rounds (default: the registry's health.monitor_interval, 30)")
    p.add_argument("--count", type=_positive(int), metavar="N", help="monitor: stop after N rounds")
    p.add_argument("-t", "--timeout", type=_positive(float), metavar="SECONDS",
                   help="the whole check, registry to output, must end within SECONDS, else it is UNKNOWN "
                        "(exit 3), as a monitoring plugin's timeout")
    return p


def _format(args: argparse.Namespace) -> str:
    if args.json and args.format not in (None, "json"):
        raise UsageError(f"--json and --format {args.format} contradict each other: pick one")
    if (args.interval or args.count) and not args.monitor:
        raise UsageError("--interval and --count apply to --monitor only")
    if args.timeout and args.monitor:
        raise UsageError("--timeout bounds a one-shot check; the monitor's rounds are bounded by health.deadline")
    return "json" if args.json else args.format or "text"


def _monitor(args: argparse.Namespace, fmt: str, deployment: Deployment, redactor: Redactor, verbosity: int) -> int:
    from ..health.document import change_document, to_document
    from ..health.monitor import run as monitor
    from ..output.rounds import RoundWriter
    registry = deployment.registry
    open_toolkit_log(registry.log_dir, redactor, registry.log_max_bytes, registry.log_backups)
    # round and change lines are the data of a text monitor; beside JSON or a file they are commentary
    human = Printer(sys.stderr if fmt != "text" or args.output else sys.stdout, redactor)
    human.verbosity = verbosity
    writer = RoundWriter(fmt, args.output, human)

    def on_round(number, report, changes) -> None:
        writer.write(number, redact_tree(to_document(report), redactor),
                     [change_document(c, registry.services) for c in changes])

    return monitor(deployment, args.interval or registry.health.monitor_interval, on_round, args.count)


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_args(argv)
    fmt = _format(args)
    if args.timeout:
        _time_limit(args.timeout)
    from ..health.resources import CpuSampler
    cpu = CpuSampler()  # marked now: the one-shot CPU window spans the whole run
    deployment = deployment_from(args.mode, registry_from(args, printer))
    redactor = printer.redact
    if args.monitor:
        return _monitor(args, fmt, deployment, redactor, printer.verbosity)
    from ..health.document import to_document
    from ..health.report import build
    report = build(deployment, cpu)
    document = redact_tree(to_document(report), redactor)
    if args.output:
        from ..atomic import write_atomic
        write_atomic(args.output, renderer(fmt)(document))
    elif fmt == "text":
        from ..output.text import show
        out = Printer(sys.stdout, redactor)
        out.verbosity = printer.verbosity
        show(document, out)
    else:
        write_out(sys.stdout, renderer(fmt)(document))  # a reader that went away (`| head -1`) ends it quietly
    return report.overall.exit_code


class CheckTimeout(TmtError):
    exit_code = UNKNOWN


def _time_limit(seconds: float) -> None:
    """A timer for the whole check: when it fires, whatever is under way is abandoned (probes run in daemon
    threads) and the check is UNKNOWN."""
    def fire(signum, frame):
        raise CheckTimeout(f"the check did not finish within its timeout of {seconds:g}s (-t/--timeout)")
    signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _plugin_line(argv: Sequence[str]):
    """For --format nagios, what a monitoring system reads when the check cannot run: its one line on stdout
    (it reads only stdout), `SYSTEM-HEALTH UNKNOWN - why`."""
    nagios = "--format=nagios" in argv or any(a == "--format" and b == "nagios" for a, b in zip(argv, argv[1:]))
    if not nagios:
        return None
    return lambda why: write_out(sys.stdout, f"SYSTEM-HEALTH UNKNOWN - {why.replace('|', '/')}\n")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return run(_main, argv, config_error_code=UNKNOWN, failure_code=UNKNOWN, on_error=_plugin_line(argv))
    except Exception:  # a bug: keep its traceback, but never let a crash read as a warning (exit 1) to a monitor
        traceback.print_exc()
        return UNKNOWN
