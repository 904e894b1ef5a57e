"""The pure parts behind --heal and --serve, without a process: the heal policy, the registry's heal: section,
the stop markers, the [HOST:]PORT parser and the server's bounded history."""

from __future__ import annotations

import json

import pytest

from tmt_ops import stopped
from tmt_ops.errors import ConfigError
from tmt_ops.health.heal import HOUR, HealPolicy
from tmt_ops.health.server import parse_listen
from tmt_ops.health.snapshot import HISTORY, HEALS, Publisher, readiness
from tmt_ops.registry import HealSettings, load_registry

# orchestrator <- market-analysis <- execution-engine; dashboard on its own; postgres is never passed as down
GRAPH = {"postgres": [], "orchestrator": ["postgres"], "market-analysis": ["orchestrator"],
         "execution-engine": ["orchestrator", "market-analysis"], "dashboard": []}


def policy(after_rounds=2, max_per_hour=3, backoff=10.0, backoff_max=60.0) -> HealPolicy:
    return HealPolicy(HealSettings(after_rounds, max_per_hour, backoff, backoff_max), GRAPH)


# -- the policy ----------------------------------------------------------------------------------------------------
def test_heals_a_service_down_after_rounds_in_a_row_and_a_running_round_resets_the_count():
    p = policy(after_rounds=3)
    assert p.decide({"dashboard"}, set(), 0).heal == ()
    assert p.decide({"dashboard"}, set(), 1).heal == ()
    assert p.decide(set(), set(), 2).heal == ()  # seen running: counting starts again
    assert [p.decide({"dashboard"}, set(), t).heal for t in (3, 4, 5)] == [(), (), ("dashboard",)]


def test_a_service_stopped_on_purpose_is_never_healed_and_said_once():
    p = policy(after_rounds=1)
    first = p.decide({"dashboard"}, {"dashboard"}, 0)
    assert first.heal == () and first.newly_marked == ("dashboard",)
    later = [p.decide({"dashboard"}, {"dashboard"}, t) for t in range(1, 10)]
    assert all(d.heal == () and d.newly_marked == () for d in later)
    assert p.decide(set(), set(), 10).heal == ()  # restarted by a person
    assert p.decide({"dashboard"}, set(), 11).heal == ("dashboard",)  # a crash now: healed


def test_a_service_whose_dependency_is_down_waits_for_that_ones_heal():
    p = policy(after_rounds=1)
    down = {"orchestrator", "market-analysis", "execution-engine"}
    assert p.decide(down, set(), 0).heal == ("orchestrator",)  # it brings its dependents back in order
    marked = p.decide(down, {"orchestrator"}, 100)  # the dependency was stopped on purpose: nothing to heal
    assert marked.heal == () and marked.newly_marked == ("orchestrator",)


def test_backoff_doubles_up_to_its_maximum():
    p = policy(after_rounds=1, max_per_hour=10, backoff=10, backoff_max=25)
    now, times = 0.0, []
    while len(times) < 4 and now < 200:
        decision = p.decide({"dashboard"}, set(), now)
        if decision.heal:
            times.append(now)
            p.attempted(decision.heal, decision.heal, now)
        now += 1
    assert [b - a for a, b in zip(times, times[1:])] == [10, 20, 25]


def test_the_cap_gives_up_until_the_service_runs_again_and_the_hour_slides():
    p = policy(after_rounds=1, max_per_hour=2, backoff=1, backoff_max=1)
    p.attempted(["dashboard"], ["dashboard"], 0)
    p.attempted(["dashboard"], ["dashboard"], 10)
    capped = p.decide({"dashboard"}, set(), 20)
    assert capped.heal == () and capped.newly_given_up == ("dashboard",) and capped.given_up == ("dashboard",)
    again = p.decide({"dashboard"}, set(), HOUR + 30)  # the hour has passed, but no one fixed it: still given up
    assert again.heal == () and again.newly_given_up == () and again.given_up == ("dashboard",)
    p.decide(set(), set(), HOUR + 40)  # a person brought it back
    assert p.decide({"dashboard"}, set(), HOUR + 50).heal == ("dashboard",)
    assert max(len(times) for times in p.attempts.values()) <= 2  # flat: never more than max_per_hour kept


def test_an_attempt_resets_the_down_count_of_everything_it_restarted():
    p = policy(after_rounds=2, backoff=0.1)
    for t in (0, 1):
        decision = p.decide({"market-analysis", "execution-engine"}, set(), t)
    assert decision.heal == ("market-analysis",)
    p.attempted(decision.heal, ["market-analysis", "execution-engine"], 1)
    assert p.decide({"execution-engine"}, set(), 2).heal == ()  # down afresh: one round is not enough


# -- the registry's heal: section ----------------------------------------------------------------------------------
BASE = """
services:
  a: {group: core, port: 9100, command: ["python", "-c", "pass"]}
"""


def test_heal_settings_default_and_the_shipped_ones(tmp_path):
    path = tmp_path / "services.yaml"
    path.write_text(BASE)
    assert load_registry(path).heal == HealSettings(2, 3, 60.0, 900.0)
    path.write_text("heal: {after_rounds: 4, max_per_hour: 1, backoff_seconds: 0.5, backoff_max_seconds: 5}\n" + BASE)
    assert load_registry(path).heal == HealSettings(4, 1, 0.5, 5.0)


@pytest.mark.parametrize("section, message", [
    ("{after_round: 2}", "heal: unknown key 'after_round' (did you mean 'after_rounds'?)"),
    ("{after_rounds: 0}", "heal: after_rounds: must be an integer from 1 to 1000, got 0"),
    ("{max_per_hour: 0}", "heal: max_per_hour: must be an integer from 1 to 1000, got 0"),
    ("{max_per_hour: 2.5}", "heal: max_per_hour: expected an integer, got number 2.5"),
    ("{backoff_seconds: 0}", "heal: backoff_seconds: must be a finite number from 0.1 to 86400 (seconds), got 0"),
    ("{backoff_seconds: 100, backoff_max_seconds: 10}",
     "heal: backoff_max_seconds must not be less than backoff_seconds"),
    ("[2]", "heal: expected a mapping, got list [2]"),
])
def test_a_bad_heal_section_is_one_line(tmp_path, section, message):
    path = tmp_path / "services.yaml"
    path.write_text(f"heal: {section}\n" + BASE)
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    assert str(info.value) == f"{path}: {message}"


# -- stop markers --------------------------------------------------------------------------------------------------
def test_stop_markers_are_written_read_and_cleared(tmp_path):
    state = tmp_path / "state"
    assert stopped.read(state) == {}  # no state directory: no markers
    stopped.mark(state, ["dashboard", "orchestrator"])
    found = stopped.read(state)
    assert set(found) == {"dashboard", "orchestrator"} and found["dashboard"].describe().startswith("stopped on purpose at")
    assert (state / "stopped").stat().st_mode & 0o777 == 0o700
    assert (state / "stopped" / "dashboard.json").stat().st_mode & 0o777 == 0o600
    (state / "stopped" / "orchestrator.json").write_text("{broken")
    assert stopped.read(state)["orchestrator"].describe() == "stopped on purpose (its marker is unreadable)"
    stopped.clear(state, ["dashboard", "orchestrator", "never-marked"])
    assert stopped.read(state) == {}


# -- --serve's address and bounded history -------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("9464", ("127.0.0.1", 9464)), (":9464", ("127.0.0.1", 9464)), ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("[::1]:9464", ("::1", 9464)), ("localhost:0", ("localhost", 0)),
])
def test_listen_addresses(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "host:", "1.2.3.4:65536", "::1:80", "9464x", "-1"])
def test_bad_listen_addresses_say_the_form(text):
    with pytest.raises(ValueError, match=r"\[HOST:\]PORT"):
        parse_listen(text)


def _document(n: int) -> dict:
    check = {"name": "a", "severity": "healthy", "status": "healthy", "response_time_ms": 1.5, "probe": "http",
             "url": "http://x/health", "error": None, "critical": True, "port_open": True, "port_holders": []}
    return {"schema_version": 1, "timestamp": "2026-01-01T00:00:00.000Z", "deployment_mode": "native",
            "overall_status": "healthy", "duration_ms": 5.0, "services": {"a": check}, "infrastructure": {},
            "system_metrics": {"cpu_percent": 1.0, "memory_percent": 2.0, "memory_available_bytes": 1, "disks": [],
                               "load_per_cpu": 0.1, "severity": {k: "healthy" for k in (
                                   "cpu_percent", "memory_percent", "disk_percent", "load_per_cpu")}},
            "issues": [], "findings": [], "critical_issues_count": 0, "round": n}


def test_the_history_and_heal_events_stay_bounded():
    publisher = Publisher(interval=1, deadline=4, heal=True)
    sizes = []
    for n in range(1, 3 * HISTORY + 1):
        publisher.heal_event({"event": "attempt", "services": ["a"], "message": f"attempt {n}"})
        sizes.append(len(publisher.round(n, _document(n)).rounds.data))
    data = json.loads(publisher.snapshot.rounds.data)
    assert len(data["history"]) == HISTORY and data["history"][-1]["round"] == 3 * HISTORY
    assert len(data["heals"]) == HEALS and data["healing"] == []
    assert max(sizes[HISTORY:]) < 1.05 * min(sizes[HISTORY:])  # about the same size once the ring is full


def test_readiness_wants_a_fresh_round_that_is_not_critical():
    publisher = Publisher(interval=1, deadline=4, heal=False)
    assert readiness(publisher.snapshot, publisher.stale_after, 0).status == 503  # no round yet
    made = publisher.round(1, _document(1)).made
    assert readiness(publisher.snapshot, publisher.stale_after, made + 1).status == 200
    stale = readiness(publisher.snapshot, publisher.stale_after, made + 7)
    assert stale.status == 503 and b"more than 6 s" in stale.data
    critical = dict(_document(2), overall_status="critical")
    made = publisher.round(2, critical).made
    assert readiness(publisher.snapshot, publisher.stale_after, made).status == 503



def test_a_service_whose_infrastructure_is_down_waits_for_a_person():
    p = policy(after_rounds=1)
    down = {"orchestrator", "market-analysis"}
    first = p.decide(down, set(), 0, infrastructure_down={"postgres"})
    assert first.heal == () and first.newly_waiting == {"orchestrator": ("postgres",), "market-analysis": ("postgres",)}
    assert p.decide(down, set(), 1, infrastructure_down={"postgres"}).newly_waiting == {}  # said once
    assert p.decide(down, set(), 2).heal == ("orchestrator",)  # a person started PostgreSQL
