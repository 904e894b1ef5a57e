#!/usr/bin/env bash
# pushrace.sh N: reset the harness's registry (its own container and volume), then a first start with
# TMT_SWARM_PUSH=1 of a new stack (new image tag), as a swarm client; prints the outcome
set -u
cd /work/wt-multinode
docker rm -f tmt-mn-registry >/dev/null && docker volume rm tmt-mn-registry-data >/dev/null
bash .ci/multinode.sh up 2>&1 | grep -E "registry  |base image  "
cfg=$(.venv/bin/python /tmp/mn-inv/mkreg.py /tmp/mn-inv/race$1)
TMT_INV_TAG=race$1 /tmp/mn-inv/run.sh $cfg docker-restart.py start > /tmp/mn-inv/race$1.log 2>&1
echo "run $1: $(tail -1 /tmp/mn-inv/race$1.log)"
grep -iE "push|error|fail|unknown|blob" /tmp/mn-inv/race$1.log | grep -v "not publishing" | head -8
grep -q "push.*failed" /tmp/mn-inv/race$1.log && docker logs tmt-mn-registry 2>&1 | grep -iE "level=error|err\.|500" | cut -c1-600 | head -6
bash /work/wt-multinode/.ci/multinode.sh exec -- env NO_COLOR=1 /work/wt-multinode/.venv/bin/python /work/wt-multinode/stop-trading-system.py --config $cfg --mode swarm --remove-stack >/dev/null 2>&1
