"""Proof that a process belongs to a service the toolkit started, inherited by everything that service starts.

A run record names one pid; what that process starts (a wrapper's shell, the server, its workers) and what
outlives it must be recognised too, and nothing else may be. Two proofs, the strongest available:

- a cgroup v2 per service, where the cgroup2 hierarchy is writable (as systemd does): the kernel keeps every
  descendant in it whatever it does (double fork, setsid), no other process can be in it unless root moves
  it there, and an empty cgroup says the service is gone. Created as <cgroup2>/tmt-ops/<deployment>/<service>.
  The toolkit moves the new process in as it starts (join), not before: the kernel's first move into a
  cgroup costs about 10 ms, which the service's own start then does not wait for.
- everywhere, a run tag in the environment of the spawned process, which its descendants inherit:
  TMT_OPS_RUN=<deployment>/<service>/<run id>. Weaker (a program may clear its environment), so it is
  used only where no cgroup holds the service.

<deployment> is derived from the state directory's real path: two registries (production and a test on
free ports) never share a cgroup or a tag. TMT_CGROUPS=off keeps services out of cgroups of their own (for
a host whose cgroups another manager must own); the run tag still proves what is ours.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import psutil

RUN_VARIABLE = "TMT_OPS_RUN"
CGROUP_BASE = "tmt-ops"
CGROUPS_SWITCH = "TMT_CGROUPS"


@functools.lru_cache(maxsize=None)
def deployment(state_dir: Path) -> str:
    """Asked a few times per service per look: once per state directory per process (its real path then)."""
    return hashlib.sha256(os.path.realpath(state_dir).encode()).hexdigest()[:16]


def run_tag(state_dir: Path, service: str, run_id: str) -> str:
    return f"{deployment(state_dir)}/{service}/{run_id}"


def service_prefix(state_dir: Path, service: str) -> str:
    """What every run tag of this service starts with."""
    return f"{deployment(state_dir)}/{service}/"


# -- cgroup v2 -------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def cgroup2_mount() -> Path | None:
    """Where the cgroup2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
            for line in mounts:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "cgroup2":
                    return Path(left.split()[4].replace("\\040", " "))
    except OSError:
        pass
    return None


def cgroup_base() -> Path | None:
    """Where every deployment's cgroups are (<cgroup2>/tmt-ops); None where cgroup v2 is not mounted."""
    mount = cgroup2_mount()
    return None if mount is None else mount / CGROUP_BASE


def cgroup_dir(state_dir: Path, service: str) -> Path | None:
    """The service's cgroup directory (it may not exist yet); None where cgroup v2 is not mounted."""
    base = cgroup_base()
    return None if base is None else base / deployment(state_dir) / service


def make_cgroup(state_dir: Path, service: str) -> Path | None:
    """Create the service's cgroup; None where that is not possible here (no cgroup2, not writable) or not
    wanted (TMT_CGROUPS=off)."""
    path = cgroup_dir(state_dir, service)
    if path is None or os.environ.get(CGROUPS_SWITCH, "").lower() in ("0", "off", "no", "false"):
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path / "cgroup.procs", os.W_OK) else None


def cgroup_pids(path: Path | str) -> list[int]:
    """The pids in a cgroup (empty when it does not exist)."""
    try:
        return [int(line) for line in Path(path, "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def cgroup_of(pid: int) -> Path | None:
    """The cgroup v2 directory a process is in."""
    mount = cgroup2_mount()
    if mount is None:
        return None
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as f:
            for line in f:
                if line.startswith("0::"):
                    return mount / line[3:].strip().lstrip("/")
    except OSError:
        pass
    return None


def join(path: Path, pid: int) -> bool:
    """Move a just-spawned process into the cgroup, then whatever it has started meanwhile (forks wait while
    a move is under way, so what was forked before it is visible now; the sweep repeats until nothing of it
    is outside). False when it could not be moved (it is gone, or the cgroup refuses)."""
    procs = Path(path, "cgroup.procs")
    try:
        procs.write_text(str(pid))
        if _childless(pid):  # the common case (it has only just exec'd): no walk of every process's stat
            return True
        for _ in range(3):
            outside = [c.pid for c in psutil.Process(pid).children(recursive=True) if cgroup_of(c.pid) != Path(path)]
            if not outside:
                return True
            for child in outside:
                procs.write_text(str(child))
    except (OSError, psutil.NoSuchProcess):
        return False
    return True


def _childless(pid: int) -> bool:
    """True when none of the process's threads has a child (/proc/PID/task/TID/children); False when one has, or
    the kernel does not say (then the caller looks the long way)."""
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                if f.read().strip():
                    return False
    except OSError:
        return False
    return True


def remove_cgroup(path: Path | str) -> None:
    """Remove an empty cgroup and the deployment directory above it when that is empty too."""
    for folder in (Path(path), Path(path).parent):
        try:
            folder.rmdir()
        except OSError:  # not empty, still populated, or gone
            return


def kill_cgroup(path: Path | str) -> bool:
    """SIGKILL every process in the cgroup at once (cgroup.kill, Linux 5.14+); False where unavailable."""
    try:
        Path(path, "cgroup.kill").write_text("1")
        return True
    except OSError:
        return False


# -- run tags --------------------------------------------------------------------------------------------------
def tag_of(pid: int) -> str | None:
    """The process's TMT_OPS_RUN, from the environment it was started with."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:  # gone, or another user's
        return None
    marker = RUN_VARIABLE.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(marker):
            return entry[len(marker):].decode("utf-8", "replace")
    return None


def tagged(tag: str) -> list[psutil.Process]:
    """Every live process started with exactly this run tag: a scan of all processes, for when the record's
    leader is gone and no cgroup holds the service (rare: it costs a read per process)."""
    found = []
    for pid in psutil.pids():
        if pid != os.getpid() and tag_of(pid) == tag:
            try:
                p = psutil.Process(pid)
                if p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except psutil.NoSuchProcess:
                continue
    return found
