"""A service's build step (registry `build:`, e.g. `npm run build` before `next start`), run in a restart's prepare
step: before anything is stopped, as compose builds images before `down`, so a build that fails stops nothing.

A build is skipped when its declared inputs (file patterns relative to the service's cwd) are as they were when
it last succeeded: their paths, sizes and modification times, kept in the state directory (`built/<service>`). A
build without inputs runs every time. Its output goes to the service's log (this run's marker first), and a
failure shows its last lines. `--no-build` skips every build.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

from .. import files, statedir
from ..errors import OperationFailed
from ..events import Events
from ..loglines import MARKER
from ..registry import Registry, Service
from .spawn import environment_of

KIND = "built"  # sub-directory of the state directory
SHOWN = 12  # lines of a failed build's output


def fingerprint(service: Service) -> str | None:
    """What the inputs are now (None: no inputs declared, so always build)."""
    build = service.build
    if not build.inputs:
        return None
    digest = hashlib.sha256()
    for pattern in build.inputs:
        for path in sorted(build.cwd.glob(pattern)):
            try:
                info = path.stat()
            except OSError:
                continue
            if path.is_file():
                digest.update(f"{path.relative_to(build.cwd)}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _up_to_date(registry: Registry, service: Service, now: str | None) -> bool:
    if now is None:
        return False
    try:
        kept = statedir.read(registry.state_dir, KIND, service.name)
    except statedir.StateError:
        return False
    return bool(kept) and kept.get("inputs") == now


def run(registry: Registry, service: Service, events: Events) -> None:
    """Build the service if its inputs changed; OperationFailed (its output's last lines) when the build fails."""
    now = fingerprint(service)
    if _up_to_date(registry, service, now):
        events.detail(f"{service.name}: build skipped: its inputs are as they were at its last build")
        return
    build = service.build
    events.info(f"{service.name}: building ({' '.join(build.command)})")
    log = registry.log_file(service)
    try:
        files.ensure_dir(log.parent, files.PRIVATE_DIR)
        out = files.open_append(log)
    except files.FileProblem as exc:
        raise OperationFailed(f"{service.name}: cannot write its log: {exc}") from None
    began = time.monotonic()
    with out:
        out.write(f"{MARKER}{service.name} build at {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
        out.flush()
        offset = out.tell()
        try:
            process = subprocess.Popen(list(build.command), cwd=build.cwd, env=environment_of(service),
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        except OSError as exc:
            raise OperationFailed(f"{service.name}: cannot run its build {build.command[0]}: {exc.strerror}") from None
        try:
            code = process.wait(build.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code = None
        except BaseException:  # Ctrl-C before any change: the build goes with the run
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    if code != 0:
        why = f"still running after {build.timeout:g}s (build.timeout)" if code is None else f"exited with code {code}"
        raise OperationFailed(f"{service.name}: its build {why}; nothing was stopped; its output:\n"
                              + "\n".join(f"    | {line}" for line in _output(log, offset)))
    events.ok(f"{service.name}: built in {time.monotonic() - began:.1f}s")
    if now is not None:
        try:
            statedir.write(registry.state_dir, KIND, service.name, {"service": service.name, "inputs": now,
                                                                     "at": time.time()})
        except statedir.StateError as exc:
            events.warn(f"{service.name}: cannot keep its build's inputs ({exc}): the next restart builds it again")


def _output(log: Path, offset: int) -> list[str]:
    try:
        data, _ = files.read_part(log, offset, 256 * 1024)
    except (OSError, files.FileProblem):
        return []
    return data.decode("utf-8", "replace").splitlines()[-SHOWN:]
