"""Shell completion (tmt-ops completion bash|zsh): every option of the five scripts and tmt-ops, by their root
names and console commands, and service names from the registry the scripts would use."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from support import REPO

PROGRAMS = ["restart-trading-system.py", "tmt-restart", "stop-trading-system.py", "tmt-stop", "quick-restart.py",
            "tmt-quick-restart", "docker-restart.py", "tmt-docker", "system-health.py", "tmt-health", "tmt-ops"]


def script(shell: str) -> str:
    done = subprocess.run([sys.executable, "-m", "tmt_ops", "completion", shell], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def bash_complete(completion: str, words: list[str], env: dict) -> list[str]:
    """What bash offers for the last word, as its completion machinery calls the registered function."""
    line = " ".join(words)
    program = """
source /dev/stdin <<'COMPLETION'
{completion}
COMPLETION
COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}
fn=$(complete -p {prog} | sed 's/.*-F \\([^ ]*\\) .*/\\1/')
$fn {prog} {cur!r} {prev!r}
printf '%s\\n' "${{COMPREPLY[@]}}"
""".format(completion=completion, words=" ".join(repr(w) for w in words), cword=len(words) - 1, line=line,
           prog=words[0], cur=words[-1], prev=words[-2])
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completes_options_and_the_registrys_service_names(registry_file):
    def extra_service(data):
        data["services"]["risk-guard"] = {"group": "core", "port": data["services"]["dashboard"]["port"] + 1,
                                          "command": ["python", "-m", "tmt_sim", "dashboard", "--port", "{port}"]}
    cfg = registry_file(edit=extra_service)
    completion = script("bash")
    env = {"PATH": "/usr/bin:/bin", "TMT_CONFIG": str(cfg)}
    assert "risk-guard" in bash_complete(completion, ["tmt-stop", "--only", ""], env)
    assert bash_complete(completion, ["tmt-docker", "restart", "risk"], env) == ["risk-guard"]
    assert bash_complete(completion, ["restart-trading-system.py", "--with"], env) == ["--with-infra"]
    assert set(bash_complete(completion, ["system-health.py", "--format", ""], env)) >= {"nagios", "prometheus"}
    assert "systemd" in bash_complete(completion, ["tmt-ops", ""], env)
    registered = subprocess.run(["bash", "-c", f"source /dev/stdin; complete -p {' '.join(PROGRAMS)}"],
                                input=completion, capture_output=True, text=True)
    assert registered.returncode == 0 and registered.stdout.count("complete ") == len(PROGRAMS)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (bash .ci/setup-system.sh installs it)")
def test_zsh_loads_it_and_registers_every_program(tmp_path):
    """As ~/.zshrc loads it, after compinit: eval "$(tmt-ops completion zsh)"."""
    completion = tmp_path / "tmt-ops.zsh"
    completion.write_text(script("zsh"))
    program = (f"autoload -Uz compinit && compinit -u -d {tmp_path / 'zcompdump'}; eval \"$(<{completion})\"; "
               f"for p in {' '.join(PROGRAMS)}; do print -r -- ${{_comps[$p]:-missing}}; done")
    done = subprocess.run(["zsh", "-fc", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "missing" not in done.stdout.split() and len(done.stdout.split()) == len(PROGRAMS)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (bash .ci/setup-system.sh installs it)")
def test_zsh_offers_the_registrys_service_names(registry_file):
    """The action zsh runs for a SERVICE argument (`:SERVICE:($(...))`), run by zsh itself, lists the services
    of the registry the scripts would use."""
    def extra_service(data):
        data["services"]["risk-guard"] = {"group": "core", "port": data["services"]["dashboard"]["port"] + 1,
                                          "command": ["python", "-m", "tmt_sim", "dashboard", "--port", "{port}"]}
    cfg = registry_file(edit=extra_service)
    actions = re.findall(r"--only\[[^]]*\]:SERVICE:\(\$\((.*?)\)\)", script("zsh"))
    assert actions, "no SERVICE action for --only"
    done = subprocess.run(["zsh", "-fc", f"print -l -- $({actions[0]})"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "TMT_CONFIG": str(cfg)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "risk-guard" in done.stdout.split() and "orchestrator" in done.stdout.split()


def test_without_shtab_the_command_says_how_to_get_it(tmp_path):
    blocked = tmp_path / "shtab.py"
    blocked.write_text("raise ImportError('not installed')\n")  # shadows the installed shtab
    done = subprocess.run([sys.executable, "-m", "tmt_ops", "completion", "bash"], capture_output=True, text=True,
                          cwd=REPO, env={"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode == 2 and "pip install 'tmt-ops[completion]'" in done.stderr
