#!/bin/sh
# FRR node entrypoint (containerlab/Dockerfile.frr): wait until containerlab has wired the
# node's CLAB_INTFS data interfaces, start the daemons /etc/frr/daemons enables through the frr
# package's own init script (watchfrr loads the bound integrated /etc/frr/frr.conf), then stay
# up as PID 1 until stopped. Without the bound frr.conf it says so in one line and exits 2.
set -u
if [ ! -f /etc/frr/frr.conf ]; then
  echo "frr-entrypoint: no config at /etc/frr/frr.conf: bind the node's frr.conf there" >&2
  exit 2
fi
want=${CLAB_INTFS:-0}
i=0
while [ "$i" -lt 600 ]; do
  have=$(ls /sys/class/net | grep -c '^eth[1-9]')
  [ "$have" -ge "$want" ] && break
  sleep 0.1; i=$((i + 1))
done
/usr/lib/frr/frrinit.sh start || exit 1
trap '/usr/lib/frr/frrinit.sh stop; exit 0' TERM INT
while :; do
  sleep 3600 &
  wait $!
done
