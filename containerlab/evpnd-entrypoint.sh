#!/bin/sh
# Start evpnd once containerlab has wired the node: its CLAB_INTFS data interfaces exist and
# the exec lines have put the VTEP address in place (they run after the container starts).
# Waits at most 60 s for each, then starts evpnd anyway (it retries its BGP sessions itself).
# Without its config (the topology's bind missing) it says so in one line and exits 2.
set -u
conf=/etc/evpnd/evpnd.yaml
prev=
for arg in "$@"; do
  [ "$prev" = "-c" ] || [ "$prev" = "--config" ] && conf=$arg
  prev=$arg
done
if [ ! -f "$conf" ] || [ ! -r "$conf" ]; then
  # docker makes an empty directory where a bind's source is missing: that is no config either
  echo "evpnd-entrypoint: no config at $conf: bind the node's evpnd.yaml there" \
    "(containerlab: binds: [<node>/evpnd.yaml:$conf])" >&2
  exit 2
fi
want=${CLAB_INTFS:-0}
i=0
while [ "$i" -lt 600 ]; do
  have=$(ls /sys/class/net | grep -c '^eth[1-9]')
  [ "$have" -ge "$want" ] && break
  sleep 0.1; i=$((i + 1))
done
vtep=$(python3 -c "import yaml,sys; print(yaml.safe_load(open('$conf'))['vtep'])" 2>/dev/null || true)
i=0
while [ -n "$vtep" ] && [ "$i" -lt 600 ]; do
  ip -o addr show | grep -q " $vtep/" && break
  sleep 0.1; i=$((i + 1))
done
exec "$@"
