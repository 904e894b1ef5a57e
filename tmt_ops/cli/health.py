"""system-health.py: one concurrent health report (text, json, nagios, prometheus, health+json) or a monitor loop,
which may serve its rounds over HTTP (--serve) and heal what stays down (--heal).

Exit codes (Nagios convention): 0 healthy, 1 warning, 2 critical, 3 the check itself could not run.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from contextlib import contextmanager
from typing import Iterator, Sequence

from ..bounds import Bound
from ..console import Printer, write_out
from ..errors import TmtError, UsageError
from ..backends import Deployment
from ..output import FORMATS, redact_tree, renderer
from ..redact import Redactor
from ..registry.schema import BOUNDS, SECONDS
from .common import (HEALTH_EXITS, ArgumentParser, add_common_arguments, add_mode_argument, deployment_from,
                     listen_address, parser_for, registry_from, run)

UNKNOWN = 3
TIMEOUT = Bound(0.01, 86400, SECONDS)  # -t: a day bounds any check (and the timer's own range)
ROUNDS = Bound(1, 1_000_000, integer=True)  # --count
HISTORY_SHOWN = 10  # the journal's last records on the status page (/api/history)


def _parser() -> ArgumentParser:
    p = parser_for("health", "Health of every TMT service and infrastructure component, probed at once, with host "
                             "resources, issues and the next command to run.", HEALTH_EXITS)
    add_common_arguments(p)
    add_mode_argument(p, "what to check")
    p.add_argument("--json", action="store_true", help="JSON on stdout (same as --format json); "
                                                       "everything human goes to stderr")
    p.add_argument("--format", choices=FORMATS, help="text (default), json, nagios (one plugin line with "
                                                     "perfdata), prometheus (node_exporter textfile) or health+json "
                                                     "(the IETF health check response format)")
    p.add_argument("--output", metavar="FILE", help="write the report to FILE atomically (temp file + rename), "
                                                    "for cron and the textfile collector")
    p.add_argument("--monitor", action="store_true", help="check every --interval seconds until Ctrl-C")
    p.add_argument("--interval", type=BOUNDS["monitor_interval"].argument, metavar="SECONDS",
                   help="seconds between monitor rounds (default: the registry's health.monitor_interval, 30)")
    p.add_argument("--count", type=ROUNDS.argument, metavar="N", help="monitor: stop after N rounds")
    p.add_argument("--serve", type=listen_address, metavar="[HOST:]PORT",
                   help="monitor, and serve its latest round over HTTP (read-only): /health (health+json), /metrics "
                        "(Prometheus), /livez, /readyz and a status page at /; HOST is 127.0.0.1 unless given")
    p.add_argument("--heal", action="store_true",
                   help="with --monitor or --serve: restart a managed service that stays down, with its dependents, "
                        "as restart-trading-system.py --only does (the registry's heal: settings)")
    p.add_argument("-t", "--timeout", type=TIMEOUT.argument, metavar="SECONDS",
                   help="the whole check, registry to output, must end within SECONDS, else it is UNKNOWN "
                        "(exit 3), as a monitoring plugin's timeout")
    return p


def _format(args: argparse.Namespace) -> str:
    if args.json and args.format not in (None, "json"):
        raise UsageError(f"--json and --format {args.format} contradict each other: pick one")
    looping = args.monitor or args.serve
    if (args.interval or args.count) and not looping:
        raise UsageError("--interval and --count apply to --monitor (or --serve) only")
    if args.heal and not looping:
        raise UsageError("--heal acts between monitor rounds: add --monitor (or --serve)")
    if args.timeout and looping:
        raise UsageError("--timeout bounds a one-shot check; the monitor's rounds are bounded by health.deadline")
    return "json" if args.json else args.format or "text"


def _monitor(args: argparse.Namespace, fmt: str, deployment: Deployment, redactor: Redactor, verbosity: int) -> int:
    from .. import journal, notify
    from ..health.document import change_document, to_document
    from ..health.monitor import run as monitor
    from ..output.rounds import RoundWriter
    registry = deployment.registry
    interval = args.interval or registry.health.monitor_interval
    from ..toolkitlog import open_toolkit_log  # here: read-only commands never pay for logging.handlers
    open_toolkit_log(registry.log_dir, redactor, registry.log_max_bytes, registry.log_backups)
    # round and change lines are the data of a text monitor; beside JSON or a file they are commentary
    human = Printer(sys.stderr if fmt != "text" or args.output else sys.stdout, redactor)
    human.verbosity = verbosity
    # serving, the HTTP answers are the data: a reader of the lines that goes away does not end it
    writer = RoundWriter(fmt, args.output, human, ends_with_reader=not args.serve)
    notify.start(registry, redactor, human.warn)  # state changes and heals, where the desk looks
    publisher = server = healer = None
    if args.serve:
        from ..health.server import StatusServer
        from ..health.snapshot import Publisher
        publisher = Publisher(interval, registry.health.deadline, args.heal)
        server = StatusServer(*args.serve, publisher)  # bound now: a port in use ends it before any round
        human.info(f"serving {server.url} (/health, /metrics, /livez, /readyz, and the status page at /)")
    if args.heal:
        from ..audit import HealJournal
        from ..heal.runner import Healer

        def on_heal(event: dict) -> None:
            event = redact_tree(event, redactor)
            if publisher is not None:
                publisher.heal_event(event)
            writer.heal(event)
            record.event(event)
            notify.send(event)

        healer = Healer(deployment, human, on_heal)
        record = HealJournal(registry, deployment.mode, redactor, human.warn, lambda: healer.interrupts.changing)
        h = registry.heal
        human.info(f"heal: on: a managed service down {h.after_rounds} round(s) in a row is restarted with its "
                   f"dependents; at most {h.max_per_hour} attempt(s) per service within an hour, "
                   f"{h.backoff_seconds:g} s apart at first, doubling up to {h.backoff_max_seconds:g} s")

    def on_round(number, report, changes) -> None:
        document = redact_tree(to_document(report), redactor)
        changed = [change_document(c, registry.services) for c in changes]
        if publisher is not None:
            try:
                recent, why = journal.read(registry.state_dir, limit=HISTORY_SHOWN), None
            except journal.JournalError as exc:
                recent, why = [], str(exc)
            publisher.round(number, document, tuple(sorted(healer.policy.given_up)) if healer else (),
                            redact_tree(recent, redactor), redactor(why) if why else None)
        writer.write(number, document, changed)
        for change in changed:  # the same debounced changes it prints: a flapping service sends nothing more
            notify.send({"type": "state_change", "round": number, **change})

    try:
        if server is not None:
            server.start()
        return monitor(deployment, interval, on_round, args.count, healer)
    finally:
        if server is not None:
            server.close()


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_args(argv)
    fmt = _format(args)
    with _time_limit(args.timeout):
        from ..health.resources import CpuSampler
        cpu = CpuSampler()  # marked now: the one-shot CPU window spans the whole run
        deployment = deployment_from(args.mode, registry_from(args, printer))
        redactor = printer.redact
        if args.monitor or args.serve:
            return _monitor(args, fmt, deployment, redactor, printer.verbosity)
        from ..health.document import to_document
        from ..health.report import build
        report = build(deployment, cpu)
        document = redact_tree(to_document(report), redactor)
    if args.output:
        from ..files import write_atomic
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


@contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """A timer for the check (registry to report; writing it out is not cut short): when it fires, whatever is
    under way is abandoned (probes run in daemon threads) and the check is UNKNOWN. Disarmed when the block
    ends, so a check that finished in time is never killed after its verdict."""
    if not seconds:
        yield
        return

    def fire(signum, frame):
        raise CheckTimeout(f"the check did not finish within its timeout of {seconds:g}s (-t/--timeout)")
    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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
