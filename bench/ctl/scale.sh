#!/bin/bash
# Control plane at scale, as an operator of a big director meets it:
#   1. `ipvs adm -Lnc` of N connection entries (default 1,000,000; put into a `none` daemon by
#      its sync backup, fed v1 sync messages on lo): wall time and the client's peak RSS, and how
#      soon `ipvs adm -Lnc | head -c 1` has its byte;
#   2. a `/metrics` scrape of S services x 4 real servers (default 5,000): time to the first byte
#      and to the end, and the worst getInfo latency on the control socket meanwhile (a probe
#      every 20 ms);
#   3. `setDest` with --state-file at the same size: median latency of 15 changes (each rewrites
#      the state file before it is acknowledged).
#
#   bench/ctl/scale.sh ROOT [N] [S]
#
# ROOT is a built checkout (bin/ipvs, dist/); run it for two checkouts in turn for an A/B.
# Needs curl and /usr/bin/time. Kernel IPVS is not on this machine (no peer in the same run).
set -eu
ROOT=$(cd "$1" && pwd)
N=${2:-1000000}
S=${3:-5000}
NAME=$(basename "$ROOT")
D=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT

wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done; return 1; }

# the probe: getInfo every 20 ms for SECONDS; prints the worst and the 99th percentile
cat >"$D/probe.mjs" <<EOF
import { ControlClient } from '$ROOT/dist/src/ctl/client.js';
const c = await ControlClient.connect(process.argv[2]);
const end = Date.now() + 1000 * Number(process.argv[3]);
const lat = [];
while (Date.now() < end) {
  const t = process.hrtime.bigint();
  await c.call({ cmd: 'getInfo' });
  lat.push(Number(process.hrtime.bigint() - t) / 1e6);
  await new Promise((r) => setTimeout(r, 20));
}
lat.sort((a, b) => a - b);
console.log('getInfo max ' + lat.at(-1).toFixed(0) + ' ms, p99 ' + lat[Math.floor(lat.length * 0.99)].toFixed(0) + ' ms');
c.close();
EOF

# 1. -Lnc of N entries
cat >"$D/feed.mjs" <<EOF
import { createSocket } from 'node:dgram';
import { SyncMessage } from '$ROOT/dist/src/sync/wire.js';
const n = Number(process.argv[2]);
const port = Number(process.argv[3]);
const s = createSocket('udp4');
await new Promise((r) => s.bind(0, '127.0.0.1', r));
s.setMulticastInterface('127.0.0.1');
s.setMulticastLoopback(true);
let msg = null;
let sent = 0;
const flush = async () => {
  if (!msg) return;
  const b = Buffer.from(msg.bytes());
  await new Promise((r, j) => s.send(b, port, '224.0.0.81', (e) => (e ? j(e) : r())));
  msg = null;
  if (++sent % 4 === 0) await new Promise((r) => setTimeout(r, 1));
};
const ip = (a, b, c, d) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
for (let i = 0; i < n; i++) {
  if (msg && !msg.fits(39)) await flush();
  if (!msg) msg = new SyncMessage(1, 1, 1472, 36, Date.now());
  const k = i % 4;
  msg.addV1({ af: 2, protocol: 6, flags: 0, state: 1, cport: 1024 + (i % 60000), vport: 80,
    dport: 80, fwmark: 0, timeout: 7200, caddr: [ip(203, 0, 113, Math.floor(i / 60000) & 255)],
    vaddr: [ip(10, 0, 0, 1 + k)], daddr: [ip(192, 0, 2, 1 + k)] });
}
await flush();
s.close();
EOF
for k in 1 2 3 4; do
  echo "-A -t 10.0.0.$k:80 -s rr"
  echo "-a -t 10.0.0.$k:80 -r 192.0.2.$k:80 -m"
done >"$D/rules1"
PORT=$((18000 + RANDOM % 1000))
"$ROOT/bin/ipvs" daemon --dataplane none --control "$D/a.sock" --rules "$D/rules1" >"$D/a.log" 2>&1 &
PIDS+=($!)
wait_sock "$D/a.sock"
"$ROOT/bin/ipvs" adm --control "$D/a.sock" --start-daemon backup --mcast-interface lo \
  --syncid 1 --mcast-port "$PORT"
sleep 0.5
node "$D/feed.mjs" "$N" "$PORT"
sleep 2
got=$("$ROOT/bin/ipvs" adm --control "$D/a.sock" -Lnc | wc -l)
/usr/bin/time -f "%e %M" -o "$D/time" "$ROOT/bin/ipvs" adm --control "$D/a.sock" -Lnc >/dev/null
read -r secs kb <"$D/time"
s0=$(date +%s%N)
"$ROOT/bin/ipvs" adm --control "$D/a.sock" -Lnc | head -c 1 >/dev/null || true
first=$((($(date +%s%N) - s0) / 1000000))
echo "$NAME -Lnc: $((got - 2)) entries in $secs s, client peak RSS $((kb / 1024)) MiB; | head -c 1: $first ms"

# 2. /metrics and 3. setDest with a state file, S services x 4 real servers
for ((i = 0; i < S; i++)); do
  v="10.$((1 + (i >> 8))).$((i & 255)).1"
  echo "-A -t $v:80 -s rr"
  for j in 0 1 2 3; do echo "-a -t $v:80 -r 192.0.$j.$((i & 255)):8080 -m"; done
done >"$D/rules"
HPORT=$((19000 + RANDOM % 1000))
"$ROOT/bin/ipvs" daemon --dataplane none --control "$D/b.sock" --rules "$D/rules" \
  --state-file "$D/state.json" --http "127.0.0.1:$HPORT" >"$D/b.log" 2>&1 &
PIDS+=($!)
wait_sock "$D/b.sock"
sleep 1
node "$D/probe.mjs" "$D/b.sock" 5 >"$D/probe" &
PIDS+=($!)
sleep 0.5
m=""
for _ in 1 2 3; do
  m="$m $(curl -s -o /dev/null -w '%{time_starttransfer}/%{time_total}' "http://127.0.0.1:$HPORT/metrics")"
done
wait "${PIDS[-1]}"
echo "$NAME /metrics ($S x 4) first byte / end, s:$m; $(cat "$D/probe")"
cat >"$D/edit.mjs" <<EOF
import { ControlClient } from '$ROOT/dist/src/ctl/client.js';
const c = await ControlClient.connect(process.argv[2]);
const service = { af: 2, protocol: 6, addr: '10.1.0.1', port: 80, fwmark: 0 };
const [d] = await c.call({ cmd: 'getDests', service });
const t = [];
for (let i = 0; i < 15; i++) {
  const a = process.hrtime.bigint();
  await c.call({ cmd: 'setDest', service, dest: { ...d, weight: 2 + i } });
  t.push(Number(process.hrtime.bigint() - a) / 1e6);
}
t.sort((a, b) => a - b);
console.log('setDest median ' + t[7].toFixed(0) + ' ms (range ' + t[0].toFixed(0) + '-' + t[14].toFixed(0) + ')');
c.close();
EOF
echo "$NAME state file ($S x 4): $(node "$D/edit.mjs" "$D/b.sock")"
