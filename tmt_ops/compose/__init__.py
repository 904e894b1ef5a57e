"""Docker mode: the stack run by docker compose (v2, else v1), its state read from the engine.

Cheap to import: this module imports nothing heavy; submodules load on first use. The contract other
scripts use: project_running, statuses, restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..backend import ServiceStatus
    from ..console import Printer
    from ..interrupts import Interrupts
    from ..registry import Registry


def project_running(registry: "Registry") -> bool:
    """True when a container of this registry's compose project runs (False when no engine answers)."""
    from ..errors import ConfigError
    from .engine import Engine
    engine = Engine(timeout=2)
    try:
        return any(c["State"] == "running" for c in engine.listed(registry.compose_project))
    except ConfigError:
        return False


def statuses(registry: "Registry") -> dict[str, "ServiceStatus"]:
    """Registry service name -> its container's state and engine health; a stack service without a
    container is STOPPED. Raises ConfigError when no engine answers."""
    from .project import Project
    from .status import service_statuses
    return service_statuses(Project(registry))


def restart(registry: "Registry", printer: "Printer", interrupts: "Interrupts", *, force: bool = False,
            skip_health_check: bool = False) -> int:
    """Preflight, build, stop, start and validate the stack; the exit code (0 done, 1 failed, 130 interrupted).

    `force` changes nothing here: the engine always SIGKILLs a container still running after its grace.
    """
    from .ops import restart as restart_project
    from .project import Project
    from .status import print_table
    return restart_project(Project(registry), printer, interrupts, skip_health_check=skip_health_check,
                           show_status=lambda project: print_table(project, printer))
