"""Hostile or broken input (issue 8): one line naming the file and the fix, quickly, in bounded memory.

Alias bombs, endless files, deep nesting, duplicate keys, unknown {placeholders}, a missing project.root and
infinite intervals. Bombs and the scripts run in subprocesses under a 1 GiB address-space cap and a timeout,
so that a regression fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from support import REPO, free_ports, run_script, write_registry
from tmt_ops.errors import ConfigError
from tmt_ops.registry import load_registry

SCRIPTS = {"restart-trading-system.py": ["--mode", "native"], "stop-trading-system.py": [],
           "quick-restart.py": ["native"], "docker-restart.py": ["status"], "system-health.py": []}
EXIT = {script: 3 if script == "system-health.py" else 2 for script in SCRIPTS}
MEMORY_CAP = 1024 ** 3

# Nothing here can start or stop anything, even where an attack is not refused: one infrastructure service
# (never managed), on a free port, in a compose project of its own.
SAFE = """\
project:
  compose_project: PROJECT
  default_mode: native
services:
  cache:
    group: infrastructure
    port: PORT
    critical: false
    health: {type: tcp}
    command: ["redis-server", "--port", "{port}"]
"""

NESTED_LISTS = ("a: &a [x, x, x, x, x, x, x, x, x]\n"  # the billion laughs: 9 ** 9 x once expanded
                + "".join(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
                          for prev, name in zip("abcdefgh", "bcdefghi")) + "services: *i\n")
MERGE_KEYS = "".join(f"m{i}: &m{i} {{{', '.join(f'k{j}: ' + (f'*m{i - 1}' if i else 'v') for j in range(9))}}}\n"
                     for i in range(9)) + "services: {<<: *m8}\n"
LONG_STRING = f"s: &s '{'$$' * 200_000}'\nservices: [{', '.join(['*s'] * 3000)}]\n"  # expand() copies it
BOMBS = {"nested_lists": NESTED_LISTS, "merge_keys": MERGE_KEYS, "long_string": LONG_STRING}
BOMB_MESSAGE = ("aliases (*name) expand the registry past 1 MiB here, like an alias bomb: "
                "write it with fewer aliases, not nested repeats")
TOO_DEEP = "nested more than 50 levels deep, far more than any registry: check the brackets and indentation"


def cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def write(tmp_path: Path, text: str) -> Path:
    """services.yaml alone in a directory (its default project.root), PORT and PROJECT filled in."""
    folder = tmp_path / "registry"
    folder.mkdir(exist_ok=True)
    path = folder / "services.yaml"
    path.write_text(text.replace("PORT", str(free_ports(1)[0])).replace("PROJECT", f"tmt-test-{uuid.uuid4().hex[:8]}"))
    return path


def refusal(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_registry(path, environ={})
    line = str(info.value)
    assert "\n" not in line and line.startswith(f"{path}: "), line
    return line[len(f"{path}: "):]


@pytest.fixture(params=["libyaml", "python"])
def parser(request, monkeypatch):
    """Both parsers PyYAML may have: libyaml's, and the pure-Python one of a build without it."""
    if request.param == "python":
        monkeypatch.delattr(yaml, "CSafeLoader")
    return request.param


# -- alias bombs, size, nesting -------------------------------------------------------------------------------
LOAD_TIMED = """
import sys, time
import yaml
if sys.argv[2] == "python":
    del yaml.CSafeLoader
from tmt_ops.errors import ConfigError
from tmt_ops.registry import load_registry
start = time.monotonic()
try:
    load_registry(sys.argv[1], environ={})
except ConfigError as exc:
    print(time.monotonic() - start)
    sys.exit(f"error: {exc}")
"""


@pytest.mark.parametrize("parser_name", ["libyaml", "python"])
@pytest.mark.parametrize("bomb", BOMBS)
def test_alias_bomb_is_refused_fast_in_bounded_memory(tmp_path, bomb, parser_name):
    path = write(tmp_path, BOMBS[bomb])
    assert path.stat().st_size < 420_000  # small; the nested ones a few hundred bytes
    proc = subprocess.run([sys.executable, "-c", LOAD_TIMED, str(path), parser_name], capture_output=True,
                          text=True, timeout=60, preexec_fn=cap_memory, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (proc.returncode, proc.stderr.count("\n")) == (1, 1), proc.stderr[-2000:]
    assert proc.stderr.startswith(f"error: {path}: line ") and proc.stderr.rstrip().endswith(BOMB_MESSAGE)
    # refused before expanding: the memory cap is the guard; an expanding parse takes minutes, this one a
    # fraction of a second (bounded loosely: a shared machine under load is slow, never that slow)
    assert float(proc.stdout) < 5


def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path, parser):
    chain = "".join(f"a{i}: &a{i} {'[' * 40}{f'*a{i - 1}' if i else 'x'}{']' * 40}\n" for i in range(30))
    for text in (f"x: {'[' * 60}{']' * 60}\n", f"x: {'[' * 500}{']' * 500}\n", "[" * 10_000,
                 "services:\n" + "".join(f"{' ' * i}k:\n" for i in range(1, 200)),
                 chain + "services: *a29\n"):  # each anchor shallow, their chain of aliases 1,200 deep
        assert "nest" in refusal(tmp_path, text)  # libyaml itself stops at 1,000 levels: "exceeded maximum nesting"
    if parser == "libyaml":
        assert refusal(tmp_path, f"x: {'[' * 500}{']' * 500}\n") == f"line 1: {TOO_DEEP}"
    else:  # the pure-Python composer recurses before the registry's own check can look
        assert refusal(tmp_path, "[" * 10_000) == TOO_DEEP


def test_a_file_over_1_mib_is_refused_before_parsing(tmp_path):
    text = SAFE + "# " + "x" * 1024 * 1024 + "\n"  # a valid registry, but no registry is that large
    assert refusal(tmp_path, text) == ("the file is larger than 1 MiB, far more than any registry: "
                                       "is --config (or TMT_CONFIG) the right file?")


# -- duplicate keys ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,message", [
    (SAFE.replace("    critical: false\n", "    port: PORT\n"),
     "line 8: duplicate key 'port' (its first value is on line 7)"),
    (SAFE.replace("health: {type: tcp}", "health: {type: tcp, type: http}"),
     "line 9: duplicate key 'type' (its first value is on line 9)"),
    (SAFE + "services: {}\n", "line 11: duplicate key 'services' (its first value is on line 4)"),
    (SAFE.replace("    critical: false\n", "    <<: {critical: false}\n    critical: true\n    critical: false\n"),
     "line 10: duplicate key 'critical' (its first value is on line 9)"),
], ids=["block", "flow", "top_level", "after_a_merge"])
def test_duplicate_key_names_the_key_and_both_lines(tmp_path, text, message):
    assert refusal(tmp_path, text) == f"{message}: remove one"


# -- placeholders ---------------------------------------------------------------------------------------------
HOW = "use {port}, {host}, {port:NAME} or {health_url:NAME}, and {{ or }} for a literal brace"


@pytest.mark.parametrize("written,message", [
    ('"{prot}"', "command: unknown placeholder '{prot}' (did you mean '{port}'?): " + HOW),
    ('"--url={helth_url:cache}"',
     "command: unknown placeholder '{helth_url:cache}' (did you mean '{health_url:cache}'?): " + HOW),
    ('"{port:}"', "command: unknown placeholder '{port:}' (did you mean '{port}'?): " + HOW),
    ('"--json={\\"a\\": 1}"', "command: unknown placeholder '{\"a\": 1}': " + HOW),
    ('"--x={"', "command: a lone '{': write '{{' for a literal '{'"),
    ('"x}"', "command: a lone '}': write '}}' for a literal '}'"),
], ids=["typo", "typo_in_kind", "no_name", "json", "lone_open", "lone_close"])
def test_unknown_placeholder_or_lone_brace_in_a_command(tmp_path, written, message):
    assert refusal(tmp_path, SAFE.replace('"{port}"', written)) == f"service 'cache': {message}"


def test_unknown_placeholder_in_an_env_value(tmp_path):
    text = SAFE.replace("    critical: false\n", "    critical: false\n    env: {URL: 'redis://{hots}:6379'}\n")
    assert refusal(tmp_path, text) == \
        f"service 'cache': env.URL: unknown placeholder '{{hots}}' (did you mean '{{host}}'?): {HOW}"


# -- project.root ---------------------------------------------------------------------------------------------
def test_a_missing_project_root_is_named_and_nothing_is_created(tmp_path):
    line = refusal(tmp_path, SAFE.replace("project:\n", "project:\n  root: ../nowhere\n"))
    assert line == (f"project: root: {(tmp_path / 'nowhere').resolve()} does not exist or is not a directory: "
                    f"fix project.root (a relative root is relative to the registry's directory)")
    assert not (tmp_path / "nowhere").exists()


# -- every script ---------------------------------------------------------------------------------------------
ATTACKS = {
    "alias_bomb": (NESTED_LISTS, BOMB_MESSAGE),
    "deep_nesting": (SAFE + f"x: {'[' * 500}{']' * 500}\n", TOO_DEEP),
    "file_over_1_mib": (SAFE + "# " + "x" * 1024 * 1024 + "\n", "larger than 1 MiB"),
    "duplicate_key": (SAFE.replace("    critical: false\n", "    port: PORT\n"), "duplicate key 'port'"),
    "unknown_placeholder": (SAFE.replace('"{port}"', '"{prot}"'), "unknown placeholder '{prot}'"),
    "missing_root": (SAFE.replace("project:\n", "project:\n  root: nowhere\n"), "does not exist"),
}


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("attack", ATTACKS)
def test_every_script_refuses_with_one_line_and_creates_nothing(tmp_path, attack, script):
    text, message = ATTACKS[attack]
    path = write(tmp_path, text)
    proc = run_script(script, "--config", str(path), *SCRIPTS[script], timeout=60, preexec_fn=cap_memory)
    line = one_error_line(proc)
    assert proc.returncode == EXIT[script], proc.stderr[-3000:]
    assert line.startswith(f"error: {path}: ") and message in line, line
    assert list(path.parent.iterdir()) == [path]  # the root: no log or state directory, no missing root made


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_endless_file_as_registry_is_one_line(script):
    proc = run_script(script, "--config", "/dev/zero", *SCRIPTS[script], timeout=60, preexec_fn=cap_memory)
    assert proc.returncode == EXIT[script]
    assert "error: /dev/zero: cannot read the registry: it is a character device, not a regular file" in \
        one_error_line(proc)  # refused without reading a byte (files.read_regular)


# -- system-health.py --interval --------------------------------------------------------------------------------
@pytest.mark.parametrize("interval", ["inf", "nan", "1e999", "Infinity"])
def test_interval_must_be_a_finite_number(tmp_path, interval):
    path = write(tmp_path, SAFE)
    proc = run_script("system-health.py", "--config", str(path), "--monitor", "--count", "1", "--interval", interval,
                      timeout=30, preexec_fn=cap_memory)
    assert proc.returncode == 3
    assert one_error_line(proc) == (f"error: system-health.py: argument --interval: must be a finite number from "
                                    f"0.05 to 86400 (seconds), got {interval} (see --help)")
    assert list(path.parent.iterdir()) == [path]


@pytest.mark.parametrize("where", ["env", "env_file", "command"])
def test_a_nul_byte_no_program_can_start_with_is_refused_before_anything_stops(tmp_path, where):
    """(YAML can carry one: "a\\0b"; so can an env file.) Found at the spawn, it was a traceback after the stop."""
    (tmp_path / "orchestrator.env").write_text("SETTING=a\0b\n" if where == "env_file" else "SETTING=ok\n")

    def edit(data):
        for name in ("market-analysis", "execution-engine", "dashboard"):
            del data["services"][name]
        svc = data["services"]["orchestrator"]
        svc["env_file"] = [str(tmp_path / "orchestrator.env")]
        if where == "env":
            svc["env"] = {"SETTING": "a\0b"}
        if where == "command":
            svc["command"] = list(svc["command"]) + ["--name", "a\0b"]

    cfg = write_registry(tmp_path, edit=edit)
    proc = run_script("restart-trading-system.py", "--config", str(cfg), "--mode", "native", timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    what = "its command holds a NUL byte" if where == "command" else "its environment variable 'SETTING' holds a NUL byte"
    assert f"orchestrator: {what}, which no program can be started with" in proc.stderr
    assert "nothing was stopped or started" in proc.stderr
