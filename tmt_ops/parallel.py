"""Jobs at once, a thread each: what every layer runs side by side (a wave's services, its hooks, its probes)."""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

T = TypeVar("T")


def run_parallel(jobs: dict[str, Callable[[], T]]) -> dict[str, T]:
    """Run the jobs at once, a thread each, and wait for all of them (an interrupt only sets a flag: jobs that
    watch it return early, the others finish). A job's exception is raised here, after all have ended."""
    results: dict[str, T] = {}
    errors: list[BaseException] = []

    def run(name: str, job: Callable[[], T]) -> None:
        try:
            results[name] = job()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=item, name=f"wave-{item[0]}") for item in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return {name: results[name] for name in jobs}
