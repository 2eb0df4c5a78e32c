#!/usr/bin/env bash
# Load on the gateway: a transfer through POST /api/v1/transfers, measured with wrk
# (Debian's `wrk`). Starts a registry, one branch and a gateway (release build) on
# loopback, makes a customer with two accounts (one funded), then runs
#   wrk -t2 -c${CONNECTIONS:-32} -d${SECONDS_:-20}s --latency -s transfer.lua
# RISK=on|off (default off) sets the branch's fraud screen. Limits are raised so that
# the gateway, not its rate limiter, is measured.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="${BIN:-$HERE/../../target/release/corebank}"
RISK="${RISK:-off}"
D="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
"$BIN" registry --data-dir "$D/reg" --listen 127.0.0.1:19090 --insecure --reconcile-every 0 >"$D/reg.out" 2>"$D/reg.err" &
sleep 1
"$BIN" node --branch 0001 --data-dir "$D/b1" --listen 127.0.0.1:18080 --insecure --registry 127.0.0.1:19090 --risk "$RISK" >"$D/node.out" 2>"$D/node.err" &
sleep 2
COREBANK_ADMIN_PASSWORD=admin-password-1 "$BIN" gateway --registry 127.0.0.1:19090 --insecure --data-dir "$D/gw" \
  --listen 127.0.0.1:18443 --bootstrap-admin admin --rate-limit-client 1000000 --rate-limit-account 1000000 \
  --access-token-ttl 3600 >"$D/gw.out" 2>"$D/gw.err" &
for _ in $(seq 1 100); do grep -q ready "$D/gw.out" 2>/dev/null && break; sleep 0.2; done
sleep 3
G=http://127.0.0.1:18443
json() { python3 -c "import sys,json;print(json.load(sys.stdin)[\"$1\"])"; }
post() { curl -s -X POST "$G$1" -H 'content-type: application/json' "${@:3}" -d "$2"; }
token() { post /api/v1/auth/login "{\"username\":\"$1\",\"password\":\"$2\"}" | json access_token; }
ADMIN=$(token admin admin-password-1)
post /api/v1/users '{"username":"teller","password":"teller-password-1","display_name":"T","role":"teller"}' -H "authorization: Bearer $ADMIN" >/dev/null
post /api/v1/users '{"username":"load","password":"load-password-1","display_name":"L","role":"customer"}' -H "authorization: Bearer $ADMIN" >/dev/null
TELLER=$(token teller teller-password-1)
export TOKEN; TOKEN=$(token load load-password-1)
export FROM; FROM=$(post /api/v1/accounts '{"currency":"EUR"}' -H "authorization: Bearer $TOKEN" | json number)
export TO; TO=$(post /api/v1/accounts '{"currency":"EUR"}' -H "authorization: Bearer $TOKEN" | json number)
post /api/v1/deposits "{\"account\":\"$FROM\",\"amount\":\"1000000.00\"}" -H "authorization: Bearer $TELLER" -H 'idempotency-key: seed' >/dev/null
wrk -t2 -c"${CONNECTIONS:-32}" -d"${SECONDS_:-20}"s --latency -s "$HERE/transfer.lua" "$G"
