#!/usr/bin/env bash
# run.sh CFG SCRIPT ARGS... : a toolkit script as a swarm client (manager netns, DOCKER_HOST manager), timed
cfg=$1; script=$2; shift 2
tag=${TMT_INV_TAG:-inv}
began=$(date +%s.%N)
bash /work/wt-multinode/.ci/multinode.sh exec -- env NO_COLOR=1 TMT_SWARM_PUSH=1 TMT_SIM_IMAGE=registry:5000/tmt-sim:$tag \
  /work/wt-multinode/.venv/bin/python /work/wt-multinode/$script --config "$cfg" --mode swarm "$@"
rc=$?
echo "== exit $rc in $(python3 -c "print(round($(date +%s.%N) - $began, 1))") s" >&2
exit $rc
