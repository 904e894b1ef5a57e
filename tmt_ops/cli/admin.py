"""tmt-ops (python -m tmt_ops): putting the toolkit in place on a host.

    tmt-ops init [--to PATH] [--root DIR] [--force]   the starter registry, for an installed toolkit
    tmt-ops systemd [--mode MODE] [--user NAME] [--write DIR] [--serve [HOST:]PORT] [--heal] ...   unit files
    tmt-ops completion bash|zsh                       shell completion for the five scripts
    tmt-ops services                                  the registry's service names (completion uses it)
    tmt-ops history [--json] [--since WHEN] [--service NAME] [--limit N]   the journal: who changed what, when
    tmt-ops alerts [--down-for SECONDS] [--interval SECONDS] [--job NAME]  Prometheus alert rules for --serve
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shlex
import sys
import time
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Sequence

from .. import __version__
from ..commands import COMMANDS, current
from ..console import Printer, write_out
from ..files import FileProblem, ensure_dir, write_atomic
from .. import modes
from ..errors import ConfigError, UsageError
from ..registry import load_registry
from ..registry.loader import CHECKOUT
from ..alerts import DOWN_FOR, JOB
from .common import ADMIN_EXITS, ArgumentParser, add_common_arguments, listen_address, registry_from, run

ROOT_LINE = re.compile(r"^(  root:)[^\n]*$", re.M)  # project.root in the shipped registry
SERVICE_ARGUMENTS = ("only", "services")  # the arguments that name services


def _state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")


def _config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def _words(text: str) -> list[str]:
    """An argument holding arguments, split as a shell would (argparse's usage error when it cannot be)."""
    try:
        return shlex.split(text)
    except ValueError as exc:  # "No closing quotation"
        raise argparse.ArgumentTypeError(f"{exc}: {text!r}") from None


AGE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _since(text: str) -> float:
    """--since: an age (30m) or a local time (2025-01-31, 2025-01-31 14:00, 2025-01-31T14:00:05) -> epoch seconds."""
    age = AGE.fullmatch(text.strip())
    if age:
        return time.time() - float(age.group(1)) * AGE_UNITS[age.group(2)]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a time (2025-01-31, '2025-01-31 14:00') nor an age "
                                         "(90s, 30m, 12h, 7d)") from None


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 10 ** 7:
        raise argparse.ArgumentTypeError(f"expected a number of seconds greater than 0, got {text!r}")
    return value


def _parser() -> ArgumentParser:
    prog = " ".join(current().words("init")[:-1])  # tmt-ops, or python -m tmt_ops: as this run was invoked
    parser = ArgumentParser(prog=prog, description="Put tmt-ops in place on a host, and read what it keeps.")
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=ArgumentParser)

    def add(name: str, **kw) -> ArgumentParser:
        return commands.add_parser(name, epilog=ADMIN_EXITS, **kw)

    init = add("init", help="write the starter registry (the simulated stack) where the scripts look for it")
    init.add_argument("--to", metavar="PATH", type=Path,
                      help="where to write it (default: $XDG_CONFIG_HOME/tmt-ops/services.yaml, else "
                           "~/.config/tmt-ops/services.yaml; /etc/tmt-ops/services.yaml for the whole host)")
    init.add_argument("--root", metavar="DIR", type=Path,
                      help="its project.root, where logs/ and .tmt-state/ go (default: $XDG_STATE_HOME/tmt-ops, "
                           "else ~/.local/state/tmt-ops)")
    init.add_argument("--force", action="store_true", help="replace a registry already there")
    _add_version(init)
    services = add("services", help="the registry's service names, one per line")
    add_common_arguments(services)
    units = add("systemd", help="print (or --write) systemd units for this installation: the "
                                "system at boot, the monitor, a daily JSON snapshot")
    add_common_arguments(units)
    units.add_argument("--mode", choices=modes.modes(), help="how the services run (default: the registry's default_mode)")
    units.add_argument("--write", metavar="DIR", type=Path,
                       help="write the unit files there (e.g. /etc/systemd/system), then `systemctl daemon-reload`")
    units.add_argument("--snapshot-dir", metavar="DIR", type=Path,
                       help="where the daily health-YYYYMMDD.json snapshots go (default: the registry's log_dir)")
    units.add_argument("--monitor-args", metavar="ARGS", type=_words, default=[],
                       help="more arguments for the monitor, as one string (e.g. \"--interval 15\")")
    units.add_argument("--serve", metavar="[HOST:]PORT", type=listen_address,
                       help="the monitor also serves /health, /metrics, /livez, /readyz and its status page there")
    units.add_argument("--heal", action="store_true",
                       help="the monitor heals (system-health.py --heal); its unit then leaves the services it "
                            "starts running when it stops (KillMode=process)")
    units.add_argument("--user", metavar="NAME",
                       help="the user the units run as, in its primary group (default: you; through sudo, the user "
                            "who ran sudo; root only as --user root)")
    history = add("history", help="the journal of every restart, stop, start, clean and heal, newest "
                                  "first: when, who, the command, how it ended")
    add_common_arguments(history)
    history.add_argument("--json", action="store_true", help="JSON on stdout: {\"version\": 1, \"records\": [...]}")
    history.add_argument("--since", metavar="WHEN", type=_since,
                         help="only what began since WHEN: a time (2025-01-31, '2025-01-31 14:00', local time) or an "
                              "age (90s, 30m, 12h, 7d)")
    history.add_argument("--service", metavar="NAME", help="only the operations that touched this service")
    history.add_argument("--limit", metavar="N", type=_count, help="at most N records")
    alerts = add("alerts", help="print Prometheus alert rules for what system-health.py --serve "
                                "exposes at /metrics (thresholds from the registry)")
    add_common_arguments(alerts)
    alerts.add_argument("--down-for", metavar="SECONDS", type=_seconds, default=DOWN_FOR,
                        help=f"how long a service (or the monitor's scrape) must be down before its alert fires "
                             f"(default {DOWN_FOR:g})")
    alerts.add_argument("--interval", metavar="SECONDS", type=_seconds,
                        help="the monitor's --interval, when not the registry's health.monitor_interval (when its "
                             "last round counts as stale)")
    alerts.add_argument("--job", default=JOB, help=f"the Prometheus job scraping system-health.py --serve "
                                                   f"(default {JOB})")
    completion = add("completion", help="print shell completion for the five scripts and tmt-ops "
                                        '(bash: eval "$(tmt-ops completion bash)" in ~/.bashrc)')
    completion.add_argument("shell", choices=("bash", "zsh"))
    _add_version(completion)
    return parser


def _add_version(parser: argparse.ArgumentParser) -> None:
    """-V/--version, on a command that reads no registry (add_common_arguments gives the others theirs)."""
    parser.add_argument("-V", "--version", action="version", version=f"{parser.prog} (tmt-ops) {__version__}")



def _services_command() -> str:
    """The shell command completion runs for service names: this interpreter and this tmt_ops, whichever
    directory the shell is in (the registry is found as every script finds it)."""
    command = f"{shlex.quote(sys.executable)} -m tmt_ops services 2>/dev/null"
    if (CHECKOUT / "restart-trading-system.py").is_file():  # a source checkout: not on the interpreter's path
        command = f"PYTHONPATH={shlex.quote(str(CHECKOUT))} {command}"
    return command


def completion(shell: str) -> str:
    """One script for the shell: completion of every option of every program name, service names included."""
    try:
        import shtab
    except ImportError:
        raise ConfigError("shell completion is generated with shtab: pip install 'tmt-ops[completion]' "
                          "(or pip install shtab)") from None
    services = shtab.cmd(_services_command())
    programs = {name: command for command in COMMANDS.values() if len(command.script) == 1
                for name in (command.script[0], command.console)}  # the scripts and their console commands
    scripts = []
    for name, command in [*programs.items(), ("tmt-ops", None)]:
        parser = _whole_parser() if command is None else _command_parser(command.name)
        parser.prog = name
        for child in [parser, *_children(parser)]:
            for action in child._actions:
                if action.dest in SERVICE_ARGUMENTS:
                    action.complete = services
        scripts.append(shtab.complete(parser, shell, root_prefix=re.sub(r"\W", "_", name)))
    return "\n".join(scripts)


def _command_parser(name: str) -> argparse.ArgumentParser:
    """The parser of a command (an admin command's: its subparser)."""
    command = COMMANDS[name]
    if command.module == "admin":
        return _children(_parser(), name)[0]
    return importlib.import_module(f"tmt_ops.cli.{command.module}")._parser()


def _children(parser: argparse.ArgumentParser, *names: str) -> list[argparse.ArgumentParser]:
    """A parser's subcommand parsers (those named, or all)."""
    found = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [p for choices in found for n, p in choices.items() if not names or n in names]


def _whole_parser() -> argparse.ArgumentParser:
    """tmt-ops with every command under it, as completion reads it (cli/main.py dispatches by hand)."""
    parser = ArgumentParser(prog="tmt-ops")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        sub.choices[name] = _command_parser(name)
    return parser


def init(to: Path | None, root: Path | None, force: bool, printer: Printer) -> int:
    target = (to or _config_home() / "tmt-ops" / "services.yaml").absolute()
    root = (root or _state_home() / "tmt-ops").absolute()
    if os.path.lexists(target) and not force:  # lexists: a dangling symlink is something there too
        raise UsageError(f"{target} exists already: edit it, or pass --force to replace it with the starter")
    text = resources.files("tmt_ops").joinpath("starter.yaml").read_text(encoding="utf-8")
    text, found = ROOT_LINE.subn(rf"\1 {root}   # logs/ and .tmt-state/ (written by tmt-ops init)", text, count=1)
    if not found:
        raise ConfigError("the starter registry has no project.root line: the package is damaged, reinstall it")
    try:
        ensure_dir(root)
    except FileProblem as exc:
        raise ConfigError(f"{exc} (choose another --root)") from None
    try:  # a FIFO, device, directory or symlink at --to is refused, never written through
        ensure_dir(target.parent)
        write_atomic(target, text)
    except FileProblem as exc:
        raise ConfigError(str(exc)) from None
    load_registry(target)  # what it wrote must load, or say why
    printer.ok(f"wrote {target} (project.root {root}); the scripts find it from any directory")
    return 0


def systemd(args, registry, printer: Printer) -> int:
    from ..health.server import listen_text
    from ..systemd import account, units
    made = units(registry, args.mode or registry.default_mode, args.monitor_args,
                 (args.snapshot_dir or registry.log_dir).absolute(), user=account(args.user, os.geteuid()),
                 serve=listen_text(*args.serve) if args.serve else None, heal=args.heal)
    if args.write is None:
        write_out(sys.stdout, "\n".join(f"# ---- {name} ----\n{text}" for name, text in made.items()))
        return 0
    try:  # a unit's path that is a FIFO, device, directory or symlink is refused, never written through
        ensure_dir(args.write)
        for name, text in made.items():
            write_atomic(args.write / name, text)
    except FileProblem as exc:
        raise ConfigError(f"cannot write the units in {args.write}: {exc}") from None
    printer.ok(f"wrote {', '.join(made)} in {args.write}: `systemctl daemon-reload`, then "
               "`systemctl enable --now tmt-ops.service tmt-ops-monitor.service tmt-ops-health-snapshot.timer`")
    return 0


def history(args, registry, printer: Printer) -> int:
    """The journal, newest first: as a table for a person, or JSON."""
    from .. import journal
    from ..audit import describe
    service = registry.service(args.service).name if args.service else None
    records = journal.read(registry.state_dir, since=args.since, service=service, limit=args.limit)
    if args.json:
        write_out(sys.stdout, json.dumps({"version": 1, "journal": str(journal.path(registry.state_dir)),
                                          "records": records}, indent=2) + "\n")
        return 0
    out = Printer(sys.stdout, printer.redact)
    if not records:
        printer.info(f"nothing on record{' that matches' if args.since or service else ''} in "
                     f"{journal.path(registry.state_dir)}")
    styles = {"ok": "ok", "warning": "warn", "interrupted": "warn", "failed": "error"}
    for r in records:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(journal.began(r)))
        took = f" in {r['seconds']:g} s" if isinstance(r.get("seconds"), (int, float)) else ""
        changed = "" if r.get("changed", True) else ", nothing changed"
        out.line(f"{when}  {r.get('operation', '?')} {r.get('outcome', '?')}{took}{changed}  by "
                 f"{describe(r.get('who') or {})}", styles.get(r.get("outcome"), "dim"))
        out.line(f"    {', '.join(r.get('services') or ()) or 'no service'} ({r.get('mode', '?')} mode); "
                 f"exit {r.get('exit_code', '?')}: {r.get('last', '')}")
        out.line(f"    {r.get('command', '')}", "dim")
    return 0


def _main(argv: Sequence[str], printer: Printer) -> int:
    args = _parser().parse_args(argv)
    if args.command == "init":
        return init(args.to, args.root, args.force, printer)
    if args.command == "completion":
        write_out(sys.stdout, completion(args.shell))
        return 0
    if args.command == "systemd":
        return systemd(args, registry_from(args, printer), printer)
    if args.command == "history":
        return history(args, registry_from(args, printer), printer)
    if args.command == "alerts":
        from ..alerts import render
        write_out(sys.stdout, render(registry_from(args, printer), down_for=args.down_for, interval=args.interval,
                                     job=args.job))
        return 0
    registry = registry_from(args, printer)
    write_out(sys.stdout, "".join(f"{name}\n" for name in registry.services))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)
