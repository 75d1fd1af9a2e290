#!/usr/bin/env bash
# The real docker-compose.yml and Dockerfile, started and exercised end to end.
#
# Starts a private Docker engine (loopback only: no iptables, no masquerading, no IP
# forwarding), builds stand-ins for the official base images from Debian packages and tags
# them with the names the compose file uses, builds the gateway's image from its Dockerfile,
# runs `docker-compose up` and checks the stack through its ports published on 127.0.0.1
# (deploy/compose_checks.py). Everything it started is removed on exit, whatever happened.
#
# Exit 0 with "SKIPPED: <why>" when no engine can run here; COMPOSE_TEST_REQUIRED=1 (CI)
# turns that into a failure. Stand-in images and build layers are kept in
# COMPOSE_TEST_CACHE between runs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${COMPOSE_TEST_CACHE:-/var/cache/gateway-compose-test}
PROJECT=gwtest
STARTED=$(date +%s)

skip() {
    echo "SKIPPED: compose test: $*"
    if [ "${COMPOSE_TEST_REQUIRED:-0}" = 1 ]; then
        echo "COMPOSE_TEST_REQUIRED=1: a skip is a failure here" >&2
        exit 1
    fi
    exit 0
}
step() { printf '\n== %s (%ds)\n' "$*" $(($(date +%s) - STARTED)); }

# --- The engine -------------------------------------------------------------------------
if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null \
    || ! command -v debootstrap >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        step "installing docker.io, docker-compose and debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose debootstrap \
            >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq docker.io docker-compose debootstrap >/dev/null; } \
            || skip "docker.io, docker-compose and debootstrap could not be installed"
    else
        skip "dockerd, docker-compose or debootstrap missing, and apt-get unavailable as root"
    fi
fi
[ "$(id -u)" = 0 ] || skip "the engine needs root"

mkdir -p "$CACHE"
# One engine at a time on this machine: compose networks and the cache are shared.
exec 9>"$CACHE/lock"
flock -w 900 9 || skip "another compose test held $CACHE/lock for 15 minutes"

RUN=$(mktemp -d /tmp/gateway-compose.XXXXXX)
export DOCKER_HOST="unix://$RUN/docker.sock"
DOCKERD_PID=
# The deployer's layout: docker-compose.yml as it is, beside a .env made from .env.example
# (written below), in a directory of its own so that a developer's .env is left alone.
mkdir "$RUN/project"
cp "$ROOT/docker-compose.yml" "$RUN/project/"
COMPOSE=(docker-compose --project-name "$PROJECT" --project-directory "$RUN/project"
    --file "$RUN/project/docker-compose.yml")

cleanup() {
    local status=$?
    set +e
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        step "cleaning up"
        if [ "$status" != 0 ]; then
            "${COMPOSE[@]}" ps
            "${COMPOSE[@]}" logs --no-color --tail=40
        fi
        timeout 120 "${COMPOSE[@]}" down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1
        # Anything compose did not know about (a failed build's container).
        docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1
        docker network prune -f >/dev/null 2>&1
        docker image prune -f >/dev/null 2>&1
        kill "$DOCKERD_PID"
        for _ in $(seq 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
        kill -9 "$DOCKERD_PID" 2>/dev/null
        wait "$DOCKERD_PID" 2>/dev/null
    fi
    # The daemon's own containerd, and mounts, left behind if the daemon died.
    [ -s "$RUN/exec/containerd/containerd.pid" ] && kill "$(cat "$RUN/exec/containerd/containerd.pid")" 2>/dev/null
    grep -oE " ($RUN|$CACHE/docker)/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$RUN"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "starting dockerd (no iptables, no masquerading, no forwarding, no default bridge)"
dockerd --iptables=false --ip-masq=false --ip-forward=false --bridge=none \
    --data-root "$CACHE/docker" --exec-root "$RUN/exec" --pidfile "$RUN/dockerd.pid" \
    --host "$DOCKER_HOST" >"$RUN/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 60); do
    docker version >/dev/null 2>&1 && break
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 0.5
done
if ! docker version >/dev/null 2>&1; then
    tail -5 "$RUN/dockerd.log" >&2
    skip "dockerd did not start (log above)"
fi

# --- Images -----------------------------------------------------------------------------
if ! docker image inspect local/bookworm >/dev/null 2>&1; then
    step "building local/bookworm with debootstrap"
    debootstrap --variant=minbase bookworm "$RUN/rootfs" http://deb.debian.org/debian >"$RUN/debootstrap.log" 2>&1 \
        || { tail -5 "$RUN/debootstrap.log" >&2; exit 1; }
    rm -rf "$RUN"/rootfs/var/cache/apt/archives/*.deb "$RUN"/rootfs/var/lib/apt/lists/*
    tar -C "$RUN/rootfs" -c . | docker import - local/bookworm:latest >/dev/null
    rm -rf "$RUN/rootfs"
fi

# A stand-in is rebuilt when its directory under deploy/standins changes.
standin() {
    local dir="$ROOT/deploy/standins/$1" tag=$2 digest
    digest=$(cd "$dir" && cat ./* /etc/ssl/certs/ca-certificates.crt | sha256sum | cut -c1-16)
    if [ "$(docker image inspect -f '{{index .Config.Labels "gateway.standin"}}' "$tag" 2>/dev/null)" = "$digest" ]; then
        return
    fi
    step "building the stand-in $tag"
    rm -rf "$RUN/context" && cp -r "$dir" "$RUN/context"
    cp /etc/ssl/certs/ca-certificates.crt "$RUN/context/"
    build --label "gateway.standin=$digest" -t "$tag" "$RUN/context"
}
# The legacy builder (no BuildKit here); its output only when it fails.
build() {
    docker build --network host "$@" >"$RUN/build.log" 2>&1 || { tail -30 "$RUN/build.log" >&2; return 1; }
}
standin python python:3.11-slim
standin postgres postgres:16-alpine
standin redis redis:7-alpine

step "building the gateway's image from its Dockerfile"
build -t document-processing-gateway:latest "$ROOT"
docker image inspect -f 'image size: {{.Size}} bytes' document-processing-gateway:latest

# --- The stack --------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
FLOWER_PORT=$(free_port)
FLOWER_BASIC_AUTH="ops:$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')"
{
    sed -e "s/^FLOWER_BASIC_AUTH=.*/FLOWER_BASIC_AUTH=$FLOWER_BASIC_AUTH/" \
        -e "s/^API_KEY_SECRET=.*/API_KEY_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')/" \
        "$ROOT/.env.example"
    echo "PORT=$PORT"
    echo "FLOWER_PORT=$FLOWER_PORT"
    # Slower providers keep a job in flight long enough to restart a worker under it.
    echo "PROVIDER_LATENCY_SCALE=${PROVIDER_LATENCY_SCALE:-5}"
} >"$RUN/project/.env"

step "docker-compose up"
"${COMPOSE[@]}" up --detach --no-build

step "checks"
python3 "$ROOT/deploy/compose_checks.py" --api "http://127.0.0.1:$PORT" \
    --flower "http://127.0.0.1:$FLOWER_PORT" --flower-auth "$FLOWER_BASIC_AUTH" \
    -- "${COMPOSE[@]}"

step "passed"
