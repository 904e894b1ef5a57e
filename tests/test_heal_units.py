"""The pure parts behind --heal and --serve, without a process: the heal policy, the registry's heal: section,
the stop markers, the [HOST:]PORT parser and the server's bounded history."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tmt_ops import statedir, stopped
from tmt_ops.errors import ConfigError
from tmt_ops.heal.policy import HOUR, HealPolicy
from tmt_ops.health.server import parse_listen
from tmt_ops.health.snapshot import HISTORY, HEALS, Publisher, readiness
from tmt_ops.registry import HealSettings, load_registry

# orchestrator <- market-analysis <- execution-engine; dashboard on its own; postgres is never passed as down
GRAPH = {"postgres": [], "orchestrator": ["postgres"], "market-analysis": ["orchestrator"],
         "execution-engine": ["orchestrator", "market-analysis"], "dashboard": []}


MARKED = {"dashboard": "was stopped on purpose"}  # a stop marker's words


def policy(after_rounds=2, max_per_hour=3, backoff=10.0, backoff_max=60.0) -> HealPolicy:
    return HealPolicy(HealSettings(after_rounds, max_per_hour, backoff, backoff_max), GRAPH)


# -- the policy ----------------------------------------------------------------------------------------------------
def test_heals_a_service_down_after_rounds_in_a_row_and_a_running_round_resets_the_count():
    p = policy(after_rounds=3)
    assert p.decide({"dashboard"}, {}, 0).heal == ()
    assert p.decide({"dashboard"}, {}, 1).heal == ()
    assert p.decide(set(), {}, 2).heal == ()  # seen running: counting starts again
    assert [p.decide({"dashboard"}, {}, t).heal for t in (3, 4, 5)] == [(), (), ("dashboard",)]


def test_a_service_stopped_on_purpose_is_never_healed_and_said_once():
    p = policy(after_rounds=1)
    first = p.decide({"dashboard"}, MARKED, 0)
    assert first.heal == () and first.newly_marked == ("dashboard",)
    later = [p.decide({"dashboard"}, MARKED, t) for t in range(1, 10)]
    assert all(d.heal == () and d.newly_marked == () for d in later)
    assert p.decide(set(), {}, 10).heal == ()  # restarted by a person
    assert p.decide({"dashboard"}, {}, 11).heal == ("dashboard",)  # a crash now: healed


def test_a_service_whose_dependency_is_down_waits_for_that_ones_heal():
    p = policy(after_rounds=1)
    down = {"orchestrator", "market-analysis", "execution-engine"}
    assert p.decide(down, {}, 0).heal == ("orchestrator",)  # it brings its dependents back in order
    marked = p.decide(down, {"orchestrator": "was stopped on purpose"}, 100)  # stopped on purpose: nothing to heal
    assert marked.heal == () and marked.newly_marked == ("orchestrator",)


def test_backoff_doubles_up_to_its_maximum():
    p = policy(after_rounds=1, max_per_hour=10, backoff=10, backoff_max=25)
    now, times = 0.0, []
    while len(times) < 4 and now < 200:
        decision = p.decide({"dashboard"}, {}, now)
        if decision.heal:
            times.append(now)
            p.attempted(decision.heal, decision.heal, now)
        now += 1
    assert [b - a for a, b in zip(times, times[1:])] == [10, 20, 25]


def test_the_cap_gives_up_until_the_service_runs_again_and_the_hour_slides():
    p = policy(after_rounds=1, max_per_hour=2, backoff=1, backoff_max=1)
    p.attempted(["dashboard"], ["dashboard"], 0)
    p.attempted(["dashboard"], ["dashboard"], 10)
    capped = p.decide({"dashboard"}, {}, 20)
    assert capped.heal == () and capped.newly_given_up == ("dashboard",) and capped.given_up == ("dashboard",)
    again = p.decide({"dashboard"}, {}, HOUR + 30)  # the hour has passed, but no one fixed it: still given up
    assert again.heal == () and again.newly_given_up == () and again.given_up == ("dashboard",)
    p.decide(set(), {}, HOUR + 40)  # a person brought it back
    assert p.decide({"dashboard"}, {}, HOUR + 50).heal == ("dashboard",)
    assert max(len(times) for times in p.attempts.values()) <= 2  # flat: never more than max_per_hour kept


def test_an_attempt_resets_the_down_count_of_everything_it_restarted():
    p = policy(after_rounds=2, backoff=0.1)
    for t in (0, 1):
        decision = p.decide({"market-analysis", "execution-engine"}, {}, t)
    assert decision.heal == ("market-analysis",)
    p.attempted(decision.heal, ["market-analysis", "execution-engine"], 1)
    assert p.decide({"execution-engine"}, {}, 2).heal == ()  # down afresh: one round is not enough



# -- stopped on purpose outlives the state it was read from --------------------------------------------------------
A, B = (1, 10, "stamp-a"), (1, 10, "stamp-b")  # state directory identities: B took A's inode after A was removed


def test_a_marker_seen_once_holds_after_it_vanished_until_the_service_is_seen_running():
    p = policy(after_rounds=1)
    first = p.decide({"dashboard"}, MARKED, 0, state=A)
    assert first.heal == () and first.newly_marked == ("dashboard",)
    gone = [p.decide({"dashboard"}, {}, t, state=None) for t in (1, 2, 3)]  # removed with its state directory
    assert all(d.heal == () and d.newly_marked == () for d in gone)
    assert gone[0].lost == ("dashboard",) and gone[1].lost == ()  # said once
    p.decide(set(), {}, 4, state=None)  # a restart or start brought it up
    assert p.decide({"dashboard"}, {}, 5, state=None).heal == ("dashboard",)  # a crash now: healed


def test_what_its_backend_cannot_say_is_not_seen_running():
    p = policy(after_rounds=1)
    p.decide({"dashboard"}, MARKED, 0, state=A)
    p.decide(set(), {}, 1, unseen={"dashboard"}, state=None)
    assert p.decide({"dashboard"}, {}, 2, state=None).heal == ()


@pytest.mark.parametrize("before, after, lost", [
    (A, A, False), (A, None, True), (A, B, True), (A, (2, 10, "stamp-a"), True),  # a copy: another inode
    (None, A, False),  # the first state directory (none when the monitor started): nothing was read, nothing lost
    (None, None, False),
])
def test_a_state_directory_lost_between_two_rounds_holds_what_is_down_then(before, after, lost):
    p = policy(after_rounds=1)
    p.decide(set(), {}, 0, state=before)
    decision = p.decide({"dashboard", "execution-engine"}, {}, 1, unseen={"market-analysis"}, state=after)
    if lost:  # no marker was seen, but one may have gone with the state directory: not seen running is held
        assert decision.heal == () and decision.lost == ("market-analysis", "execution-engine", "dashboard")
        assert decision.newly_marked == ()  # said in the one line of the loss
        assert p.decide({"dashboard"}, {}, 2, state=after).heal == ()
    else:
        assert decision.heal == ("execution-engine", "dashboard") and decision.lost == ()


def test_after_a_loss_what_goes_down_later_is_healed_as_usual():
    p = policy(after_rounds=1)
    p.decide(set(), {}, 0, state=A)
    assert p.decide({"dashboard"}, {}, 1, state=B).lost == ("dashboard",)
    later = p.decide({"dashboard", "orchestrator"}, {}, 2, state=B)
    assert later.heal == ("orchestrator",) and later.lost == ()


def test_an_unreadable_state_directory_is_said_once_and_keeps_what_was_read_before():
    p = policy(after_rounds=1)
    p.decide({"dashboard"}, MARKED, 0, state=A)
    assert p.cannot_read() is True and p.cannot_read() is False  # said once ...
    assert p.decide({"dashboard"}, {}, 1, state=A).lost == ()  # ... the same one again: nothing lost
    assert p.cannot_read() is True  # ... until it could be read again
    assert p.decide({"dashboard"}, {}, 2, state=B).lost == ("dashboard",)  # unreadable, then another one


def test_under_the_lock_the_same_rules_hold():
    p = policy(after_rounds=1)
    assert p.decide({"dashboard"}, {}, 0, state=A).heal == ("dashboard",)
    assert p.observe({"dashboard"}, {"orchestrator"}, {}, B) == ("dashboard",)  # replaced since the round
    assert "dashboard" in p.intended and p.decide({"dashboard"}, {}, 1, state=B).lost == ()
    assert p.observe({"execution-engine"}, {"dashboard"}, {"execution-engine": "was stopped"}, B) == ()
    assert set(p.intended) == {"execution-engine"}

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


def test_stop_markers_left_without_waiting_for_the_disk_are_synced_later_and_a_fifo_is_refused(tmp_path):
    """A stop marks each service before its signal without an fsync, and syncs the markers while they shut down:
    a marker taken back meanwhile is nothing to sync; what is not a regular file there is an error, not a hang."""
    state = tmp_path / "state"
    stopped.mark(state, ["dashboard", "orchestrator"], durable=False)
    assert set(stopped.read(state)) == {"dashboard", "orchestrator"}
    stopped.clear(state, ["orchestrator"])
    stopped.sync(state, ["dashboard", "orchestrator"])
    assert set(stopped.read(state)) == {"dashboard"}
    os.mkfifo(state / "stopped" / "execution-engine.json")
    with pytest.raises(statedir.StateError, match="not a regular file"):
        stopped.sync(state, ["execution-engine"])



def test_the_identity_of_a_state_directory_tells_a_new_one_and_a_copy_from_the_old(tmp_path):
    state = tmp_path / "state"
    assert statedir.identity(state) is None  # none yet
    stopped.mark(state, ["dashboard"])
    first = statedir.identity(state)
    assert first is not None and statedir.identity(state) == first  # the same one, asked again
    shutil.rmtree(state)
    stopped.mark(state, ["dashboard"])  # made again, maybe with the very same inode number: not the same one
    again = statedir.identity(state)
    assert again != first and again[2] != first[2]
    shutil.copytree(state, tmp_path / "copy")
    shutil.rmtree(state)
    (tmp_path / "copy").rename(state)  # a copy put in its place, stamp and all
    assert statedir.identity(state) not in (first, again)
    shutil.rmtree(state)
    state.write_text("")
    with pytest.raises(statedir.StateError, match="is a regular file, not a directory"):
        statedir.identity(state)

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
             "url": "http://x/health", "error": None, "critical": True, "port_open": True, "port_holders": [],
             "probe_status": "healthy"}
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
    first = p.decide(down, {}, 0, infrastructure_down={"postgres"})
    assert first.heal == () and first.newly_waiting == {"orchestrator": ("postgres",), "market-analysis": ("postgres",)}
    assert p.decide(down, {}, 1, infrastructure_down={"postgres"}).newly_waiting == {}  # said once
    assert p.decide(down, {}, 2).heal == ("orchestrator",)  # a person started PostgreSQL
