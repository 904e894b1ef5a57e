"""python -m tmt_ops COMMAND [ARGS]: the five scripts by name (what systemd units run), and the admin
commands of tmt-ops (init, systemd, completion, services)."""

from __future__ import annotations

import importlib
import sys

SCRIPTS = {"restart": "restart", "stop": "stop", "quick-restart": "quick_restart", "docker": "docker",
           "health": "health"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SCRIPTS:
        return importlib.import_module(f"tmt_ops.cli.{SCRIPTS[argv[0]]}").main(argv[1:])
    from .cli.admin import main as admin
    return admin(argv)


if __name__ == "__main__":
    sys.exit(main())
