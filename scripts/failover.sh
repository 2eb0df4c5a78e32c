#!/bin/bash
# Failover time: three replicas on loopback (ports 29081-29083), `corebank client transfer`
# in a loop against all three, kill -9 of the leader, and the time from the kill to the
# next acknowledged transfer. Usage: scripts/failover.sh (after cargo build --release).
B=${COREBANK:-target/release/corebank}
D=$(mktemp -d /tmp/fo.XXXX)
M=1=127.0.0.1:29081,2=127.0.0.1:29082,3=127.0.0.1:29083
for n in 1 2 3; do
  $B node --branch 0001 --data-dir $D/r$n --listen 127.0.0.1:2908$n --insecure --node-id $n --member $M >/dev/null 2>$D/r$n.err &
  echo $! > $D/pid$n
done
S=127.0.0.1:29081,127.0.0.1:29082,127.0.0.1:29083
C="$B client --server $S --insecure --json"
sleep 2
A=$($C open-account --customer a --currency EUR | python3 -c "import sys,json;print(json.load(sys.stdin)['account'])")
Bb=$($C open-account --customer b --currency EUR | python3 -c "import sys,json;print(json.load(sys.stdin)['account'])")
$C deposit $A 100000.00 >/dev/null
L=$($B client --server 127.0.0.1:29081 --insecure --json cluster-status | python3 -c "import sys,json;print(json.load(sys.stdin)['leader_id'])")
( i=0; while [ ! -f $D/stop ]; do i=$((i+1)); if $C transfer $A $Bb 1.00 --idempotency-key k$i >/dev/null 2>&1; then date +%s%N >> $D/ok; fi; done ) &
sleep 2
K=$(date +%s%N); kill -9 $(cat $D/pid$L)
sleep 8; touch $D/stop; sleep 2
F=$(awk -v k=$K '$1>k {print $1; exit}' $D/ok)
echo "leader $L killed; failover $(( (F-K)/1000000 )) ms; writes ok: $(wc -l < $D/ok)"
pkill -f "data-dir $D/r"; rm -rf $D
