"""Notifications where the desk looks: a Slack incoming webhook, and a generic JSON webhook for anything else.

Where: SLACK_WEBHOOK_URL (the TMT convention) and TMT_WEBHOOK_URL (generic JSON), and the variables the
registry's notify: section names (each a ${VAR}: a URL is a secret, it never sits in the registry). What: the
events the JSON output types (`"type"`): a monitor's debounced state changes, a heal's attempt, result and
giving up, and the end of every change an operator makes (audit.py's "operation" record). Slack gets `text`
(the line a phone shows) and `blocks` (the details); a generic webhook gets the event itself, with the
project and host.

A notification never blocks, slows or fails what it reports: messages go to a queue that one daemon thread
sends, each try bounded by TIMEOUT, a few tries with back-off (a 4xx other than 408/429 is not tried again: a
revoked webhook stays revoked). At the process's end close() waits at most BUDGET seconds for what is still
queued, then gives up with one warning line. A destination that fails is said once (a warning line, and the
toolkit log), then only logged until it delivers again, so a dead webhook never floods a monitor's output.
Every body passes the Redactor; a URL is shown by the name of its variable, never by its value.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
from typing import Callable, Mapping

from .console import LOGGER
from .data import dataclass
from .output import redact_tree
from .redact import Redactor

CONVENTIONAL = {"slack": "SLACK_WEBHOOK_URL", "webhook": "TMT_WEBHOOK_URL"}
TIMEOUT = 2.0  # seconds for one try (connect, and each read)
BACKOFF = (0.5, 1.0)  # seconds before the second and the third try
BUDGET = 3.0  # seconds the process waits at its end for what is queued
QUEUED = 100  # messages waiting at most (a dead webhook under a long monitor must not grow memory)
HEAL_EVENTS = ("attempt", "result", "gave_up")
SLACK_TEXT = 2900  # characters of one block's text (Slack takes 3000)


@dataclass(frozen=True)
class Destination:
    kind: str  # slack / webhook
    variable: str  # the environment variable that holds the URL: how it is named in every line
    url: str

    def __str__(self) -> str:
        return f"the {'Slack' if self.kind == 'slack' else 'JSON'} webhook ${self.variable}"


def destinations(registry, environ: Mapping[str, str] = os.environ,
                 warn: Callable[[str], None] = lambda text: None) -> list[Destination]:
    """Every webhook set in the environment: the conventional variables, then the registry's, each URL once."""
    found: dict[tuple[str, str], Destination] = {}
    for kind, names in (("slack", (CONVENTIONAL["slack"], *registry.notify.slack)),
                        ("webhook", (CONVENTIONAL["webhook"], *registry.notify.webhook))):
        for name in names:
            url = environ.get(name, "").strip()
            if not url:
                continue
            if not url.lower().startswith(("http://", "https://")):
                warn(f"notify: ${name} is not an http(s) URL: nothing is sent there")
                continue
            found.setdefault((kind, url), Destination(kind, name, url))
    return list(found.values())


def wanted(event: Mapping) -> bool:
    """The events a notification is sent for (a round is not one: it is every interval)."""
    kind = event.get("type")
    return kind in ("operation", "state_change") or kind == "heal" and event.get("event") in HEAL_EVENTS


# -- messages -------------------------------------------------------------------------------------------------
def _esc(text) -> str:
    """Slack's mrkdwn escapes: &, < and > only."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, most: int = SLACK_TEXT) -> str:
    return text if len(text) <= most else text[:most - 1] + "…"


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text)}}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text)}]}


ICONS = {"ok": ":white_check_mark:", "healthy": ":white_check_mark:", "warning": ":warning:", "warn": ":warning:",
         "failed": ":x:", "error": ":x:", "critical": ":rotating_light:", "interrupted": ":double_vertical_bar:",
         "unknown": ":grey_question:", "info": ":information_source:"}
ENDINGS = {"ok": "done", "warning": "done, with a warning", "failed": "FAILED", "interrupted": "interrupted",
           "unknown": "ended, how is unknown"}


def _operation_slack(e: Mapping, where: str) -> dict:
    from .audit import describe  # here: a script without webhooks never loads what only messages need
    ending = ENDINGS.get(e["outcome"], e["outcome"])
    if e["outcome"] == "failed" and not e.get("changed"):
        ending = "FAILED before any change"
    who = describe(e.get("who") or {})
    head = f"{e['operation']} {ending} on {where}"
    fields = [("Who", who), ("Took", f"{e.get('seconds', 0):g} s"), ("Mode", e.get("mode") or "-"),
              ("Exit code", e.get("exit_code")), ("Services", ", ".join(e.get("services") or ()) or "-"),
              ("Command", f"`{e.get('command', '')}`")]
    rows = [f"• `{name}`: {r.get('state', '?')}" + (f" ({r['runs_as']})" if r.get("runs_as") else "")
            + (f": {r['detail']}" if r.get("detail") else "") for name, r in (e.get("results") or {}).items()]
    blocks = [_section(f"{ICONS.get(e['outcome'], '')} *{_esc(head)}*\n{_esc(e.get('last', ''))}"),
              {"type": "section", "fields": [{"type": "mrkdwn", "text": _cut(f"*{k}*\n{_esc(v)}", 1900)}
                                             for k, v in fields]}]
    if rows:
        blocks.append(_section(_esc("\n".join(rows))))
    blocks.append(_context(_esc(f"started {e.get('started', '?')} · journal id {e['id']} · tmt-ops history")))
    return {"text": _cut(f"{head} (by {who}): {e.get('last', '')}"), "blocks": blocks}


def _change_slack(e: Mapping, where: str) -> dict:
    marked = "CRITICAL: " if e["severity"] == "critical" else ""
    line = f"{marked}{e['subject']}: {e['old']} -> {e['new']} on {where}"
    return {"text": line, "blocks": [
        _section(f"{ICONS.get(e['severity'], '')} *{_esc(marked)}{_esc(e['subject'])}*: {_esc(e['old'])} → "
                 f"*{_esc(e['new'])}* on {_esc(where)}"),
        _context(_esc(f"held {e['held_rounds']} round(s) · {e['time']} · system-health.py --monitor"))]}


def _heal_slack(e: Mapping, where: str) -> dict:
    marked = "CRITICAL: " if e["event"] == "gave_up" else ""
    level = "critical" if marked else e["level"]
    line = f"{marked}heal on {where}: {e['message']}"
    return {"text": _cut(line), "blocks": [
        _section(f"{ICONS.get(level, '')} *{_esc(marked)}heal* on {_esc(where)}: {_esc(e['message'])}"),
        _context(_esc(f"round {e['round']} · {e['time']} · system-health.py --heal"))]}


def slack_message(event: Mapping, project: str, host: str) -> dict:
    """A Slack incoming-webhook message: `text` (the notification's line) and `blocks` (the details)."""
    where = f"{host} ({project})"
    render = {"operation": _operation_slack, "state_change": _change_slack, "heal": _heal_slack}[event["type"]]
    return render(event, where)


def webhook_message(event: Mapping, project: str, host: str) -> dict:
    """A generic webhook's body: the event as the JSON output writes it, with where it comes from."""
    return {**event, "project": event.get("project", project), "host": host}


# -- sending ------------------------------------------------------------------------------------------------
def post(url: str, body: bytes, timeout: float = TIMEOUT) -> str | None:
    """POST a JSON body; None when it was taken (2xx), else why not, in words that never carry the URL."""
    import http.client  # here, in the sender's thread: an operation without webhooks never loads them
    import urllib.error
    import urllib.request
    from . import __version__
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": f"tmt-ops/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read(64 * 1024)
        return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return _why(exc.reason)
    except (OSError, http.client.HTTPException) as exc:
        return _why(exc)
    except ValueError:  # its text would quote the URL
        return "not a valid URL"


def _why(reason) -> str:
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {TIMEOUT:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return type(reason).__name__


def _final(why: str) -> bool:
    """A refusal that another try will not change (a revoked or wrong webhook)."""
    return why.startswith("HTTP 4") and why not in ("HTTP 408", "HTTP 429")


class _Courier:
    """One destination's queue and the daemon thread that sends it, so a webhook that hangs delays no other."""

    def __init__(self, target: Destination, redactor: Redactor, warn: Callable[[str], None]) -> None:
        self.target, self.redact, self.warn = target, redactor, warn
        self.queue: queue.Queue[bytes] = queue.Queue(QUEUED)
        self.failing = False  # its failure was said: only logged from now until it delivers again
        self.trouble = ""  # why the message being sent has not gone yet
        self.given_up = False
        self._thread: threading.Thread | None = None

    def put(self, body: bytes) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"notify {self.target.variable}", daemon=True)
            self._thread.start()
        try:
            self.queue.put_nowait(body)
        except queue.Full:
            LOGGER.warning(f"notify: {self.target} is {QUEUED} messages behind: one is dropped")

    def _run(self) -> None:
        while True:
            body = self.queue.get()
            try:
                self._deliver(body)
            finally:
                self.queue.task_done()

    def _deliver(self, body: bytes) -> None:
        why = ""
        for pause in (0, *BACKOFF):
            time.sleep(pause)
            why = post(self.target.url, body)
            if why is None:
                if self.failing:
                    self.failing = False
                    LOGGER.info(f"notify: {self.target} delivers again")
                return
            self.trouble = f"{self.target}: {why}"
            if _final(why):
                break
        self.trouble = ""
        text = self.redact(f"notify: a message to {self.target} was not delivered ({why}, {1 + len(BACKOFF)} tries)")
        if self.failing or self.given_up:
            LOGGER.warning(text)
        else:
            self.failing = True
            self.warn(f"{text}; the operation is not affected (until it delivers again, the log alone says so)")

    def wait(self, deadline: float) -> int:
        """Wait until its queue is sent or the deadline passes; how many messages are left (given up on)."""
        with self.queue.all_tasks_done:
            while self.queue.unfinished_tasks and (left := deadline - time.monotonic()) > 0:
                self.queue.all_tasks_done.wait(left)
            self.given_up = True
            return self.queue.unfinished_tasks


class Notifier:
    """The process's notifications: render and redact each message, then hand it to its destination's courier."""

    def __init__(self, targets: list[Destination], redactor: Redactor, warn: Callable[[str], None], project: str):
        self.redact, self.warn, self.project = redactor, warn, project
        self.host = socket.gethostname()
        self.couriers = [_Courier(target, redactor, warn) for target in targets]

    def send(self, event: Mapping) -> None:
        """Queue a message about this event to every destination (nothing for an event no one is told of)."""
        if not wanted(event):
            return
        for courier in self.couriers:
            render = slack_message if courier.target.kind == "slack" else webhook_message
            message = redact_tree(render(event, self.project, self.host), self.redact)
            courier.put(json.dumps(message, default=str).encode())

    def close(self, budget: float = BUDGET) -> None:
        """Wait at most `budget` seconds in all for what is queued; then give up on the rest, in one warning line."""
        deadline = time.monotonic() + budget
        left = [(courier, courier.wait(deadline)) for courier in self.couriers]
        undelivered = sum(n for _, n in left)
        if undelivered:
            why = "; ".join(c.trouble or f"{c.target}: still sending" for c, n in left if n)
            self.warn(self.redact(f"notify: {undelivered} message(s) not delivered within {budget:g} s ({why}): "
                                  "given up; the operation is not affected"))


_active: Notifier | None = None


def start(registry, redactor: Redactor, warn: Callable[[str], None]) -> None:
    """Notifications for this process, to the webhooks set in its environment (none set: nothing happens)."""
    global _active
    targets = destinations(registry, warn=warn)
    _active = Notifier(targets, redactor, warn, registry.project) if targets else None


def send(event: Mapping) -> None:
    if _active is not None:
        _active.send(event)


def close() -> None:
    """At the process's end (cli/common.run): what is queued gets at most BUDGET seconds."""
    global _active
    if _active is not None:
        _active.close()
        _active = None
