#!/usr/bin/env bash
# A three-node Docker Swarm on this machine, for the --mode swarm tests that need more than one node
# (issue 19; the facts behind it: /work/shared/MULTINODE.md).
#
#   bash .ci/multinode.sh up          make it (or repair it), print each phase's time and the total
#   bash .ci/multinode.sh status      say what is there; exit 0 when the swarm is up and healthy, else 1
#   bash .ci/multinode.sh exec -- CMD run CMD as a swarm client would: in the manager's network namespace,
#                                     with this host's files and DOCKER_HOST of the manager
#   bash .ci/multinode.sh down [--all]  remove exactly what `up` made (--all: the node image and the
#                                     package cache too; kept otherwise, so the next `up` is quick)
#
# What `up` makes, all labelled tmt.multinode=1 and named tmt-mn-*:
#   - image tmt-mn/node:KEY: the local python:3.11-slim with Debian's docker.io (and iptables, iproute2,
#     procps) installed from packages downloaded on the host (`apt-get --download-only`) into a container
#     with no network, then `docker commit`ed; KEY is a hash of what goes in, so it is made once;
#   - network tmt-mn-net, a bridge on a private /24 (TMT_MULTINODE_SUBNET, else the first free of
#     192.168.240-247.0/24): registry .2, manager .10, workers .11 and .12;
#   - container tmt-mn-registry (Debian's docker-registry binary of this host, run in python:3.11-slim,
#     alias `registry`, port 5000, data in volume tmt-mn-registry-data), plain HTTP: every node trusts it;
#   - containers tmt-mn-manager, tmt-mn-worker1, tmt-mn-worker2, each running its own dockerd (its data in
#     volume tmt-mn-NODE-data; its API socket at $TMT_MULTINODE_DIR/tmt-mn-NODE/docker.sock on this host),
#     made a swarm: init on the manager at its bridge address, the workers join;
#   - python:3.11-slim on every node, through the registry (pushed from this host as
#     registry:5000/python:3.11-slim, pulled by every node and also tagged python:3.11-slim there), so images
#     built FROM it on the manager push and pull quickly;
#   - $TMT_MULTINODE_DIR/env (default /run/tmt-multinode/env): what a client needs, KEY=VALUE lines.
# It never touches the host engine's own swarm, nor anything without its label: an object of one of its
# names that is not its own stops it.
set -euo pipefail

PREFIX=tmt-mn
LABEL_KEY=tmt.multinode
LABEL="$LABEL_KEY=1"
DIR=${TMT_MULTINODE_DIR:-/run/tmt-multinode}
CACHE=${TMT_MULTINODE_CACHE:-/var/cache/tmt-multinode}
BASE=python:3.11-slim
NETWORK=$PREFIX-net
REGISTRY=$PREFIX-registry
MANAGER=$PREFIX-manager
WORKERS=("$PREFIX-worker1" "$PREFIX-worker2")
NODES=("$MANAGER" "${WORKERS[@]}")
PACKAGES=(docker.io iptables iproute2 procps)
NODE_REPO=$PREFIX/node
REGISTRY_PORT=5000
READY_TIMEOUT=${TMT_MULTINODE_TIMEOUT:-90}  # seconds for an engine to answer, the swarm to be Ready

log() { printf '[multinode] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { local t=${EPOCHREALTIME/./}; printf '%s' "$((10#$t / 1000))"; }  # milliseconds
secs() { printf '%d.%01d' "$(($1 / 1000))" "$((($1 % 1000) / 100))"; }

PHASES=()
phase_began=0
phase() { phase_began=$(now); log "$1 ..."; }
phase_done() {  # NAME WHAT
    local took=$(($(now) - phase_began))
    PHASES+=("$(printf '%-13s %6s s  %s' "$1" "$(secs $took)" "$2")")
}

sock() { printf '%s/%s/docker.sock' "$DIR" "$1"; }
nd() { local node=$1; shift; DOCKER_HOST="unix://$(sock "$node")" DOCKER_CONTEXT='' docker "$@"; }  # a node's engine

# -- ownership: touch only what carries the label ---------------------------------------------------------
label_of() {  # KIND NAME -> the label's value ("" when absent); exit 1 when there is no such object
    local fmt
    case $1 in
        container) fmt='{{ index .Config.Labels "'$LABEL_KEY'" }}' ;;
        image) fmt='{{ index .Config.Labels "'$LABEL_KEY'" }}' ;;
        *) fmt='{{ index .Labels "'$LABEL_KEY'" }}' ;;
    esac
    docker "$1" inspect -f "$fmt" "$2" 2>/dev/null
}
exists_ours() {  # KIND NAME: 0 ours, 1 absent; dies when it exists and is someone else's
    local value
    value=$(label_of "$1" "$2") || return 1
    [ "$value" = 1 ] || die "$1 $2 exists and is not the harness's (no $LABEL label): refusing to touch it"
}

# -- the node image ------------------------------------------------------------------------------------------
node_entrypoint() {
    cat <<'EOF'
#!/bin/sh
# tmt-mn node: what --privileged would give (it fails on this kind of machine: the capability bounding set
# lacks CAP_SYS_RESOURCE), then this node's dockerd as PID 1.
set -eu
mount -o remount,rw /sys 2>/dev/null || true
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    # cgroup v2 (as upstream's dind; untested on these machines, which run v1): move our processes into a
    # child cgroup, then hand every controller down
    mount -o remount,rw /sys/fs/cgroup 2>/dev/null || true
    mkdir -p /sys/fs/cgroup/init
    xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null || true
    sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers >/sys/fs/cgroup/cgroup.subtree_control
else
    # cgroup v1: each controller's mount is read-only; a plain remount,rw is refused, a bind remount is not
    awk '$3 == "cgroup" {print $2}' /proc/self/mounts | while read -r m; do mount -o remount,bind,rw "$m"; done
fi
mount --make-rshared /
# a node stopped and started again keeps its file system: the last run's pid files would stop dockerd
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid /tmt-mn/docker.sock
exec dockerd --host unix:///var/run/docker.sock --host unix:///tmt-mn/docker.sock \
    --insecure-registry registry:5000 --log-level warn "$@"
EOF
}

node_image_key() {
    { node_entrypoint; printf '%s\n' "${PACKAGES[@]}"; docker image inspect -f '{{.Id}}' "$BASE"; } |
        sha256sum | cut -c1-12
}

make_node_image() {  # -> sets NODE_IMAGE
    docker image inspect "$BASE" >/dev/null 2>&1 || die "no $BASE image on this engine: run .ci/setup-system.sh first"
    local key
    key=$(node_image_key)
    NODE_IMAGE=$NODE_REPO:$key
    if [ "$(label_of image "$NODE_IMAGE" || true)" = 1 ]; then
        phase_done "node image" "present ($NODE_IMAGE)"
        return
    fi
    # The packages, resolved against the base image's own dpkg status (the host has most of them
    # installed already, which a plain --download-only would skip), downloaded here into a cache.
    local debs=$CACHE/debs-$key build=$PREFIX-build status
    mkdir -p "$debs/partial"
    status=$(mktemp)
    local peek=$PREFIX-dpkg-status
    if exists_ours container "$peek"; then docker rm -f "$peek" >/dev/null; fi
    docker create --name "$peek" --label "$LABEL" "$BASE" true >/dev/null
    docker cp "$peek:/var/lib/dpkg/status" "$status"
    docker rm "$peek" >/dev/null
    local apt=(apt-get -q -y --no-install-recommends -o "Dir::State::status=$status" -o "Dir::Cache::archives=$debs"
               -o Debug::NoLocking=1)
    if ! "${apt[@]}" --download-only install "${PACKAGES[@]}" >"$CACHE/apt.log" 2>&1; then
        log "apt-get --download-only failed; updating the package lists once"
        apt-get -q update >>"$CACHE/apt.log" 2>&1
        "${apt[@]}" --download-only install "${PACKAGES[@]}" >>"$CACHE/apt.log" 2>&1 ||
            { rm -f "$status"; die "could not download ${PACKAGES[*]}: see $CACHE/apt.log"; }
    fi
    rm -f "$status"
    compgen -G "$debs/*.deb" >/dev/null || die "no packages in $debs: see $CACHE/apt.log"
    if exists_ours container "$build"; then docker rm -f "$build" >/dev/null; fi
    # Installed with no network; invoke-rc.d must not try to start anything (policy-rc.d: 101)
    node_entrypoint | docker run -i --name "$build" --label "$LABEL" --network none -v "$debs:/debs:ro" "$BASE" sh -c '
        set -e
        cat >/usr/local/bin/tmt-mn-node && chmod 0755 /usr/local/bin/tmt-mn-node
        printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        dpkg -i /debs/*.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }
        rm -f /usr/sbin/policy-rc.d /tmp/dpkg.log
        rm -rf /usr/share/doc/* /usr/share/man/* /var/log/apt/* /var/log/dpkg.log
        dockerd --version' >&2 || { docker rm -f "$build" >/dev/null 2>&1; die "installing the packages failed"; }
    docker commit --change 'ENTRYPOINT ["/usr/local/bin/tmt-mn-node"]' --change 'CMD []' \
        --change "LABEL $LABEL $LABEL_KEY.key=$key" \
        "$build" "$NODE_IMAGE" >/dev/null
    docker rm "$build" >/dev/null
    phase_done "node image" "built $NODE_IMAGE ($(docker image inspect -f '{{.Size}}' "$NODE_IMAGE" |
        awk '{printf "%d MB", $1 / 1e6}'), packages from $debs)"
}

# -- the network and the registry ----------------------------------------------------------------------------
host_routes_overlap() {  # SUBNET: 0 when a route of this host overlaps it
    python3 - "$1" <<'EOF'
import ipaddress, subprocess, sys
net = ipaddress.ip_network(sys.argv[1])
for line in subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout.splitlines():
    dest = line.split()[0]
    if dest != "default" and ipaddress.ip_network(dest, strict=False).overlaps(net):
        sys.exit(0)
sys.exit(1)
EOF
}

ensure_network() {  # -> sets SUBNET and PREFIX3 (the first three octets)
    if exists_ours network "$NETWORK"; then
        SUBNET=$(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' "$NETWORK")
    else
        local candidates=() c
        if [ -n "${TMT_MULTINODE_SUBNET:-}" ]; then candidates=("$TMT_MULTINODE_SUBNET")
        else for c in 240 241 242 243 244 245 246 247; do candidates+=("192.168.$c.0/24"); done; fi
        SUBNET=""
        for c in "${candidates[@]}"; do
            host_routes_overlap "$c" && continue
            # the engine refuses a subnet that overlaps one of its networks
            if docker network create --driver bridge --subnet "$c" --label "$LABEL" "$NETWORK" >/dev/null 2>&1; then
                SUBNET=$c
                break
            fi
        done
        [ -n "$SUBNET" ] || die "no free subnet among ${candidates[*]} (set TMT_MULTINODE_SUBNET to a free /24)"
    fi
    case $SUBNET in */24) ;; *) die "network $NETWORK has subnet '$SUBNET', not a /24" ;; esac
    PREFIX3=${SUBNET%.*}
}

ip_of() {
    case $1 in
        "$REGISTRY") echo "$PREFIX3.2" ;;
        "$MANAGER") echo "$PREFIX3.10" ;;
        "${WORKERS[0]}") echo "$PREFIX3.11" ;;
        "${WORKERS[1]}") echo "$PREFIX3.12" ;;
    esac
}

# A container is kept when it runs with the arguments it would be made with now (a hash in a label).
ensure_container() {  # NAME ARGS... (the `docker run` arguments after the name) -> 0; sets MADE=1 when (re)made
    local name=$1; shift
    local spec
    spec=$(printf '%s\n' "$@" | sha256sum | cut -c1-12)
    MADE=0
    if exists_ours container "$name"; then
        if [ "$(docker inspect -f "{{ index .Config.Labels \"$LABEL_KEY.spec\" }}" "$name")" = "$spec" ]; then
            [ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] || { docker start "$name" >/dev/null; MADE=1; }
            return 0
        fi
        log "$name was made differently: making it again (its volume stays)"
        docker rm -f "$name" >/dev/null
    fi
    docker run -d --name "$name" --hostname "$name" --label "$LABEL" --label "$LABEL_KEY.spec=$spec" "$@" >/dev/null
    MADE=1
}

ensure_volume() {
    exists_ours volume "$1" || docker volume create --label "$LABEL" "$1" >/dev/null
}

ensure_registry() {
    ensure_volume "$REGISTRY-data"
    # Debian's registry, plain HTTP, no auth (its packaged config asks for htpasswd): the binary of this
    # host, read-only, in the base image (same Debian, same libc)
    local bin
    bin=$(command -v docker-registry) || die "no docker-registry on this host: run .ci/setup-system.sh first"
    ensure_container "$REGISTRY" --network "$NETWORK" --ip "$(ip_of "$REGISTRY")" --network-alias registry \
        -v "$REGISTRY-data:/var/lib/registry" -v "$bin:/usr/local/bin/docker-registry:ro" \
        --entrypoint sh "$BASE" -c '
            printf "version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: /var/lib/registry}, delete: {enabled: true}}\nhttp: {addr: \":%s\"}\n" "$0" >/etc/registry.yml
            exec docker-registry serve /etc/registry.yml' "$REGISTRY_PORT"
}

registry_answers() { curl -fsS -m 2 -o /dev/null "http://$(ip_of "$REGISTRY"):$REGISTRY_PORT/v2/"; }

# -- the nodes -------------------------------------------------------------------------------------------------
node_run_args() {  # NODE -> the docker run arguments of a node container
    # No --privileged (runc: "unable to apply caps"): every capability this host's bounding set allows
    local caps=(--cap-add ALL)
    local bnd
    bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
    (( (16#$bnd >> 24) & 1 )) || caps+=(--cap-drop SYS_RESOURCE)
    printf '%s\0' --network "$NETWORK" --ip "$(ip_of "$1")" "${caps[@]}" \
        --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
        --device-cgroup-rule 'a *:* rwm' \
        -v "$1-data:/var/lib/docker" -v "$DIR/$1:/tmt-mn" \
        --stop-timeout 10 "$NODE_IMAGE"
}

engine_answers() { nd "$1" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

ensure_nodes() {
    local node args made=()
    for node in "${NODES[@]}"; do
        ensure_volume "$node-data"
        mkdir -p "$DIR/$node"
        mapfile -d '' args < <(node_run_args "$node")
        ensure_container "$node" "${args[@]}"
        [ "$MADE" = 0 ] || made+=("$node")
    done
    local deadline=$((SECONDS + READY_TIMEOUT))
    for node in "${NODES[@]}"; do
        until engine_answers "$node"; do
            if [ $SECONDS -gt $deadline ] || [ "$(docker inspect -f '{{.State.Running}}' "$node")" != true ]; then
                docker logs --tail 30 "$node" >&2 || true
                die "the engine of $node does not answer at $(sock "$node")"
            fi
            sleep 0.2
        done
    done
    phase_done engines "${#made[@]} started${made:+ (${made[*]})}, 3 answer"
}

# -- the swarm ---------------------------------------------------------------------------------------------------
swarm_fact() { nd "$1" info --format "{{.Swarm.$2}}" 2>/dev/null; }

ensure_swarm() {
    local maddr changes=()
    maddr=$(ip_of "$MANAGER")
    if [ "$(swarm_fact "$MANAGER" LocalNodeState)" != active ] || [ "$(swarm_fact "$MANAGER" ControlAvailable)" != true ]; then
        [ "$(swarm_fact "$MANAGER" LocalNodeState)" = inactive ] || nd "$MANAGER" swarm leave --force >/dev/null 2>&1 || true
        nd "$MANAGER" swarm init --advertise-addr "$maddr" --listen-addr "$maddr:2377" >/dev/null
        changes+=("init on $MANAGER at $maddr")
    fi
    local token worker state ids
    ids=" $(nd "$MANAGER" node ls -q | tr '\n' ' ')"
    for worker in "${WORKERS[@]}"; do
        state=$(swarm_fact "$worker" LocalNodeState)
        # a worker's own view has no cluster id: its node id in the manager's list says it is this swarm's
        if [ "$state" = active ] && [[ $ids == *" $(swarm_fact "$worker" NodeID) "* ]]; then
            continue
        fi
        [ "$state" = inactive ] || nd "$worker" swarm leave --force >/dev/null 2>&1 || true
        token=${token:-$(nd "$MANAGER" swarm join-token -q worker)}
        nd "$worker" swarm join --token "$token" --advertise-addr "$(ip_of "$worker")" "$maddr:2377" >/dev/null
        changes+=("$worker joined")
    done
    # nodes the manager knows that are none of ours now (a worker made again gets a new identity)
    local current=" " node id
    for node in "${NODES[@]}"; do current+="$(swarm_fact "$node" NodeID) "; done
    for id in $(nd "$MANAGER" node ls -q); do
        [[ $current == *" $id "* ]] && continue
        nd "$MANAGER" node rm --force "$id" >/dev/null && changes+=("removed stale node $id")
    done
    # every node Ready and Active (a test that drains a node puts it back; this repairs one that did not)
    local deadline=$((SECONDS + READY_TIMEOUT)) line host status avail
    while :; do
        local ready=0
        while read -r host status avail; do
            [ "$status" = Ready ] && ready=$((ready + 1))
            if [ "$avail" != Active ]; then
                nd "$MANAGER" node update --availability active "$host" >/dev/null
                changes+=("$host made Active (was $avail)")
            fi
        done < <(nd "$MANAGER" node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}')
        [ $ready = 3 ] && break
        if [ $SECONDS -gt $deadline ]; then
            nd "$MANAGER" node ls >&2 || true
            die "the swarm has $ready of 3 nodes Ready after ${READY_TIMEOUT}s"
        fi
        sleep 0.2
    done
    phase_done swarm "${changes[*]:-formed already}; 3 nodes Ready"
}

# -- the base image on every node, through the registry -------------------------------------------------------
# Pushed from this host by a small registry client (the registry's bridge address is reachable from here; the
# host engine itself cannot push there, and is not asked to): what `docker push` does, with gzip level 1, as
# `docker save` streams the image. The engine's own push compresses at the default level: loading the image
# onto the manager and pushing it from there took 26 s of a 39 s phase; this takes about 9 s. Every node then
# pulls it, which records where its layers are in the registry: an image built FROM it on the manager pushes
# only its own layers, and a worker pulls only those.
push_client() {
    cat <<'EOF_PY'
# Push the image `docker save` writes on stdin to a registry over plain HTTP (what `docker push` does, with
# gzip level 1: the engine's default level makes this step three times as long). argv: HOST:PORT NAME TAG
import hashlib, http.client, io, json, sys, tarfile, zlib

addr, name, tag = sys.argv[1:4]

def request(method, path, body=b"", headers=None, ok=(200, 201, 202)):
    conn = http.client.HTTPConnection(addr, timeout=120)
    conn.request(method, path, body=body, headers=headers or {})
    answer = conn.getresponse()
    data = answer.read()
    conn.close()
    if answer.status not in ok:
        sys.exit(f"{method} {path}: HTTP {answer.status} {data[:300]!r}")
    return answer, data

def put_blob(data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if request("HEAD", f"/v2/{name}/blobs/{digest}", ok=(200, 404))[0].status == 200:
        return digest
    location = request("POST", f"/v2/{name}/blobs/uploads/")[0].headers["Location"]
    location = location.split(addr, 1)[-1]  # absolute URL or path
    request("PUT", f"{location}{'&' if '?' in location else '?'}digest={digest}", data,
            {"Content-Type": "application/octet-stream"})
    return digest

def gzipped(stream) -> tuple[bytes, str]:
    """gzip (level 1, no name, mtime 0: the same input gives the same blob) and the input's own sha256."""
    out, raw = io.BytesIO(), hashlib.sha256()
    out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
    comp, crc, size = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS), 0, 0
    while chunk := stream.read(1 << 20):
        raw.update(chunk)
        crc, size = zlib.crc32(chunk, crc), size + len(chunk)
        out.write(comp.compress(chunk))
    out.write(comp.flush())
    out.write(crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"))
    return out.getvalue(), "sha256:" + raw.hexdigest()

layers, files, manifest = {}, {}, None
with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
    for member in tar:
        if member.issym() or member.islnk():
            files[member.name] = ("link", member.linkname)
        elif member.isfile() and member.name.endswith("layer.tar"):
            blob, diff_id = gzipped(tar.extractfile(member))
            layers[member.name] = (put_blob(blob), len(blob), diff_id)
        elif member.isfile() and member.name.endswith(".json"):
            files[member.name] = ("data", tar.extractfile(member).read())
manifest = json.loads(files["manifest.json"][1])[0]
config = files[manifest["Config"]][1]
entries = []
for path in manifest["Layers"]:
    while path not in layers and files.get(path, ("",))[0] == "link":  # a layer shared with another image
        target = files[path][1]
        path = target if "/" in target else path.rsplit("/", 1)[0] + "/" + target
    digest, size, _ = layers[path]
    entries.append({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": size, "digest": digest})
document = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
               "digest": put_blob(config)},
    "layers": entries}).encode()
request("PUT", f"/v2/{name}/manifests/{tag}", document,
        {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
EOF_PY
}

registry_image_id() {  # NAME TAG -> the config digest (= image id) of the registry's manifest, "" when none
    curl -fsS -m 5 -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://$(ip_of "$REGISTRY"):$REGISTRY_PORT/v2/$1/manifests/$2" 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["digest"])' 2>/dev/null || true
}

BASE_PUSH_PID=""
start_base_push() {  # in the background while the engines start and the swarm forms; ensure_base waits
    local want name=${BASE%%:*} tag=${BASE#*:}
    want=$(docker image inspect -f '{{.Id}}' "$BASE")
    [ "$(registry_image_id "$name" "$tag")" != "$want" ] || return 0
    BASE_PUSH_BEGAN=$(now)
    docker save "$BASE" | python3 -c "$(push_client)" "$(ip_of "$REGISTRY"):$REGISTRY_PORT" "$name" "$tag" &
    BASE_PUSH_PID=$!
}

ensure_base() {
    local want t0 done=() node
    want=$(docker image inspect -f '{{.Id}}' "$BASE")
    local remote=registry:$REGISTRY_PORT/$BASE name=${BASE%%:*} tag=${BASE#*:}
    if [ -n "$BASE_PUSH_PID" ]; then
        wait "$BASE_PUSH_PID" || die "pushing $BASE to the registry failed"
        done+=("pushed to the registry ($(secs $(($(now) - BASE_PUSH_BEGAN))) s from its start, beside engines and swarm);")
    fi
    [ "$(registry_image_id "$name" "$tag")" = "$want" ] || die "the registry does not have $BASE ($want)"
    local pids=() pulled=()
    t0=$(now)
    for node in "${NODES[@]}"; do
        if [ "$(nd "$node" image inspect -f '{{.Id}}' "$remote" 2>/dev/null)" != "$want" ]; then
            ( nd "$node" pull -q "$remote" >/dev/null ) &
            pids+=($!)
            pulled+=("$node")
        fi
    done
    local pid failed=0
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    [ $failed = 0 ] || die "pulling $remote on ${pulled[*]} failed"
    [ ${#pulled[@]} = 0 ] || done+=("${pulled[*]} pulled it ($(secs $(($(now) - t0))) s)")
    for node in "${NODES[@]}"; do  # the name a Dockerfile uses (FROM python:3.11-slim)
        [ "$(nd "$node" image inspect -f '{{.Id}}' "$BASE" 2>/dev/null)" = "$want" ] || nd "$node" tag "$remote" "$BASE"
        [ "$(nd "$node" image inspect -f '{{.Id}}' "$BASE" 2>/dev/null)" = "$want" ] ||
            die "$node does not have $BASE ($want)"
    done
    phase_done "base image" "${done[*]:-on every node already} (${want:7:12})"
}

write_env() {
    local tmp node upper
    tmp=$(mktemp "$DIR/.env.XXXXXX")
    {
        echo "# tmt-mn three-node swarm (.ci/multinode.sh up, $(date -u +%FT%TZ))"
        echo "TMT_MULTINODE_DIR=$DIR"
        echo "TMT_MULTINODE_NETWORK=$NETWORK"
        echo "TMT_MULTINODE_SUBNET=$SUBNET"
        echo "TMT_MULTINODE_NODES=${NODES[*]}"
        echo "TMT_MULTINODE_MANAGER=$MANAGER"
        echo "TMT_MULTINODE_WORKERS=${WORKERS[*]}"
        echo "DOCKER_HOST=unix://$(sock "$MANAGER")"
        echo "TMT_MULTINODE_MANAGER_PID=$(docker inspect -f '{{.State.Pid}}' "$MANAGER")"
        for node in "${NODES[@]}"; do
            upper=${node#"$PREFIX"-}; upper=${upper^^}
            echo "TMT_MULTINODE_${upper}_HOST=unix://$(sock "$node")"
            echo "TMT_MULTINODE_${upper}_ADDR=$(ip_of "$node")"
        done
        echo "TMT_MULTINODE_REGISTRY=registry:$REGISTRY_PORT"
        echo "TMT_MULTINODE_REGISTRY_ADDR=$(ip_of "$REGISTRY"):$REGISTRY_PORT"
        echo "TMT_MULTINODE_BASE=registry:$REGISTRY_PORT/$BASE"
    } >"$tmp"
    mv "$tmp" "$DIR/env"
}

lock() {
    exec 9>"${DIR%/}.lock"
    flock -w 600 9 || die "another .ci/multinode.sh holds ${DIR%/}.lock"
}

cmd_up() {
    local tool
    for tool in docker curl python3 apt-get flock nsenter sha256sum; do
        command -v "$tool" >/dev/null || die "$tool is not installed (.ci/setup-system.sh prepares this machine)"
    done
    docker info >/dev/null 2>&1 || die "no Docker engine answers"
    mkdir -p "$DIR" "$CACHE"
    chmod 0700 "$DIR"
    lock
    local began
    began=$(now)
    phase "node image"; make_node_image
    phase "registry"; ensure_network
    ensure_registry
    local deadline=$((SECONDS + 30))
    until registry_answers; do
        [ $SECONDS -le $deadline ] || { docker logs --tail 20 "$REGISTRY" >&2; die "the registry does not answer"; }
        sleep 0.1
    done
    phase_done registry "$NETWORK $SUBNET, $REGISTRY at $(ip_of "$REGISTRY"):$REGISTRY_PORT answers"
    start_base_push
    phase engines; ensure_nodes
    phase swarm; ensure_swarm
    phase "base image"; ensure_base
    write_env
    local line
    for line in "${PHASES[@]}"; do log "  $line"; done
    log "up in $(secs $(($(now) - began))) s: manager DOCKER_HOST=unix://$(sock "$MANAGER"); client settings in $DIR/env"
}

cmd_status() {
    local problems=() node
    [ -f "$DIR/env" ] || problems+=("no $DIR/env (not up?)")
    for node in "$REGISTRY" "${NODES[@]}"; do
        if ! label_of container "$node" >/dev/null; then problems+=("$node: no such container"); continue; fi
        printf '%-16s %s\n' "$node" "$(docker inspect -f '{{.State.Status}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$node")"
        [ "$(docker inspect -f '{{.State.Running}}' "$node")" = true ] || problems+=("$node is not running")
    done
    if [ ${#problems[@]} = 0 ]; then
        SUBNET=$(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' "$NETWORK"); PREFIX3=${SUBNET%.*}
        registry_answers || problems+=("the registry does not answer")
        if nd "$MANAGER" node ls 2>/dev/null; then
            local ready
            ready=$(nd "$MANAGER" node ls --format '{{.Status}} {{.Availability}}' | grep -c '^Ready Active$' || true)
            [ "$ready" = 3 ] || problems+=("$ready of 3 nodes Ready and Active")
        else
            problems+=("the manager's engine does not answer as a swarm manager")
        fi
    fi
    if [ ${#problems[@]} = 0 ]; then log "up and healthy"; return 0; fi
    for node in "${problems[@]}"; do log "$node"; done
    return 1
}

cmd_down() {
    local all=0
    [ "${1:-}" = --all ] && all=1
    mkdir -p "$(dirname "$DIR")"
    lock
    local began ids
    began=$(now)
    ids=$(docker ps -aq --filter "label=$LABEL" --filter "name=^$PREFIX-")
    [ -z "$ids" ] || docker rm -f $ids >/dev/null
    ids=$(docker volume ls -q --filter "label=$LABEL" | grep "^$PREFIX-" || true)
    [ -z "$ids" ] || docker volume rm $ids >/dev/null
    ids=$(docker network ls --filter "label=$LABEL" --format '{{.Name}}' | grep -x "$NETWORK" || true)
    [ -z "$ids" ] || docker network rm $ids >/dev/null
    if [ $all = 1 ]; then
        ids=$(docker image ls -q --filter "label=$LABEL" "$NODE_REPO" | sort -u)
        [ -z "$ids" ] || docker rmi -f $ids >/dev/null
        rm -rf "$CACHE"
    fi
    rm -rf "$DIR"
    log "down in $(secs $(($(now) - began))) s$([ $all = 1 ] && echo ' (node image and package cache removed)' ||
        echo " (kept: image $NODE_REPO and $CACHE; down --all removes them)")"
}

cmd_exec() {
    [ "${1:-}" = -- ] && shift
    [ $# -gt 0 ] || die "usage: $0 exec -- COMMAND..."
    local pid
    pid=$(docker inspect -f '{{.State.Pid}}' "$MANAGER" 2>/dev/null) && [ "$pid" -gt 0 ] ||
        die "$MANAGER does not run: bash $0 up"
    exec env -u DOCKER_CONTEXT DOCKER_HOST="unix://$(sock "$MANAGER")" nsenter --net="/proc/$pid/ns/net" -- "$@"
}

case ${1:-} in
    up) cmd_up ;;
    down) shift; cmd_down "$@" ;;
    status) cmd_status ;;
    exec) shift; cmd_exec "$@" ;;
    *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
