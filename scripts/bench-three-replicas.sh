#!/bin/bash
# Three replicas of branch 0001 on loopback (ports 28081-28083), then `corebank bench node`
# against the leader. Usage: scripts/bench-three-replicas.sh BATCH CLIENTS SECONDS
# (after cargo build --release; COREBANK=path overrides the binary).
B=${COREBANK:-target/release/corebank}
D=$(mktemp -d /tmp/b3.XXXX)
M=1=127.0.0.1:28081,2=127.0.0.1:28082,3=127.0.0.1:28083
for n in 1 2 3; do
  $B node --branch 0001 --data-dir $D/r$n --listen 127.0.0.1:2808$n --insecure --node-id $n --member $M >/dev/null 2>$D/r$n.err &
done
for i in $(seq 1 100); do
  L=$($B client --server 127.0.0.1:28081 --insecure --json cluster-status 2>/dev/null | python3 -c "import sys,json;d=json.load(sys.stdin);print(d.get('leader_address') or '')" 2>/dev/null)
  [ -n "$L" ] && break; sleep 0.2
done
sleep 1
$B bench node --server $L --accounts 10000 --batch $1 --clients $2 --seconds $3 --json
pkill -f "data-dir $D/r" ; sleep 1; rm -rf $D
