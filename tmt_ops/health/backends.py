"""What the deployment's backends say about their services, asked in threads while the probes run.

Each backend is asked for its own services only (native: process ids and whether they hold their ports;
docker: container state, engine health and published ports) and for the disks that matter to it. A backend
that cannot be asked (no engine answers) is named, and its services' answers cannot be attributed.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..backends import ServiceStatus
from ..data import dataclass, field
from ..errors import TmtError

if TYPE_CHECKING:
    from ..backends import Deployment


@dataclass
class BackendView:
    statuses: dict[str, ServiceStatus] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # backend name -> why it could not be asked
    disk_paths: list[Path] = field(default_factory=list)


class BackendQuery:
    """Starts asking every backend of the deployment at once; wait() returns what arrived by the deadline."""

    def __init__(self, deployment: "Deployment") -> None:
        self._answers: dict[str, BackendView] = {}
        self._threads = []
        for name, members in deployment.group(deployment.registry.services.values()).items():
            thread = threading.Thread(target=self._ask, args=(deployment.backend(name), members),
                                      name=f"backend-{name}", daemon=True)
            thread.start()
            self._threads.append((name, thread))

    def _ask(self, backend, members) -> None:
        try:
            view = BackendView(statuses=backend.statuses(members), disk_paths=backend.extra_disk_paths())
        except TmtError as exc:
            view = BackendView(problems={backend.name: str(exc)})
        except Exception as exc:  # a backend bug must not cost the probes' report
            view = BackendView(problems={backend.name: f"{backend.name} backend failed: {type(exc).__name__}: {exc}"})
        self._answers[backend.name] = view

    def wait(self, seconds: float) -> BackendView:
        view = BackendView()
        for name, thread in self._threads:
            thread.join(max(0.0, seconds))
            answer = self._answers.get(name) or BackendView(
                problems={name: f"the {name} backend did not answer within the round's deadline"})
            view.statuses.update(answer.statuses)
            view.problems.update(answer.problems)
            view.disk_paths += answer.disk_paths
        return view
