"""What every script shares: --config and --mode, loading the registry and choosing the deployment, rendering
an operation's result, and turning errors into exit codes."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from .. import __version__, commands, ephemeral, modes, notify
from ..backends import Deployment, resolve_mode
from ..console import NORMAL, QUIET, VERBOSE, Printer
from ..errors import TmtError, UsageError
from ..interrupts import INTERRUPTED, Interrupts
from ..native.records import secret_words
from ..redact import Redactor
from ..registry import Registry, load_registry
from ..registry.schema import BOUNDS
from ..results import Result

STOP_GRACE = BOUNDS["stop_grace"]  # -t/--timeout takes stop_grace's bound

# What the exit code says, in every --help (one policy for the toolkit: README "Exit codes").
CHANGE_EXITS = ("exit codes: 0 done (warnings, if any, on the last line); 1 the operation failed (a service would "
                "not stop, start or become healthy; the run lock is held); 2 usage or configuration error; "
                "130 interrupted")
STATUS_EXITS = "exit codes: 0 every service runs; 1 not every one; 2 usage or configuration error"
LOGS_EXITS = "exit codes: 0 done; 1 the logs could not be read; 2 usage or configuration error; 130 interrupted"
ADMIN_EXITS = "exit codes: 0 done; 2 usage or configuration error (nothing is written)"
HEALTH_EXITS = "exit codes: 0 healthy; 1 warning; 2 critical; 3 the check itself could not run (Nagios)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2 or 3 by caller) instead of printing usage and exiting."""

    def error(self, message: str) -> None:
        raise UsageError(f"{self.prog}: {message} (see --help)")


def parser_for(command: str, description: str, exits: str) -> ArgumentParser:
    """A command's parser, named as this run was invoked (its usage line and --version name what runs here), its
    exit codes at the end of its --help."""
    return ArgumentParser(prog=commands.current().prog(command), description=description, epilog=exits)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--config, -V/--version, -q/--quiet / -v/--verbose: the same on every command."""
    parser.add_argument("--config", metavar="PATH",
                        help="service registry (default: $TMT_CONFIG, else the first of ./config/services.yaml, "
                             "$XDG_CONFIG_HOME/tmt-ops/services.yaml, /etc/tmt-ops/services.yaml)")
    parser.add_argument("-V", "--version", action="version", version=f"{parser.prog} (tmt-ops) {__version__}")
    chatter = parser.add_mutually_exclusive_group()
    chatter.add_argument("-q", "--quiet", action="store_true",
                         help="print problems and the closing line only (the log keeps all)")
    chatter.add_argument("-v", "--verbose", action="store_true",
                         help="print more: the plan before it runs, probe details")


def add_selection(parser: argparse.ArgumentParser, verb: str, *, infra: bool = True, deps: bool = True,
                  needs: bool = False) -> None:
    """--only SERVICE... (with their dependents; `needs`: with what they need instead), --no-deps, --with-infra."""
    parser.add_argument("--only", nargs="+", metavar="SERVICE",
                        help=f"{verb} these services (registry or compose names)"
                             + (" and what they need that does not run" if needs else
                                " and, in order, their dependents" if deps else ""))
    if deps:
        parser.add_argument("--no-deps", action="store_true",
                            help=f"with --only: {verb} only the named services"
                                 + (" (not what they depend on)" if needs else " (not their dependents)"))
    if infra:
        parser.add_argument("--with-infra", action="store_true",
                            help=f"also {verb} the infrastructure the deployment runs (e.g. its PostgreSQL container)")


def add_change_arguments(parser: argparse.ArgumentParser, *, stops: bool = True, starts: bool = True) -> None:
    """--dry-run; a stop's --force and -t/--timeout; a start's --skip-health-check and --no-build."""
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (what stops how, what starts in which wave) and change nothing")
    if stops:
        parser.add_argument("--force", action="store_true",
                            help="stop what does not answer (frozen, hung) all the same, SIGKILL what outlives its "
                                 "grace; native: also stop an unidentified holder of a service port (never what is "
                                 "another deployment's)")
        parser.add_argument("-t", "--timeout", type=STOP_GRACE.argument, metavar="SECONDS", dest="grace",
                            help="each service's stop grace for this run, instead of its stop_grace (native and "
                                 "docker; a swarm task keeps its deployed grace)")
    if starts:
        parser.add_argument("--skip-health-check", action="store_true", help="no final health validation (faster)")
        parser.add_argument("--no-build", action="store_true",
                            help="run what is built now: no registry build step, no image build")


def check_selection(args: argparse.Namespace) -> None:
    if getattr(args, "no_deps", False) and not args.only:
        raise UsageError("--no-deps needs --only SERVICE...")


def options_of(args: argparse.Namespace):
    """operations.Options from the parsed flags (those a command does not have keep their defaults)."""
    from ..operations import Options
    return Options(force=getattr(args, "force", False), skip_health_check=getattr(args, "skip_health_check", False),
                   dry_run=getattr(args, "dry_run", False), build=not getattr(args, "no_build", False),
                   grace=getattr(args, "grace", None))


def add_mode_argument(parser: argparse.ArgumentParser, what: str, among: tuple[str, ...] | None = None) -> None:
    among = among or modes.modes()
    words = ", ".join(f"{m} ({modes.of_mode(m).words})" for m in among)
    parser.add_argument("--mode", choices=(*among, "auto"), default="auto",
                        help=f"{what}: {words}, or auto (default: the mode that runs now, else the registry's "
                             "default_mode)")


def listen_address(text: str) -> tuple[str, int]:
    """The argparse type of --serve [HOST:]PORT (system-health.py, tmt-ops systemd)."""
    from ..health.server import parse_listen  # only when asked: a one-shot check loads no HTTP server
    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def registry_from(args: argparse.Namespace, printer: Printer) -> Registry:
    """The registry named by --config; the printer now masks its secrets too, at the chatter asked for."""
    printer.verbosity = QUIET if args.quiet else VERBOSE if args.verbose else NORMAL
    registry = load_registry(args.config)
    # the secrets its live services were started with, which this environment may no longer hold (cron)
    printer.redact = Redactor.for_registry(registry, secret_words(registry.state_dir))
    for warning in (*registry.warnings, *ephemeral.warnings(registry)):  # the file's, then the host's about it
        printer.warn(f"registry: {warning}")
    return registry


def for_operation(args: argparse.Namespace, printer: Printer) -> tuple[Interrupts, Registry]:
    """For a script that changes the system: its signal handling (installed first, so a hang-up or Ctrl-C at any
    moment is handled), the registry named by --config, and the toolkit log."""
    interrupts = Interrupts().install(printer.warn)
    registry = registry_from(args, printer)
    from ..toolkitlog import open_toolkit_log  # here: read-only commands never pay for logging.handlers
    open_toolkit_log(registry.log_dir, printer.redact, registry.log_max_bytes, registry.log_backups)
    notify.start(registry, printer.redact, printer.warn)
    return interrupts, registry


def deployment_from(mode: str, registry: Registry, printer: Printer | None = None,
                    among: tuple[str, ...] | None = None, **options) -> Deployment:
    """The deployment of the mode asked for (auto: the one of `among` that runs now); the printer says which,
    if given."""
    chosen, detected = resolve_mode(mode, registry, among)
    if printer is not None:
        why = " (detected)" if detected else " (nothing of this registry runs: the default)" if mode == "auto" else ""
        printer.info(f"mode: {chosen}{why}")
    return Deployment(registry, chosen, **options)


def stop_and_remove(deployment: Deployment, options, printer: Printer, interrupts: Interrupts) -> int:
    """--remove-stack: stop every service the deployment runs (infrastructure too, in reverse waves, pre-stop
    hooks first), then remove what the deployment itself is made of (swarm: the stack; compose: the project's
    networks), volumes kept. `options`: operations.Options of the stop."""
    from .. import operations
    backend = deployment.default
    if not modes.of_backend(backend.name).removable:
        removable = " and ".join(w.mode for w in modes.ways() if w.removable)
        raise UsageError(f"--remove-stack: a {deployment.mode} deployment has no stack to remove ({removable} modes "
                         "have)")
    services = operations.select(deployment, None, with_infra=True)
    if options.dry_run:
        result = operations.stop(deployment, services, options, printer)
        printer.line(f"then: remove {backend.teardown().owner} (volumes kept)")
        return render(printer, result)

    def stop_then_remove() -> Result:
        result = operations.stop(deployment, services, options, printer, interrupts)
        if result.exit_code == 0:
            backend.remove(None, printer)
        return result
    return change(printer, "stop", deployment, services, interrupts, stop_then_remove)


Operate = Callable[..., Result]  # operations.restart / start / stop (deployment, services, options, events, interrupts)


def act_on(args: argparse.Namespace, printer: Printer, verb: str, operate: Operate, *, with_dependents: bool,
           among: tuple[str, ...] | None = None, **options) -> int:
    """The change these arguments ask for (restart, start, stop): the deployment (of the mode, `among` these for
    auto; `options`: the deployment's, e.g. docker-restart.py's compose file), the selection, then a dry run's plan
    or the change itself."""
    from .. import operations
    check_selection(args)
    interrupts, registry = for_operation(args, printer)
    deployment = deployment_from(args.mode, registry, printer, among, **options)
    services = operations.select(deployment, args.only, with_dependents=with_dependents, with_infra=args.with_infra)
    opts = options_of(args)
    if args.dry_run:
        return render(printer, operate(deployment, services, opts, printer))
    return change(printer, verb, deployment, services, interrupts,
                  lambda: operate(deployment, services, opts, printer, interrupts))


def change(printer: Printer, operation: str, deployment: Deployment, services, interrupts: Interrupts,
           act: Callable[[], Result]) -> int:
    """Carry out one change (restart, stop, start, clean) under the run lock, on the record: the journal's begin
    line before it, its end line after it however it ends (a result, an error, Ctrl-C), and a notification of how
    it ended (audit.py, notify.py); then its result rendered. `changed` in the record: whether it got as far as
    touching anything (interrupts.changing); a preflight refusal is recorded, as not changed."""
    from ..audit import Change  # here, as the lock: docker-restart.py status, which changes nothing, must be quick
    from ..lock import run_lock
    with run_lock(deployment.registry.state_dir, printer.warn):
        record = Change(deployment.registry, operation, deployment.mode, [s.name for s in services], printer.redact,
                        printer.warn)
        try:
            result = act()
        except BaseException as exc:
            code, last = _broke_off(exc)
            notify.send(record.end(code, last, "warn" if code == INTERRUPTED else "error",
                                   changed=interrupts.changing))
            raise
        notify.send(record.ended(result, changed=interrupts.changing))
        return render(printer, result)


def _broke_off(exc: BaseException) -> tuple[int, str]:
    """The exit code and last line of a change that ended by an exception (run() says it to the operator)."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED, "interrupted before any change: nothing was stopped or started"
    if isinstance(exc, TmtError):  # a preflight's problems each had a line of its own: the record keeps them
        problems = getattr(exc, "problems", ())
        return exc.exit_code, f"{exc}: {'; '.join(p.text for p in problems)}" if problems else str(exc)
    return 1, f"broke off on an internal error ({type(exc).__name__}: {exc})"


def render(printer: Printer, result: Result) -> int:
    """An operation's result: its summary table (a row per service), its closing line (always shown); the exit
    code."""
    if result.outcomes:
        styles = {"running": "ok", "done": "ok", "degraded": "warn", "starting": "warn", "not started": "warn",
                  "untouched": "ok"}
        rows, row_styles = [], []
        for o in result.outcomes.values():
            ready = f"{o.ready_seconds:.2f}s" if o.ready_seconds is not None else "-"
            rows.append((o.service, o.state, o.runs_as or "-", o.port or "-", ready, o.detail))
            row_styles.append(styles.get(o.state, "error"))
        printer.line()
        printer.table(("SERVICE", "STATE", "RUNS AS", "PORT", "READY", "DETAIL"), rows, row_styles)
    if result.last:  # how it ended: shown with --quiet too
        printer.closing(f"error: {result.last}" if result.level == "error" else result.last, result.level)
    return result.exit_code


def run(body: Callable[[Sequence[str], Printer], int], argv: Sequence[str] | None, *,
        config_error_code: int | None = None, failure_code: int | None = None,
        on_error: Callable[[str], object] | None = None) -> int:
    """Call body(argv, printer); TmtError -> one line and its exit code; Ctrl-C -> 130.

    The final line goes through the same printer as every other (secrets masked, copied to the toolkit log
    once the body opened it). system-health maps every error of its own to 3 (UNKNOWN):
    config_error_code / failure_code override; on_error(message) says it once more where a caller needs it
    (a monitoring plugin's line on stdout).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    printer = Printer()
    try:
        return body(argv, printer)
    except KeyboardInterrupt:
        printer.warn("interrupted")
        return INTERRUPTED
    except TmtError as exc:
        printer.error(f"error: {exc}")
        if on_error is not None:
            on_error(printer.redact(str(exc)))
        if exc.exit_code == 2 and config_error_code is not None:
            return config_error_code
        return failure_code if failure_code is not None else exc.exit_code
    except SystemExit as exc:  # argparse --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    finally:
        notify.close()  # after the last line: what is still queued gets a few seconds at most, whatever the ending
