#!/usr/bin/env bash
# pushloop.sh N: N times: forget tmt-sim's own blobs in the harness's registry, then `docker compose push` of the
# four core services (one image) from the manager, as the toolkit does with TMT_SWARM_PUSH=1
cd /work/wt-multinode
export DOCKER_HOST=unix:///run/tmt-multinode/tmt-mn-manager/docker.sock TMT_SIM_IMAGE=registry:5000/tmt-sim:loop
for v in ORCHESTRATOR MARKET_ANALYSIS EXECUTION_ENGINE DASHBOARD POSTGRES REDIS KAFKA PROMETHEUS GRAFANA JAEGER VAULT; do export TMT_PORT_$v=1; done
hostd() { DOCKER_HOST=unix:///var/run/docker.sock docker "$@"; }
docker tag registry:5000/tmt-sim:race9 registry:5000/tmt-sim:loop
fails=0
for i in $(seq 1 $1); do
    hostd exec tmt-mn-registry sh -c 'cd /var/lib/registry/docker/registry/v2 && rm -rf repositories/tmt-sim blobs/sha256/01/01ff14325da39bd7d4dbe78cba8ff2c71d1ba37982f9160d8d75ccfab9a16504 blobs/sha256/0e/0e482c134a4c36ea6ce18a4e8554d310a49e3dfa5c251a549466460b820871ec blobs/sha256/f2/f2bf6ad70f582a0f280fa42d66a82d2b2c8280520d63c6327e3db056aef69c64'
    since=$(date -u +%FT%T.%NZ)
    if ! out=$(docker compose -p tmt-mn-pushloop push orchestrator market-analysis execution-engine dashboard 2>&1); then
        fails=$((fails + 1))
        echo "try $i: FAILED: $(echo "$out" | tail -2 | tr '\n' ' ')"
        hostd logs --since "$since" tmt-mn-registry 2>&1 | grep -v "blob unknown" | grep -iE "error|500" | cut -c1-700 | head -4
    fi
done
echo "$fails of $1 pushes failed"
