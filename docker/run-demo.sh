#!/usr/bin/env bash
# The docker-compose two-host demo on a machine with no image registry, as root:
#   1. start a private dockerd (its own data root and socket, bridge in 198.18.0.0/15,
#      no iptables changes) unless one is already running;
#   2. build a Debian bookworm base image with debootstrap + docker import (python3,
#      pip, iptables, iproute2; the host's CA bundle copied in if pip uses one);
#   3. docker-compose up --build --abort-on-container-exit with BASE set to it;
#   4. tear everything down: containers, network, images, the dockerd it started.
# Prints the services' output; exits with the client's exit code.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/aiotcp-docker.XXXXXX)
project=aiotcp$$
started_dockerd=""
base=aiotcp-base:bookworm
had_docker0=$(ip link show docker0 >/dev/null 2>&1 && echo yes || true)

cleanup() {
    set +e
    if [ -n "${DOCKER_HOST:-}" ]; then
        docker-compose -p "$project" -f "$here/docker-compose.yml" down --rmi all -v --remove-orphans >/dev/null 2>&1
        docker rmi -f "$base" >/dev/null 2>&1
    fi
    if [ -n "$started_dockerd" ]; then
        kill "$started_dockerd" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$started_dockerd" 2>/dev/null
        umount -R "$work/data" 2>/dev/null
        [ -n "$had_docker0" ] || ip link delete docker0 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

export DOCKER_HOST="unix://$work/docker.sock"
echo "== starting a private dockerd (bridge 198.18.254.1/24, no iptables changes)"
dockerd --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/docker.pid" \
    -H "$DOCKER_HOST" --bip 198.18.254.1/24 --iptables=false --ip-masq=false \
    >"$work/dockerd.log" 2>&1 &
started_dockerd=$!
for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
docker info >/dev/null || { cat "$work/dockerd.log"; exit 1; }

echo "== building the base image with debootstrap (Debian bookworm, minbase)"
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
debootstrap --variant=minbase \
    --include=python3,python3-pip,python3-setuptools,iptables,iproute2,ca-certificates \
    bookworm "$work/rootfs" "${mirror:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; exit 1; }
ca=$(python3 -m pip config get global.cert 2>/dev/null || true)
if [ -n "$ca" ] && [ -f "$ca" ]; then
    cp "$ca" "$work/rootfs/usr/local/share/ca-certificates/host-pip-ca.crt"
    chroot "$work/rootfs" update-ca-certificates >/dev/null 2>&1 || true
fi
rm -rf "$work/rootfs/var/cache/apt/archives"/*.deb
tar -C "$work/rootfs" -c . | docker import - "$base" >/dev/null

echo "== docker-compose up"
cd "$here"
BASE="$base" docker-compose -p "$project" -f docker-compose.yml up --build \
    --no-color --abort-on-container-exit --exit-code-from client 2>&1 | grep -v -e "^Step " -e "^ ---> " \
    || exit "${PIPESTATUS[0]}"
