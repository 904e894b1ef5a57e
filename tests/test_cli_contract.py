"""What every one of the five scripts promises: a bad input is one line and an exit code, never a traceback."""

import pytest

from support import run_script

SCRIPTS = {"restart-trading-system.py": 2, "stop-trading-system.py": 2, "quick-restart.py": 2,
           "docker-restart.py": 2, "system-health.py": 3}
BAD_REGISTRY = "services:\n  orchestrator: {group: core, prot: 8000}\n"


def _one_error_line(proc):
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.mark.parametrize("script,code", SCRIPTS.items())
def test_bad_registry_is_one_line_and_the_scripts_config_error_code(tmp_path, script, code):
    bad = tmp_path / "services.yaml"
    bad.write_text(BAD_REGISTRY)
    proc = run_script(script, "--config", str(bad), timeout=60)
    line = _one_error_line(proc)
    assert proc.returncode == code
    assert f"{bad}: service 'orchestrator': unknown key 'prot' (did you mean 'port'?)" in line


@pytest.mark.parametrize("script,code", SCRIPTS.items())
def test_registry_from_the_environment_is_used(tmp_path, script, code):
    proc = run_script(script, env={"TMT_CONFIG": str(tmp_path / "missing.yaml")}, timeout=60)
    assert proc.returncode == code
    assert "registry not found (pass --config PATH or set TMT_CONFIG)" in _one_error_line(proc)


@pytest.mark.parametrize("script,code", SCRIPTS.items())
def test_unknown_flag_is_a_usage_error(script, code):
    proc = run_script(script, "--no-such-flag", timeout=60)
    assert proc.returncode == code
    assert "--no-such-flag" in _one_error_line(proc)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_exits_0(script):
    proc = run_script(script, "--help", timeout=60)
    assert proc.returncode == 0 and "usage:" in proc.stdout and "--config" in proc.stdout
