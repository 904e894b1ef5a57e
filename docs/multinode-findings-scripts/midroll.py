# midroll.py CFG STACK SERVICE ACTION(kill|stop|drain) SCRIPT ARGS... : run SCRIPT as a swarm client; when it starts
# rolling SERVICE, ACTION the worker its task runs on
import json, os, subprocess, sys, time
cfg, stack, service, action, script, *args = sys.argv[1:]
M = {**os.environ, "DOCKER_HOST": "unix:///run/tmt-multinode/tmt-mn-manager/docker.sock"}
def node_of():
    out = subprocess.run(["docker", "service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}",
                          f"{stack}_{service}"], capture_output=True, text=True, env=M).stdout.split("\n")
    return [l.split()[0] for l in out if " Running" in l]
before = [n for n in node_of() if "worker" in n]
print(f"{service} runs on {node_of()} before the run")
began = time.monotonic()
p = subprocess.Popen(["/tmp/mn-inv/run.sh", cfg, script, *args], stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, text=True, env={**os.environ, "TMT_INV_TAG": "a"})
done = False
for line in p.stdout:
    print(f"{time.monotonic() - began:6.1f} {line}", end="", flush=True)
    if not done and (f": starting {service}" in line or f"stopping " in line and service in line):
        nodes = before
        if nodes:
            node = nodes[0]
            if action == "drain":
                subprocess.run(["docker", "node", "update", "--availability", "drain", node], capture_output=True, env=M)
            else:
                subprocess.run(["docker", action, node], capture_output=True)
            print(f"{time.monotonic() - began:6.1f} >>> {action} {node} (its {service} task)", flush=True)
            done = True
        else:
            print(f"{time.monotonic() - began:6.1f} >>> {service} runs on {node_of()}: no worker to {action}", flush=True)
p.wait()
print(f"{time.monotonic() - began:6.1f} exit {p.returncode}")
