"""Notifications (notify.py) end to end: the real scripts, the simulated stack on free ports, and a local webhook
receiver (a real HTTP server) standing in for Slack and for a generic JSON webhook. What is sent for a restart, a
stop, a failed restart, a heal and a monitor's state changes; a flapping service sends no more than the monitor
prints; no message, line or log carries a secret or the webhook URL; a webhook that hangs or refuses costs an
operation at most a few seconds and one warning line."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from native_support import recorded_pids, restart, stop
from support import free_ports, run_script, wait_for
from webhook_receiver import Receiver
from tmt_ops import notify

API_KEY = "oanda-live-key-7f3a9c2e51"
TOKEN = "xoxb-hook-token-5d8e1b"  # the secret part of a Slack webhook URL


@pytest.fixture
def slack():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def generic():
    receiver = Receiver()
    yield receiver
    receiver.close()


def hooks(slack: Receiver, generic: Receiver | None = None) -> dict:
    env = {"SLACK_WEBHOOK_URL": slack.url(f"/services/T0/B0/{TOKEN}"), "OANDA_API_KEY": API_KEY}
    if generic is not None:
        env["TMT_WEBHOOK_URL"] = generic.url(f"/generic/{TOKEN}")
    return env


def leaks(text: str, env: dict) -> list[str]:
    """The secrets of `env` (the key, the token, each URL) that appear in text."""
    secrets = [API_KEY, TOKEN, *(v for k, v in env.items() if k.endswith("WEBHOOK_URL"))]
    return [s for s in secrets if s in text]


def everything_written(cfg: Path) -> str:
    """The toolkit's log and its journal (a service's own log is the service's: it writes what it likes)."""
    data = yaml.safe_load(cfg.read_text())
    files = [*Path(data["project"]["log_dir"]).glob("tmt-ops.log*"),
             *(Path(data["project"]["state_dir"]) / "journal").glob("journal.jsonl*")]
    assert files
    return "\n".join(p.read_text(errors="replace") for p in files)


def test_a_restart_and_a_stop_are_told_to_slack_and_the_generic_webhook(registry_file, slack, generic):
    cfg = registry_file()
    env = {**hooks(slack, generic), "SSH_CLIENT": "10.20.30.40 51234 22"}
    done = restart(cfg, env=env)
    assert done.returncode == 0, done.stderr
    stopped = stop(cfg, "--only", "dashboard", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert wait_for(lambda: len(slack.requests) == 2 and len(generic.requests) == 2, 5), (slack.requests, generic.requests)
    first, second = slack.messages()
    assert first["text"].startswith("restart done on ") and "(by root from ssh 10.20.30.40)" in first["text"]
    fields = {f["text"].split("\n")[0]: f["text"].split("\n", 1)[1] for f in first["blocks"][1]["fields"]}
    assert fields["*Who*"] == "root from ssh 10.20.30.40" and fields["*Mode*"] == "native"
    assert fields["*Services*"] == "orchestrator, market-analysis, execution-engine, dashboard"
    assert fields["*Took*"].endswith(" s") and fields["*Exit code*"] == "0"
    assert "• `orchestrator`: running (pid " in first["blocks"][2]["text"]["text"]
    assert second["text"].startswith("stop done on ") and "stopped 1 service(s)" in second["text"]
    assert all(r["headers"]["Content-Type"].startswith("application/json") for r in slack.requests)
    ops = generic.messages()
    assert [(m["type"], m["operation"], m["outcome"], m["exit_code"]) for m in ops] == \
        [("operation", "restart", "ok", 0), ("operation", "stop", "ok", 0)]
    assert ops[0]["results"]["market-analysis"]["state"] == "running" and ops[0]["who"]["ssh_client"] == "10.20.30.40"
    assert ops[1]["command"].endswith("stop-trading-system.py --config " + str(cfg) + " --only dashboard")
    assert ops[0]["project"] == "tmt" and ops[0]["host"] and ops[0]["seconds"] > 0 and ops[0]["changed"] is True
    stop(cfg)


def test_a_failed_restart_is_told_as_failed_and_no_message_line_or_log_carries_a_secret(registry_file, slack, generic):
    """The new market-analysis dies at start printing the API key its command carries (an argparse error, shown with
    its output); and the registry it runs from sits in a directory named like the key, so the command line that
    every record and message carries has the key in it."""
    cfg = registry_file()
    env = hooks(slack, generic)
    assert restart(cfg, env=env).returncode == 0
    data = yaml.safe_load(cfg.read_text())
    data["services"]["market-analysis"]["command"] += ["--oanda-key=${OANDA_API_KEY}"]
    broken = cfg.parent / API_KEY / "broken.yaml"
    broken.parent.mkdir()
    broken.write_text(yaml.safe_dump(data, sort_keys=False))
    failed = restart(broken, "--only", "market-analysis", env=env)
    assert failed.returncode == 1, failed.stderr
    assert wait_for(lambda: len(slack.requests) == 2 and len(generic.requests) == 2, 5)
    told = slack.messages()[1]
    assert told["text"].startswith("restart FAILED on ") and "rolled back" in told["text"], told
    detail = told["blocks"][2]["text"]["text"]
    assert "`market-analysis`: running" in detail and "rolled back to" in detail, detail
    record = generic.messages()[1]
    assert (record["outcome"], record["exit_code"], record["changed"]) == ("failed", 1, True)
    bodies = "\n".join(r["body"].decode() for r in slack.requests + generic.requests)
    assert "/***/broken.yaml" in bodies  # the key did reach every message of this restart, masked
    assert "--oanda-key=***" in failed.stderr
    for text in (bodies, failed.stderr, failed.stdout, everything_written(cfg)):
        assert leaks(text, env) == []
    stop(cfg)


def test_a_heal_and_the_state_changes_it_follows_are_told(registry_file, monitors, slack, generic):
    cfg = registry_file(edit=lambda d: d["heal"].update(after_rounds=2, backoff_seconds=1))
    env = hooks(slack, generic)
    assert restart(cfg).returncode == 0
    m = monitors(cfg, "--interval", "0.3", "--heal", "--json", env=env)
    assert m.wait_event(lambda e: e["type"] == "round" and e["services"]["execution-engine"]["status"] == "healthy")
    os.killpg(os.getpgid(recorded_pids(cfg)["execution-engine"]), signal.SIGKILL)
    healed = slack.wait(lambda x: "healed in" in x["text"], 40)
    assert healed is not None, [x["text"] for x in slack.messages()]
    back = slack.wait(lambda x: x["text"].startswith("execution-engine: unhealthy -> healthy"), 10)
    assert back is not None, [x["text"] for x in slack.messages()]
    m.stop()
    texts = [x["text"] for x in slack.messages()]
    down = [t for t in texts if t.startswith("CRITICAL: execution-engine: healthy -> unhealthy on ")]
    attempts = [t for t in texts if "restarting execution-engine" in t and "(attempt 1 of at most 3" in t]
    assert len(down) == 1 and len(attempts) == 1, texts
    assert texts.index(down[0]) < texts.index(attempts[0]) < texts.index(healed["text"]) < texts.index(back["text"])
    kinds = [(e["type"], e.get("event") or e.get("subject")) for e in generic.messages()
             if not (e["type"] == "state_change" and e["subject"].startswith("system:"))]
    assert ("state_change", "execution-engine") in kinds and ("heal", "attempt") in kinds and ("heal", "result") in kinds
    change = next(e for e in generic.messages() if e["type"] == "state_change" and e["new"] == "unhealthy")
    assert change["severity"] == "critical" and change["old"] == "healthy" and change["held_rounds"] == 2
    # exactly what the monitor printed: each state change line is one message, no more
    printed = [e for e in m.events() if e["type"] == "state_change"]
    assert sorted((e["subject"], e["new"]) for e in printed) == \
        sorted((e["subject"], e["new"]) for e in generic.messages() if e["type"] == "state_change")
    stop(cfg)


class Flapping:
    """An HTTP health endpoint that answers 200 and 503 in turns (flapping), or always 503 (down)."""

    def __init__(self, port: int):
        self.mode, self.answers = "flap", []
        flapping = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ok = flapping.mode == "flap" and len(flapping.answers) % 2 == 0 or flapping.mode == "up"
                flapping.answers.append(200 if ok else 503)
                body = json.dumps({"status": "ok" if ok else "down"}).encode()
                self.send_response(200 if ok else 503)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_flapping_service_sends_one_message_per_reported_change_not_per_flap(registry_file, monitors, slack, generic):
    port = free_ports(1)[0]
    flapping = Flapping(port)
    try:
        cfg = registry_file(edit=lambda d: d["services"]["grafana"].update(port=port))
        m = monitors(cfg, "--interval", "0.2", "--json", env=hooks(slack, generic))
        assert wait_for(lambda: len(flapping.answers) >= 12, 20), m.err  # 12 rounds of flapping
        flapping.mode = "down"
        assert wait_for(lambda: any(e["type"] == "state_change" and e["subject"] == "grafana" for e in m.events()), 10)
        seen = len(flapping.answers)
        flapping.mode = "up"
        assert wait_for(lambda: len(flapping.answers) >= seen + 5, 10)
        m.stop()
    finally:
        flapping.close()
    printed = [(e["old"], e["new"]) for e in m.events() if e["type"] == "state_change" and e["subject"] == "grafana"]
    assert printed == [("healthy", "unhealthy"), ("unhealthy", "healthy")], printed
    assert wait_for(lambda: len([x for x in generic.messages() if x.get("subject") == "grafana"]) == 2, 5)
    told = [(x["old"], x["new"]) for x in generic.messages() if x.get("subject") == "grafana"]
    assert told == printed  # 12 flaps and 2 changes: 2 messages
    assert len([x for x in slack.messages() if "grafana" in x["text"]]) == 2


@pytest.fixture
def running(registry_file):
    cfg = registry_file()
    assert restart(cfg).returncode == 0
    yield cfg
    stop(cfg)


def _timed(cfg, env) -> tuple[float, object]:
    began = time.monotonic()
    done = restart(cfg, "--only", "dashboard", env=env)
    return time.monotonic() - began, done


def test_a_webhook_that_hangs_costs_a_restart_at_most_a_few_seconds_and_one_warning(running):
    hanging = Receiver("hang")
    try:
        baseline, plain = _timed(running, {})
        took, done = _timed(running, {"SLACK_WEBHOOK_URL": hanging.url(f"/services/{TOKEN}")})
    finally:
        hanging.close()
    assert plain.returncode == 0 and done.returncode == 0, done.stderr
    assert len(hanging.requests) >= 1  # it was asked, and never answered
    assert took - baseline <= notify.BUDGET + 1, (took, baseline)
    warnings = [line for line in done.stderr.splitlines() if line.startswith("notify:")]
    assert warnings == [f"notify: 1 message(s) not delivered within {notify.BUDGET:g} s (the Slack webhook "
                        f"$SLACK_WEBHOOK_URL: no answer within {notify.TIMEOUT:g} s): given up; the operation is not "
                        "affected"], done.stderr
    assert TOKEN not in done.stderr and TOKEN not in everything_written(running)
    assert "notify: 1 message(s) not delivered" in everything_written(running)  # and the log line


def test_a_webhook_that_refuses_is_one_warning_line(running):
    closed = free_ports(1)[0]
    took, done = _timed(running, {"TMT_WEBHOOK_URL": f"http://127.0.0.1:{closed}/{TOKEN}"})
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("notify:")]
    assert warnings == ["notify: a message to the JSON webhook $TMT_WEBHOOK_URL was not delivered (connection refused, "
                        "3 tries); the operation is not affected (until it delivers again, the log alone says so)"]
    assert done.stderr.rstrip().splitlines()[-1] == warnings[0]
    assert TOKEN not in done.stderr


def test_the_registry_names_more_webhooks_by_variable_never_by_url(registry_file, tmp_path, slack, generic):
    from tmt_ops.redact import Redactor
    from tmt_ops.registry import load_registry
    cfg = registry_file(edit=lambda d: d.update(notify={"slack": "${DESK_ALERTS}", "webhook": ["${RISK_FEED}"]}))
    env = {"DESK_ALERTS": slack.url(f"/desk/{TOKEN}"), "RISK_FEED": generic.url("/risk")}
    done = stop(cfg, env=env)  # nothing runs: "nothing to stop" is told too
    assert done.returncode == 0, done.stderr
    assert slack.wait(lambda x: x["text"].startswith("stop done on "), 5, path=f"/desk/{TOKEN}")
    assert generic.wait(lambda x: x["operation"] == "stop" and x["changed"] is False, 5, path="/risk")
    # the URL is masked although its variable is not named like a secret
    os.environ["DESK_ALERTS"] = env["DESK_ALERTS"]
    try:
        assert Redactor.for_registry(load_registry(cfg))(f"posting to {env['DESK_ALERTS']}") == "posting to ***"
    finally:
        del os.environ["DESK_ALERTS"]
    literal = registry_file(name="literal.yaml", edit=lambda d: d.update(notify={"slack": env["DESK_ALERTS"]}))
    refused = run_script("stop-trading-system.py", "--config", str(literal))
    assert refused.returncode == 2 and "notify: slack: expected ${VAR} references" in refused.stderr
    assert TOKEN not in refused.stderr and "not shown: it may be a webhook URL" in refused.stderr
