"""What a restart decides when its start or stop fails, breaks off or is interrupted: pure units over a backend
of plain data (tests/fake_backend.py), so every branch of the transaction is reached without a process."""

from __future__ import annotations

import pytest

from fake_backend import fake_deployment
from tmt_ops import operations
from tmt_ops.interrupts import Interrupts
from tmt_ops.native import definitions
from tmt_ops.registry import load_registry

CORE = ["orchestrator", "market-analysis", "execution-engine", "dashboard"]


class Lines:
    def __init__(self):
        self.lines = []

    def __getattr__(self, level):
        return lambda text="", *_: self.lines.append((level, text))

    def text(self) -> str:
        return "\n".join(text for _, text in self.lines)


@pytest.fixture
def running(registry_file):
    """A deployment whose four core services run their healthy "old" definition; a restart brings "new"."""
    registry = load_registry(registry_file())
    deployment, fake = fake_deployment(registry, running=dict.fromkeys(CORE, "old"),
                                       healthy=dict.fromkeys(CORE, "old"))
    return deployment, fake


def restart(deployment, *, interrupts=None):
    events = Lines()
    services = operations.select(deployment, None)
    result = operations.restart(deployment, services, operations.Options(skip_health_check=True), events, interrupts)
    return result, events


def test_a_new_definition_that_fails_is_rolled_back_and_what_came_up_new_stays(running):
    deployment, fake = running
    fake.broken.add(("market-analysis", "new"))
    result, events = restart(deployment)
    assert result.exit_code == 1 and "the restart failed (market-analysis: new exited at once)" in result.last
    assert fake.running == {"orchestrator": "new", "market-analysis": "old", "execution-engine": "old",
                            "dashboard": "old"}
    assert fake.healthy["orchestrator"] == "new" and fake.healthy["market-analysis"] == "old"


def test_a_non_critical_service_rolled_back_is_a_warning(running):
    deployment, fake = running
    fake.broken.add(("dashboard", "new"))
    result, _ = restart(deployment)
    assert result.exit_code == 0 and result.last.startswith("warning: the restart failed (dashboard")
    assert fake.running["dashboard"] == "old"


def test_what_failed_with_the_very_definition_it_would_come_back_to_is_not_tried_again(running):
    deployment, fake = running
    fake.healthy.pop("execution-engine")  # nothing kept: its way back is the registry's own, which is what failed
    fake.broken.add(("execution-engine", "new"))
    result, _ = restart(deployment)
    assert result.exit_code == 1 and "not rolled back: it failed with the very definition" in result.last
    assert [entry for entry in fake.log if entry[:2] == ("started", "execution-engine")] == [
        ("started", "execution-engine", "new")]
    assert fake.running["dashboard"] == "old" and "execution-engine" not in fake.running


def test_a_start_that_breaks_off_on_an_error_is_rolled_back(running):
    deployment, fake = running
    fake.raises.add(("start", "market-analysis"))
    original = fake.execute_start

    def once(steps, events, cancel):  # the engine comes back for the rollback
        try:
            return original(steps, events, cancel)
        except RuntimeError:
            fake.raises.clear()
            raise
    fake.execute_start = once
    result, events = restart(deployment)
    assert result.exit_code == 1 and "the start broke off on an internal error (RuntimeError" in events.text()
    # everything this run took down comes back as it last ran healthy (orchestrator included: its new start was
    # not seen through to the end)
    assert set(fake.running) == set(CORE)
    assert fake.running["market-analysis"] == "old" and fake.running["dashboard"] == "old"


def test_a_rollback_that_breaks_off_too_says_what_runs_and_never_raises(running):
    deployment, fake = running
    fake.raises.add(("start", "market-analysis"))
    result, events = restart(deployment)
    assert result.exit_code == 1 and "the rollback broke off on an internal error" in events.text()
    assert "now running: orchestrator; not running: market-analysis" in events.text()


def test_a_stop_that_breaks_off_on_an_error_starts_again_what_it_stopped(running):
    deployment, fake = running
    fake.raises.add(("stop", "market-analysis"))
    result, events = restart(deployment)
    assert result.exit_code == 1 and result.last.startswith("the stop broke off on an internal error")
    assert set(fake.running) == set(CORE) and all(v == "old" for v in fake.running.values())
    assert "traceback" in events.text().lower()  # the bug's traceback went to the detail (log) lines
    assert "not running" not in result.last  # what the stop never reached runs on; it is not reported down


def test_a_service_told_to_stop_working_that_the_stop_never_reached_works_again(running):
    """The orchestrator's pre-stop call (trading off) answered, then its stop broke off before any signal: it
    runs on, and the restart's putting back undoes the pre-stop with its post-start call."""
    deployment, fake = running
    fake.raises.add(("stop", "orchestrator"))
    result, events = restart(deployment)
    assert result.exit_code == 1 and result.last.startswith("the stop broke off on an internal error")
    assert "orchestrator: pre-stop POST /api/trading/disable -> HTTP 200" in events.text()
    assert "orchestrator: its pre-stop POST /api/trading/disable is undone: it works as before" in events.text()
    assert fake.running["orchestrator"] == "old" and "not running" not in result.last


def test_an_interrupt_in_the_start_half_puts_back_what_is_not_up(running):
    deployment, fake = running
    interrupts = Interrupts()
    original = fake.execute_start

    def interrupted_after_first_wave(steps, events, cancel):
        done = original(steps, events, cancel)
        interrupts.requested.set()  # Ctrl-C while the first wave came up
        return done
    fake.execute_start = interrupted_after_first_wave
    interrupts.begin_changes("test")
    result, _ = restart(deployment, interrupts=interrupts)
    assert result.exit_code == 130 and "what this run stopped was started again" in result.last
    assert fake.running["orchestrator"] == "new"
    assert all(fake.running[n] == "old" for n in CORE[1:])


@pytest.mark.parametrize("env", [None, {}, {"LOG_LEVEL": "info"}])
def test_a_kept_definition_reads_back_as_the_registry_s_own(registry_file, env):
    """What a restore starts is the registry's own when nothing changed: a service that failed with it is not tried
    again, and a start in flight of it is kept. A service with no variables written (or `env: {}`) included."""
    def written(data):
        data["services"]["dashboard"].pop("env", None)
        if env is not None:
            data["services"]["dashboard"]["env"] = env
    registry = load_registry(registry_file(edit=written))
    dashboard = registry.service("dashboard")
    assert definitions.keep(registry, dashboard) is None
    service, note, same = definitions.restorable(registry, [dashboard])["dashboard"]
    assert same and note.endswith(", the registry's own"), note
    assert dict(service.definition) == dict(dashboard.definition)
