#!/usr/bin/env bash
# Runs the Toxiproxy-extension example experiments with Chaos Toolkit's `chaos run` and with
# `faultline experiment run`, against the same real faultline server, and checks that both
# reach the same verdict (journal status and deviated) and the one expected, both ways.
# Usage: experiments_verdicts.sh PATH/TO/faultline PATH/TO/chaos
set -euo pipefail
faultline=$(realpath "$1")
chaos=$(realpath "$2")
python=$(dirname "$chaos")/python
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# An HTTP upstream on an ephemeral port.
"$python" -c '
import http.server, sys
server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
print(server.server_address[1], flush=True)
server.serve_forever()' >"$work/upstream.port" 2>/dev/null &
pids+=($!)
# The faultline server on an ephemeral port; its address is in the JSON log.
"$faultline" --port 0 --log-format json >"$work/faultline.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  [ -s "$work/upstream.port" ] && grep -q '"address"' "$work/faultline.log" && break
  sleep 0.1
done
upstream=$(head -1 "$work/upstream.port")
api_addr=$(grep -o '"address":"[^"]*"' "$work/faultline.log" | head -1 | cut -d'"' -f4)
api="http://$api_addr"
export TOXIPROXY_HOST=${api_addr%:*} TOXIPROXY_PORT=${api_addr##*:}

# Fresh proxies before every run: `web` in front of the upstream, and a spare one.
fresh_proxies() {
  curl -sf -X POST "$api/reset" >/dev/null
  for name in web spare; do
    curl -s -X DELETE "$api/proxies/$name" >/dev/null
  done
  web=$(curl -sf -X POST "$api/proxies" \
    -d "{\"name\":\"web\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:$upstream\"}" \
    | "$python" -c 'import json,sys; print(json.load(sys.stdin)["listen"])')
  curl -sf -X POST "$api/proxies" \
    -d "{\"name\":\"spare\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:$upstream\"}" >/dev/null
}

verdict() {
  "$python" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["status"], "deviated" if j["deviated"] else "held")' "$1"
}

passed=0
failed=0
# experiment | expected verdict | --var arguments
check() {
  local file=$1 expected=$2
  shift 2
  fresh_proxies
  local vars=("--var" "proxied_url=http://$web/" "--var" "toxiproxy_url=$api" "$@")
  "$chaos" --no-log-file run --journal-path "$work/chaos.json" "${vars[@]}" "$file" >"$work/chaos.out" 2>&1 || true
  local theirs
  theirs=$(verdict "$work/chaos.json")
  fresh_proxies
  vars[1]="proxied_url=http://$web/"
  "$faultline" experiment run --journal "$work/faultline.json" "${vars[@]}" "$file" >"$work/faultline.out" 2>&1 || true
  local ours
  ours=$(verdict "$work/faultline.json")
  if [ "$theirs" = "$ours" ] && [ "$ours" = "$expected" ]; then
    echo "ok: $file $* -> chaos run: $theirs; faultline: $ours"
    passed=$((passed + 1))
  else
    echo "MISMATCH: $file $* -> chaos run: $theirs; faultline: $ours; expected: $expected"
    sed 's/^/  chaos: /' "$work/chaos.out" | tail -20
    sed 's/^/  faultline: /' "$work/faultline.out" | tail -20
    failed=$((failed + 1))
  fi
}

check examples/experiments/toxiproxy-latency.json "completed held" --var latency_ms:int=100
check examples/experiments/toxiproxy-latency.json "failed deviated" --var latency_ms:int=3000
check examples/experiments/toxiproxy-outage.json "completed held" --var target_proxy=spare
check examples/experiments/toxiproxy-outage.json "completed deviated" --var target_proxy=web

echo "experiment verdicts: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
