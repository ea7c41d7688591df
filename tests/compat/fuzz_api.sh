#!/usr/bin/env bash
# A seeded schemathesis run against a live faultline binary, with a fixed budget of cases:
# every response must conform to docs/openapi.json (status codes, content types, schemas),
# the only 5xx allowed are Toxiproxy's documented 500s for listen errors
# (schemathesis_hooks.py), and a request that gets no answer within 10 s fails the run.
# /events is left out: it is a stream that never ends, by design.
# With a TOKEN, the server requires it (FAULTLINE_API_TOKEN) and schemathesis sends it as a
# bearer token; its ignored_auth check then also proves that a request without it is refused.
# MAX_EXAMPLES (default 25) is the budget of generated cases per operation.
# Usage: fuzz_api.sh PATH/TO/faultline PATH/TO/schemathesis [TOKEN]
set -euo pipefail
binary=$1
schemathesis=$2
token=${3:-}
auth=()
if [ -n "$token" ]; then
  export FAULTLINE_API_TOKEN=$token
  auth=(--header "Authorization: Bearer $token")
else
  unset FAULTLINE_API_TOKEN
fi
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp)
config=$(mktemp)
# The proxy and toxic the document's examples name, so the examples phase finds them.
echo '[{"name": "redis", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:6379",
        "toxics": [{"type": "latency", "attributes": {"latency": 10}}]}]' >"$config"
"$binary" --port 0 --log-format json --config "$config" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log" "$config"' EXIT
for _ in $(seq 100); do
  address=$(grep -o '"address":"[^"]*"' "$log" | head -1 | cut -d'"' -f4 || true)
  [ -n "$address" ] && break
  sleep 0.1
done
[ -n "$address" ] || { echo "faultline did not start:"; cat "$log"; exit 1; }
cd "$(mktemp -d)"
PYTHONPATH="$here" SCHEMATHESIS_HOOKS=schemathesis_hooks timeout 300 "$schemathesis" run \
  "http://$address/openapi.json" "${auth[@]}" \
  --checks all --exclude-checks not_a_server_error,positive_data_acceptance \
  --exclude-path /events \
  --phases examples,coverage,fuzzing \
  --seed 1 --max-examples "${MAX_EXAMPLES:-25}" --workers 1 \
  --request-timeout 10 --no-color
