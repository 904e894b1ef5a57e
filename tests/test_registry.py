"""The registry: shipped content, every validation error as one line, graph queries, ${VAR} expansion."""

import signal
import sys
import textwrap

import pytest

from support import SHIPPED
from tmt_ops.errors import ConfigError
from tmt_ops.registry import load_registry
from tmt_ops.registry.graph import dependents, find_cycle, start_waves
from tmt_ops.states import Health

SPEC_PORTS = {"orchestrator": 8000, "market-analysis": 8002, "execution-engine": 8004, "dashboard": 3000,
              "postgres": 5432, "redis": 6379, "kafka": 9092, "prometheus": 9090, "grafana": 3001,
              "jaeger": 16686, "vault": 8200}


def test_shipped_registry_has_the_spec_services_ports_and_order():
    reg = load_registry(SHIPPED, environ={})
    assert {name: s.port for name, s in reg.services.items()} == SPEC_PORTS
    assert [s.name for s in reg.managed] == ["orchestrator", "market-analysis", "execution-engine", "dashboard"]
    core_waves = [[s.name for s in wave] for wave in reg.start_waves(reg.managed)]
    assert core_waves == [["orchestrator"], ["market-analysis"], ["execution-engine"], ["dashboard"]]
    infra = {s.name for s in reg.services.values() if s.group == "infrastructure"}
    assert infra == {"postgres", "redis", "kafka", "prometheus", "grafana", "jaeger", "vault"}
    # the spec's startup order: infrastructure first, then the core services one after another
    assert {s.name for s in reg.start_waves()[0]} == infra
    deps = {name: {d.name: d.required for d in s.depends_on} for name, s in reg.services.items()}
    assert deps["orchestrator"] == {"postgres": False, "redis": False, "kafka": False}
    assert deps["market-analysis"] == {"orchestrator": True}
    assert deps["execution-engine"] == {"orchestrator": True, "market-analysis": True}
    assert deps["dashboard"] == {"orchestrator": True, "market-analysis": True, "execution-engine": True}
    assert [s.name for s in reg.dependents(["orchestrator"])] == ["market-analysis", "execution-engine", "dashboard"]
    assert reg.services["execution-engine"].pre_stop.path == "/api/trading/disable"
    assert reg.services["dashboard"].probe.path == "/api/health"
    assert reg.log_dir == SHIPPED.parent.parent / "logs"
    assert reg.warnings == ()


def test_shipped_commands_use_the_running_interpreter_and_fill_placeholders():
    reg = load_registry(SHIPPED, environ={})
    ee = reg.services["execution-engine"]
    assert ee.command[0] == sys.executable
    assert ee.command[ee.command.index("--port") + 1] == "8004"
    assert "http://127.0.0.1:8000/health" in ee.command and "http://127.0.0.1:8002/health" in ee.command


def test_environment_expansion(tmp_path):
    path = write(tmp_path, """
        services:
          api:
            group: core
            port: 9100
            command: ["python", "-c", "pass"]
            env: {DB: "${DB_URL}", MODE: "${MODE:-paper}", UNSET: "${NOPE}", COST: "$$5", N: 3}
    """)
    reg = load_registry(path, environ={"DB_URL": "postgresql://u:pw@db/x"})
    env = reg.services["api"].env
    assert env == {"DB": "postgresql://u:pw@db/x", "MODE": "paper", "UNSET": "", "COST": "$5", "N": "3"}
    assert reg.warnings == ("services.api.env.UNSET: ${NOPE} is not set; using an empty value",)


def test_anchors_and_merge_keys_work_and_a_key_may_override_a_merged_one(tmp_path):
    path = write(tmp_path, """
        services:
          a: &a {group: core, port: 9100, command: &cmd ["python", "-c", "pass"], stop_grace: 3}
          b:
            <<: *a
            port: 9101
            stop_grace: 7
          c: {<<: [*a], port: 9102, command: *cmd, env: {PORT_OF_B: "{port:b}"}}
    """)
    reg = load_registry(path, environ={})
    assert [(s.port, s.stop_grace, s.command[1:]) for s in reg.services.values()] == \
        [(9100, 3.0, ("-c", "pass")), (9101, 7.0, ("-c", "pass")), (9102, 3.0, ("-c", "pass"))]
    assert reg.services["c"].env == {"PORT_OF_B": "9101"}


def test_double_braces_are_literal_and_the_environments_braces_are_never_placeholders(tmp_path):
    path = write(tmp_path, """
        services:
          api:
            group: core
            port: 9100
            command: ["python", "-c", "print({{'port': {port}}})", "--password=${PASSWORD}"]
            env: {PASSWORD: "${PASSWORD}", JSON: '{{"a": {{"b": 1}}}}'}
    """)
    reg = load_registry(path, environ={"PASSWORD": "p{ss}w{o}rd{port}{"})
    api = reg.services["api"]
    assert api.command[2:] == ("print({'port': 9100})", "--password=p{ss}w{o}rd{port}{")
    assert api.env == {"PASSWORD": "p{ss}w{o}rd{port}{", "JSON": '{"a": {"b": 1}}'}


def test_defaults_apply_and_relative_paths_follow_project_root(tmp_path):
    path = write(tmp_path, """
        project: {root: .., log_dir: var/log}
        defaults: {stop_grace: 3, stop_signal: INT}
        services:
          api: {group: core, port: 9100, command: ["python", "-c", "pass"], cwd: sub}
          db: {group: infrastructure, port: 9101, health: {type: postgres}}
    """)
    reg = load_registry(path)
    api = reg.services["api"]
    assert (api.stop_grace, api.stop_signal, api.managed) == (3.0, signal.SIGINT, True)
    assert api.cwd == tmp_path.parent / "sub" and reg.log_dir == tmp_path.parent / "var" / "log"
    assert reg.services["db"].managed is False and reg.services["db"].url == "postgres://127.0.0.1:9101"


BASE = """
services:
  a: {group: core, port: 9100, command: ["python", "-c", "pass"]}
  b: {group: core, port: 9101, command: ["python", "-c", "pass"], depends_on: {a: required}}
"""

BAD_REGISTRIES = [
    ("invalid_yaml", "services:\n  a: {group: core\n  b: 1\n", r"line 3, column \d+: invalid YAML"),
    ("empty", "", "the registry is empty"),
    ("not_a_mapping", "- a\n- b\n", "must be a mapping"),
    ("unknown_key", BASE.replace("port: 9100", "prot: 9100"), "service 'a': unknown key 'prot' (did you mean 'port'?)"),
    ("unknown_top_key", "servics: {}\n", "unknown key 'servics' (did you mean 'services'?)"),
    ("wrong_type", BASE.replace("port: 9100", "port: '9100'"), "service 'a': port: expected an integer, got string '9100'"),
    ("bool_is_not_int", BASE.replace("port: 9100", "port: true"), "service 'a': port: expected an integer, got boolean"),
    ("missing_required", BASE.replace("group: core, port: 9100", "port: 9100"), "service 'a': missing required key 'group'"),
    ("missing_services", "project: {name: x}\n", "missing required key 'services'"),
    ("port_out_of_range", BASE.replace("9100", "70000"), "service 'a': port: must be an integer from 1 to 65535, got 70000"),
    ("port_zero", BASE.replace("9100", "0"), "port: must be an integer from 1 to 65535, got 0"),
    ("port_used_twice", BASE.replace("9101", "9100"), "service 'b': port 9100 is already used by service 'a'"),
    ("unknown_dependency", BASE.replace("{a: required}", "{aa: required}"), "service 'b': depends on unknown service 'aa'"),
    ("cycle", BASE.replace("port: 9100,", "port: 9100, depends_on: {b: optional},"), "dependency cycle: a -> b -> a"),
    ("managed_without_command", BASE.replace(', command: ["python", "-c", "pass"]}', "}", 1),
     "service 'a': a managed service needs a command"),
    ("bad_dependency_kind", BASE.replace("{a: required}", "{a: yes}"), "depends_on.a: must be 'required' or 'optional'"),
    ("bad_group", BASE.replace("group: core, port: 9100", "group: cor, port: 9100"), "group: must be one of core, infrastructure"),
    ("bad_signal", BASE.replace("port: 9100,", "port: 9100, stop_signal: SIGFOO,"), "unknown signal 'SIGFOO'"),
    ("bad_probe_type", BASE.replace("port: 9100,", "port: 9100, health: {type: htp},"), "health.type: must be one of"),
    ("http_probe_without_path", BASE.replace("port: 9100,", "port: 9100, health: {type: http},"), "needs a path"),
    ("negative_timeout", BASE.replace("port: 9100,", "port: 9100, stop_grace: -1,"), "stop_grace: must be a finite number from 0.1 to 3600 (seconds), got -1"),
    ("command_is_a_string", BASE.replace('["python", "-c", "pass"]', '"python app.py"', 1), "command: expected a list, got string"),
    ("placeholder_unknown_service", BASE.replace('"pass"]}', '"{port:zz}"]}', 1), "{port:zz}: unknown service 'zz'"),
    ("bad_mode", "project: {default_mode: k8s}\n" + BASE, "default_mode: must be one of native, docker"),
    ("threshold_order", "health: {thresholds: {disk_percent: {warning: 95, critical: 90}}}\n" + BASE,
     "warning must not exceed critical"),
]


@pytest.mark.parametrize("text,message", [b[1:] for b in BAD_REGISTRIES], ids=[b[0] for b in BAD_REGISTRIES])
def test_each_bad_registry_is_one_line_naming_file_and_problem(tmp_path, text, message):
    path = tmp_path / "services.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    line = str(info.value)
    assert "\n" not in line and line.startswith(f"{path}: ")
    assert info.value.exit_code == 2
    import re
    assert re.search(message, line) if message.startswith("line") else message in line, line


def test_missing_registry_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(ConfigError, match="registry not found \\(pass --config PATH or set TMT_CONFIG\\)"):
        load_registry(tmp_path / "nope.yaml")


def test_unknown_service_name_suggests_the_close_one():
    reg = load_registry(SHIPPED, environ={})
    with pytest.raises(ConfigError, match="unknown service 'orchestrater' \\(did you mean 'orchestrator'\\?\\)"):
        reg.select(["orchestrater"])


# -- graph queries as pure functions -------------------------------------------------------------------
GRAPH = {"db": [], "cache": [], "orch": ["db", "cache"], "ma": ["orch"], "ee": ["orch", "ma"], "dash": ["orch", "ma", "ee"],
         "lonely": []}
ORDER = list(GRAPH)


def test_start_waves_group_independent_services():
    assert start_waves(GRAPH, ORDER) == [["db", "cache", "lonely"], ["orch"], ["ma"], ["ee"], ["dash"]]


def test_start_waves_of_a_selection_ignore_unselected_dependencies():
    selection = {k: GRAPH[k] for k in ("ma", "ee", "dash")}
    assert start_waves(selection, ORDER) == [["ma"], ["ee"], ["dash"]]


def test_stop_order_is_the_reverse_of_start_order():
    reg = load_registry(SHIPPED, environ={})
    assert [[s.name for s in w] for w in reg.stop_waves(reg.managed)] == \
        [["dashboard"], ["execution-engine"], ["market-analysis"], ["orchestrator"]]


def test_transitive_dependents():
    assert dependents(GRAPH, ["db"]) == {"orch", "ma", "ee", "dash"}
    assert dependents(GRAPH, ["ee"]) == {"dash"}
    assert dependents(GRAPH, ["lonely"]) == set()


def test_find_cycle_reports_the_loop_in_depends_on_direction():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) in (["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"])
    assert find_cycle(GRAPH) is None


def write(tmp_path, text):
    path = tmp_path / "services.yaml"
    path.write_text(textwrap.dedent(text))
    return path


# -- the real services' registry: env files, typed references, the body field ----------------------------------------
def test_env_files_read_as_compose_reads_dotenv():
    from tmt_ops.registry.dotenv import parse
    text = ("# comment\n\nexport A=1\nB = two words # a comment\nC='single ${A} # kept'\nD=\"line1\\nline2 ${A}\"\n"
            "E=\"spans\nlines\"\nF=${A}${MISSING:-x}$$\nG\nH=$A/x\n")
    assert parse(text, {"G": "from env"}) == {"A": "1", "B": "two words", "C": "single ${A} # kept",
                                              "D": "line1\nline2 1", "E": "spans\nlines", "F": "1x$",
                                              "G": "from env", "H": "1/x"}
    for bad, words in (("=x", "line 1: expected KEY=VALUE"), ("K='open", "line 1: the quote that opens K's value"),
                       ('K="open\nmore', "line 1: the quote that opens K's value")):
        with pytest.raises(ConfigError, match=words):
            parse(bad, {})


@pytest.mark.parametrize("value, expected", [("8000", 8000), ("2.5", 2.5), ("true", True), ("0123", 123),
                                             ("80OO", "80OO"), ("inf", "inf")])
def test_a_value_written_as_one_reference_is_typed_as_if_written_there(value, expected):
    from tmt_ops.registry.parse import _typed
    assert _typed(value) == expected and type(_typed(value)) is type(expected)


def test_the_body_field_named_in_the_registry_alone_decides():
    from tmt_ops.probes import classify_http
    field, degraded = "system_health", (("trading_enabled", False),)
    assert classify_http(200, {"system_health": "healthy", "trading_enabled": True, "status": "broken"}, (200,),
                         field, degraded) == (Health.HEALTHY, None)
    assert classify_http(200, {"system_health": "healthy", "trading_enabled": False}, (200,), field,
                         degraded) == (Health.DEGRADED, "trading_enabled is false")
    assert classify_http(200, {"status": "healthy"}, (200,), field, degraded) == (
        Health.UNHEALTHY, "its answer has no system_health")
    assert classify_http(503, {"detail": "Orchestrator not initialized"}, (200,), field, degraded)[0] is Health.STARTING
    assert classify_http(200, {"system_health": "degraded"}, (200,), field)[0] is Health.DEGRADED
