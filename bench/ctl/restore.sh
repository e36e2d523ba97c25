#!/bin/bash
# Control plane: wall time of `ipvs adm -R` loading N services with one real server each
# (2N lines, pipelined by ipvs adm) into a fresh daemon with a state file (group commit on).
#
#   bench/ctl/restore.sh ROOT [N] [ROUNDS]
#
# ROOT is a built checkout (bin/ipvs, dist/); run it for two checkouts in turn for an A/B.
# Prints one line per round: ROOT-name seconds. Kernel IPVS (ipvsadm -R) is not on this machine.
set -eu
ROOT=$1
N=${2:-10000}
ROUNDS=${3:-3}
for r in $(seq "$ROUNDS"); do
  D=$(mktemp -d)
  "$ROOT/bin/ipvs" daemon --dataplane none --control "$D/c.sock" --state-file "$D/state.json" \
    >"$D/log" 2>&1 &
  P=$!
  for _ in $(seq 50); do [ -S "$D/c.sock" ] && break; sleep 0.1; done
  for ((i = 0; i < N; i++)); do
    a="10.$((i >> 16)).$(((i >> 8) & 255)).$((i & 255))"
    echo "-A -t $a:80 -s rr"
    echo "-a -t $a:80 -r 192.0.2.1:80 -m"
  done >"$D/rules"
  s=$(date +%s.%N)
  "$ROOT/bin/ipvs" adm --control "$D/c.sock" -R <"$D/rules"
  e=$(date +%s.%N)
  echo "$(basename "$ROOT") $(echo "$e - $s" | bc)"
  kill "$P"
  wait "$P" 2>/dev/null || true
  rm -rf "$D"
done
