#!/usr/bin/env bash
# Docker for the lab's container runtime (`python -m evpnd.lab up --runtime docker`), on a
# machine without an image registry and without an init system:
#
#   scripts/docker.sh start    install Debian's docker.io if missing; start the project's own
#                              dockerd if it is not running (prints nothing else)
#   scripts/docker.sh images   start, then build the node images if missing (see below)
#   scripts/docker.sh stop     stop the dockerd this script started (by its PID file)
#   scripts/docker.sh env      print DOCKER_HOST=... for the project's dockerd
#
# The dockerd is the project's own, apart from any other on the machine: data under
# /var/lib/evpnd-docker, sockets under /run/evpnd-docker, no iptables and no default bridge
# (`--iptables=false --ip6tables=false --bridge=none`: the lab wires every link itself).
#
# Images (all named evpnd-lab/...):
#   evpnd-lab/debian:12   Debian 12 from debootstrap (apt's configured mirror) + `docker import`;
#                         the tarball is cached in /var/cache/evpnd-docker, so only the first
#                         run pays for debootstrap. It already holds the packages both node
#                         images need (python3, iproute2, ping, frr ...), so builds need no apt.
#   evpnd-lab/evpnd:latest  containerlab/Dockerfile with BASE=evpnd-lab/debian:12; evpnd and its
#                         pinned dependencies installed from wheels built here with the host's
#                         pip (cached in /var/cache/evpnd-docker/wheels).
#   evpnd-lab/frr:latest  containerlab/Dockerfile.frr: Debian's frr package, started from the
#                         bound /etc/frr files.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=evpnd-docker
RUN_DIR=/run/$PREFIX
DATA_ROOT=/var/lib/$PREFIX
CACHE=/var/cache/$PREFIX
SOCK=$RUN_DIR/docker.sock
PIDFILE=$RUN_DIR/dockerd.pid
LOG=$RUN_DIR/dockerd.log
export DOCKER_HOST=unix://$SOCK
DOCKER=/usr/bin/docker # the docker.io client, not whatever else is first on PATH

BASE_IMAGE=evpnd-lab/debian:12
EVPND_IMAGE=evpnd-lab/evpnd:latest
FRR_IMAGE=evpnd-lab/frr:latest
# Everything any node image needs, so that image builds never wait for apt.
BASE_PKGS=python3,python3-venv,python3-pip,iproute2,iputils-ping,tcpdump,procps,ca-certificates,frr,frr-pythontools,bridge-utils

say() { echo "docker.sh: $*" >&2; }

install_pkgs() {
  local missing=()
  for p in docker.io debootstrap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # --no-install-recommends: no cgroupfs-mount/apparmor helpers, dockerd runs without them.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

running() { [ -S "$SOCK" ] && "$DOCKER" version >/dev/null 2>&1; }

start() {
  install_pkgs
  running && return 0
  mkdir -p "$RUN_DIR" "$DATA_ROOT"
  # On a root that is itself overlayfs (a container, a pristine-root test run) dockerd cannot use
  # overlay2 and falls back to vfs, which copies a whole filesystem per layer and per container
  # (minutes and gigabytes for the lab). There the data root goes on a tmpfs, where overlay2
  # works; it is lost with the mount, and the debootstrap tarball cache makes that cheap.
  if [ "$(stat -f -c %T "$DATA_ROOT")" = overlayfs ] && ! mountpoint -q "$DATA_ROOT"; then
    say "$DATA_ROOT is on overlayfs: mounting a tmpfs there for overlay2 (see $0)"
    mount -t tmpfs -o size=8g,mode=0711 evpnd-docker "$DATA_ROOT"
    touch "$RUN_DIR/tmpfs-mounted"
  fi
  say "starting dockerd (data $DATA_ROOT, socket $SOCK, log $LOG)"
  # setsid: the daemon outlives this script and the test that called it; `stop` ends it by PID.
  setsid /usr/sbin/dockerd --iptables=false --ip6tables=false --bridge=none \
    --data-root "$DATA_ROOT" --exec-root "$RUN_DIR/x" -H "unix://$SOCK" \
    --pidfile "$PIDFILE" >"$LOG" 2>&1 </dev/null &
  for _ in $(seq 1 300); do
    running && return 0
    kill -0 $! 2>/dev/null || { say "dockerd exited; its log:"; tail -20 "$LOG" >&2; exit 1; }
    sleep 0.1
  done
  say "dockerd did not answer within 30 s; its log:"
  tail -20 "$LOG" >&2
  exit 1
}

stop() {
  [ -f "$PIDFILE" ] || return 0
  if running && [ -n "$("$DOCKER" ps -q)" ]; then
    say "dockerd left running: containers still run on it ($DOCKER ps, DOCKER_HOST=$DOCKER_HOST)"
    return 0
  fi
  local pid
  pid=$(cat "$PIDFILE")
  # Only the dockerd of this data root: the PID file is dockerd's own, and its command line
  # must name our socket (a recycled PID is never signalled).
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "unix://$SOCK"; then
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$PIDFILE"
  # dockerd leaves its own network namespace bind-mounted under the exec root
  if ! kill -0 "$pid" 2>/dev/null && mountpoint -q "$RUN_DIR/x/netns/default"; then
    umount "$RUN_DIR/x/netns/default"
  fi
  if [ -f "$RUN_DIR/tmpfs-mounted" ] && ! kill -0 "$pid" 2>/dev/null; then
    { umount "$DATA_ROOT" 2>/dev/null || umount -l "$DATA_ROOT"; } && rm -f "$RUN_DIR/tmpfs-mounted"
  fi
}

have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

base_image() {
  have_image "$BASE_IMAGE" && return 0
  local tarball=$CACHE/debian12-base.tar
  if [ ! -f "$tarball" ]; then
    local mirror root
    # apt's configured Debian mirror (as apt itself resolved it), so it works wherever apt does.
    mirror=$(apt-cache policy | awk '$3 == "bookworm/main" && $4 == "amd64" {print $2; exit}')
    mirror=${mirror:-http://deb.debian.org/debian}
    root=$(mktemp -d /var/tmp/$PREFIX-root.XXXXXX)
    say "debootstrap bookworm from $mirror (first run only, a few minutes)"
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase --include="$BASE_PKGS" bookworm "$root" "$mirror" \
      >"$RUN_DIR/debootstrap.log" 2>&1 || {
      say "debootstrap failed; see $RUN_DIR/debootstrap.log"
      tail -5 "$RUN_DIR/debootstrap.log" >&2
      exit 1
    }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    mkdir -p "$CACHE"
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
    trap - EXIT
  fi
  say "docker import $tarball as $BASE_IMAGE"
  "$DOCKER" import "$tarball" "$BASE_IMAGE" >/dev/null
}

wheels() {
  # evpnd and its pinned dependencies as wheels, built with the host's pip (which reaches
  # PyPI), keyed by pyproject.toml: the image build then needs no network.
  local key dir
  key=$(sha256sum pyproject.toml | cut -c1-16)
  dir=$CACHE/wheels/$key
  if [ ! -f "$dir/.done" ]; then
    say "building wheels for the image into $dir"
    rm -rf "$dir" && mkdir -p "$dir"
    local py=python3
    [ -x .venv/bin/python ] && py=.venv/bin/python
    "$py" -m pip wheel -q --disable-pip-version-check -w "$dir" . >&2
    touch "$dir/.done"
  fi
  # evpnd's own wheel is rebuilt every time: the image carries the working tree's code.
  rm -f "$dir"/evpnd-*.whl
  local py=python3
  [ -x .venv/bin/python ] && py=.venv/bin/python
  "$py" -m pip wheel -q --no-deps --disable-pip-version-check -w "$dir" . >&2
  echo "$dir"
}

# The build context as a tar stream: only what the Dockerfiles copy (the classic builder reads
# no <Dockerfile>.dockerignore), the wheels under containerlab/wheelhouse/.
build() {
  local image=$1 dockerfile=$2 wheeldir=$3
  say "docker build $image ($dockerfile)"
  tar -c --exclude=__pycache__ pyproject.toml README.md evpnd containerlab/Dockerfile \
    containerlab/Dockerfile.frr containerlab/evpnd-entrypoint.sh containerlab/frr-entrypoint.sh \
    --transform "s,^${wheeldir#/},containerlab/wheelhouse," -C / "${wheeldir#/}" |
    "$DOCKER" build -q --network host --build-arg "BASE=$BASE_IMAGE" -t "$image" \
      -f "$dockerfile" - >/dev/null
}

images() {
  start
  base_image
  local force=${EVPND_DOCKER_REBUILD:-0}
  if [ "$force" = 1 ] || ! have_image "$EVPND_IMAGE" || ! have_image "$FRR_IMAGE"; then
    local w
    w=$(wheels)
    if [ "$force" = 1 ] || ! have_image "$EVPND_IMAGE"; then build "$EVPND_IMAGE" containerlab/Dockerfile "$w"; fi
    if [ "$force" = 1 ] || ! have_image "$FRR_IMAGE"; then build "$FRR_IMAGE" containerlab/Dockerfile.frr "$w"; fi
  fi
}

case "${1:-}" in
start) start ;;
images) images ;;
base) start && base_image ;;
stop) stop ;;
env) echo "DOCKER_HOST=$DOCKER_HOST" ;;
*)
  echo "usage: scripts/docker.sh start|images|stop|env" >&2
  exit 2
  ;;
esac
