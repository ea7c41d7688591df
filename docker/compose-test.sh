#!/usr/bin/env bash
# End-to-end test of the Docker path: builds the images (`docker compose build`, i.e. the
# multi-stage Dockerfile; docker/builder-image.sh must have made the builder image when no
# registry is reachable), checks the image
# itself (non-root, 0.0.0.0 by default, HEALTHCHECK, Toxiproxy flags and entrypoint), brings up
# the top-level docker-compose.yml under a unique project name with host ports picked by Docker,
# then drives faultline over REST from the host and measures real traffic through it:
#   host -> published proxy port -> faultline container -> echo container (compose network)
#   client container -> faultline:18080 -> echo container
# Everything it started is removed on exit, failure and Ctrl-C included.
#
# usage: docker/compose-test.sh        exits 0 when every check passed, 1 otherwise
# env:   LATENCY_MS (default 300): the latency toxic measured from the host
#        KEEP_IMAGES=1: keep the test's image tags
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

latency=${LATENCY_MS:-300}
[[ $latency =~ ^[1-9][0-9]{0,4}$ ]] || { echo "LATENCY_MS must be a whole number of ms, not '$latency'" >&2; exit 2; }
id="$(date +%s)-$$"
project="faultline-ctest-$$"
export FAULTLINE_IMAGE="faultline:ctest-$id"
export FAULTLINE_ECHO_IMAGE="faultline-echo:ctest-$id"
# Empty host ports: Docker picks free ones, so this never collides with a running stack.
export FAULTLINE_BIND=127.0.0.1 FAULTLINE_API_PORT= FAULTLINE_ECHO_PORT= FAULTLINE_HTTP_PORT=

checks=0
containers=()
stack_up=false

say() { printf '%s\n' "$*"; }
pass() { checks=$((checks + 1)); say "ok   $checks - $*"; }
fail() {
  say "FAIL - $*"
  exit 1
}

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  fail "neither 'docker compose' nor 'docker-compose' is installed"
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is needed"
done
dc() { "${compose[@]}" -p "$project" -f "$root/docker-compose.yml" "$@"; }

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  if [ "$status" -ne 0 ] && $stack_up; then
    say "--- compose logs (last 40 lines per service)"
    dc logs --no-color --tail=40 2>&1
  fi
  for c in "${containers[@]}"; do
    [ "$status" -ne 0 ] && { say "--- logs of $c"; docker logs --tail 40 "$c" 2>&1; }
    docker rm -f "$c" >/dev/null 2>&1
  done
  if $stack_up; then
    dc down -v --remove-orphans -t 3 >/dev/null 2>&1 || say "warning: compose down failed"
  fi
  if [ "${KEEP_IMAGES:-}" != 1 ]; then
    docker rmi "$FAULTLINE_IMAGE" "$FAULTLINE_ECHO_IMAGE" >/dev/null 2>&1
  fi
  if [ "$status" -eq 0 ]; then
    say "PASS: $checks checks (compose project $project removed)"
  else
    say "FAILED after $checks passing checks (exit $status; compose project $project removed)"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers ---------------------------------------------------------------------------

# api METHOD URL [BODY]: prints the body, then "HTTP <status>" on its own line.
api() {
  local method=$1 url=$2 body=${3:-}
  if [ -n "$body" ]; then
    curl -sS -m 10 -X "$method" -H 'Content-Type: application/json' -d "$body" -w '\nHTTP %{http_code}' "$url"
  else
    curl -sS -m 10 -X "$method" -w '\nHTTP %{http_code}' "$url"
  fi
}
status_of() { tail -n1 <<<"$1" | cut -d' ' -f2; }
body_of() { sed '$d' <<<"$1"; }

# wait_healthy CONTAINER: until Docker reports the HEALTHCHECK healthy (60 s at most).
wait_healthy() {
  local c=$1 state=""
  for _ in $(seq 1 120); do
    state=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$c" 2>/dev/null || echo gone)
    case "$state" in
      healthy) return 0 ;;
      none | gone) break ;;
    esac
    [ "$(docker inspect -f '{{.State.Running}}' "$c" 2>/dev/null)" = true ] || break
    sleep 0.5
  done
  say "container $c: health '$state'"
  docker inspect -f '{{range .State.Health.Log}}{{.Output}}{{end}}' "$c" 2>/dev/null | tail -3
  return 1
}

# host_port CONTAINER PORT: the host port Docker published for a container port.
host_port() { docker port "$1" "$2/tcp" | sed -n '1{s/.*://;p}'; }

# rtt PORT COUNT: COUNT echo round trips on one new connection to 127.0.0.1:PORT; prints
# "min median max" in ms, then every sample. Fails if a reply is wrong or takes over 15 s.
rtt() {
  python3 - "$1" "$2" <<'PY'
import socket, statistics, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=15)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
samples = []
for i in range(count):
    msg = ("ping %03d through faultline\n" % i).encode()
    start = time.monotonic()
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("connection closed after %r" % got)
        got += chunk
    samples.append((time.monotonic() - start) * 1000)
    if got != msg:
        sys.exit("echo mismatch: sent %r, got %r" % (msg, got))
s.close()
print("%.1f %.1f %.1f" % (min(samples), statistics.median(samples), max(samples)))
print(" ".join("%.1f" % x for x in samples))
PY
}

# probe NETWORK URL: runs the image's health probe from a fresh client container on NETWORK;
# prints its output (which includes the time the request itself took) and keeps its status.
probe() {
  docker run --rm --network "$1" --entrypoint /faultline-healthcheck "$FAULTLINE_ECHO_IMAGE" "$2" 2>&1
}
ms_of() { sed -n 's/.*(\([0-9]*\) ms)$/\1/p' <<<"$1" | tail -n1; }

# --- 1. build --------------------------------------------------------------------------
say "== building the images with '${compose[*]} build' ($FAULTLINE_IMAGE, $FAULTLINE_ECHO_IMAGE)"
mkdir -p "$root/target"
started=$(date +%s)
dc build >"$root/target/compose-build.log" 2>&1 || { tail -n 40 "$root/target/compose-build.log"; fail "compose build failed (log: target/compose-build.log)"; }
pass "compose build made $FAULTLINE_IMAGE and $FAULTLINE_ECHO_IMAGE with the multi-stage Dockerfile in $(($(date +%s) - started)) s"

# --- 2. the image on its own -----------------------------------------------------------
say "== the image"
config=$(docker image inspect -f '{{json .Config}}' "$FAULTLINE_IMAGE")
field() { python3 -c 'import json,sys; c=json.loads(sys.argv[1]); print(json.dumps(c.get(sys.argv[2])))' "$config" "$1"; }
user=$(field User)
[[ $user =~ ^\"[1-9][0-9]*(:[0-9]+)?\"$ ]] || fail "image USER is $user, expected a numeric non-root uid"
pass "image runs as numeric non-root USER $user"
[[ $(field ExposedPorts) == *'"8474/tcp"'* ]] || fail "image does not EXPOSE 8474: $(field ExposedPorts)"
pass "image EXPOSEs 8474"
[ "$(field Entrypoint)" = '["/faultline"]' ] || fail "entrypoint is $(field Entrypoint)"
[ "$(field Cmd)" = '["-host=0.0.0.0"]' ] || fail "cmd is $(field Cmd)"
pass "ENTRYPOINT [\"/faultline\"], CMD [\"-host=0.0.0.0\"] (as Shopify's toxiproxy image)"
[[ $(field Healthcheck) == *faultline-healthcheck* ]] || fail "no HEALTHCHECK: $(field Healthcheck)"
pass "image has a HEALTHCHECK: $(field Healthcheck | cut -c1-60)..."
size=$(docker image inspect -f '{{.Size}}' "$FAULTLINE_IMAGE")
[ "$size" -lt 30000000 ] || fail "image is $size bytes, expected a small scratch image"
# The README states the size ("The image is `FROM scratch` (N MB; ..."), in MB of 10^6
# bytes as `docker images` shows it: keep that figure within 15% of the real one.
readme_mb=$(sed -n 's/^The image is `FROM scratch` (\([0-9][0-9.]*\) MB[;)].*/\1/p' "$root/README.md" | sed -n 1p)
[ -n "$readme_mb" ] || fail "README.md has no 'The image is \`FROM scratch\` (N MB' line to check the size against"
measured_mb=$(python3 -c 'import sys; print("%.1f" % (int(sys.argv[1]) / 1e6))' "$size")
python3 -c 'import sys; m, r = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(m - r) <= 0.15 * r else 1)' \
  "$measured_mb" "$readme_mb" ||
  fail "image is $measured_mb MB ($size bytes), but README.md says $readme_mb MB (more than 15% off): update the Docker section"
pass "image is $measured_mb MB ($size bytes; FROM scratch, static binaries), within 15% of README.md's $readme_mb MB"
out=$(docker run --rm --entrypoint /toxiproxy "$FAULTLINE_IMAGE" -version 2>&1) || fail "/toxiproxy -version: $out"
pass "/toxiproxy alias with Toxiproxy's -version flag: $out"

# No arguments at all: the API must be reachable through a published port, i.e. on 0.0.0.0.
c=$(docker run -d --health-interval 1s -p 127.0.0.1::8474 "$FAULTLINE_IMAGE")
containers+=("$c")
wait_healthy "$c" || fail "plain 'docker run' (no arguments) never became healthy"
pass "plain 'docker run' with no arguments: HEALTHCHECK (the image's own probe) reports healthy"
port=$(host_port "$c" 8474)
r=$(api GET "http://127.0.0.1:$port/version") || fail "GET /version through the published port: $r"
[ "$(status_of "$r")" = 200 ] && [[ $(body_of "$r") == *'"version"'* ]] || fail "GET /version: $r"
pass "plain 'docker run': API reachable from the host on published port $port -> 8474 (bound to 0.0.0.0): $(body_of "$r")"
uid=$(docker top "$c" -o pid,uid,comm | awk 'NR==2 {print $2}') || true
[ "$uid" = 65532 ] || fail "faultline runs as uid '$uid'"
pass "the server process runs as uid $uid"

# CMD replaced by `-config` only (no -host): FAULTLINE_HOST keeps it on 0.0.0.0, and the
# mounted Toxiproxy-format file is loaded.
c=$(docker run -d -p 127.0.0.1::8474 -v "$root/docker/toxiproxy.json:/config/toxiproxy.json:ro" \
  "$FAULTLINE_IMAGE" -config /config/toxiproxy.json)
containers+=("$c")
port=$(host_port "$c" 8474)
for _ in $(seq 1 40); do curl -fsS -m 2 "http://127.0.0.1:$port/version" >/dev/null 2>&1 && break; sleep 0.25; done
r=$(api GET "http://127.0.0.1:$port/proxies") || fail "GET /proxies: $r"
[[ $(body_of "$r") == *'"echo"'* && $(body_of "$r") == *'"0.0.0.0:17000"'* ]] || fail "config not loaded: $r"
pass "'docker run IMAGE -config /config/toxiproxy.json' (CMD replaced, no -host): still on 0.0.0.0, mounted config loaded"

# --- 3. the compose stack --------------------------------------------------------------
say "== docker-compose.yml, project $project (${compose[*]})"
stack_up=true
dc up -d --no-build >/dev/null 2>&1 || { dc up -d --no-build; fail "compose up failed"; }
fl=$(dc ps -q faultline)
echo_c=$(dc ps -q echo)
[ -n "$fl" ] && [ -n "$echo_c" ] || fail "compose did not start both services"
wait_healthy "$fl" || fail "faultline service never became healthy"
wait_healthy "$echo_c" || fail "echo service never became healthy"
pass "compose stack up; faultline and echo report healthy"
api_port=$(host_port "$fl" 8474)
echo_port=$(host_port "$fl" 17000)
http_port=$(host_port "$fl" 18080)
network=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$fl" | awk '{print $1}')
say "   API 127.0.0.1:$api_port, proxy echo 127.0.0.1:$echo_port, proxy http 127.0.0.1:$http_port, network $network"
base="http://127.0.0.1:$api_port"

r=$(api GET "$base/version") || fail "GET /version: $r"
[ "$(status_of "$r")" = 200 ] || fail "GET /version: $r"
pass "GET /version from the host: $(body_of "$r")"
r=$(api GET "$base/proxies") || fail "GET /proxies: $r"
python3 -c '
import json, sys
p = json.loads(sys.argv[1])
assert p["echo"]["upstream"] == "echo:7000" and p["echo"]["enabled"], p
assert p["http"]["upstream"] == "echo:8080", p
' "$(body_of "$r")" || fail "proxies not preloaded from docker/toxiproxy.json: $r"
pass "proxies 'echo' and 'http' preloaded from docker/toxiproxy.json (-config)"

# The dashboard, as a browser on the host opens it (README: open http://localhost:8474/ui).
out=$(curl -fsS -m 10 -A 'Mozilla/5.0 (compose test)' "http://localhost:$api_port/ui") \
  || fail "GET /ui from the host: $out"
grep -q '/ui/app.js' <<<"$out" || fail "GET /ui did not serve the dashboard: $out"
r=$(curl -sS -m 10 -A 'Mozilla/5.0 (compose test)' -H 'X-Faultline-UI: 1' \
  -H "Origin: http://localhost:$api_port" -w '\nHTTP %{http_code}' "http://localhost:$api_port/proxies") \
  || fail "the dashboard's GET /proxies: $r"
[ "$(status_of "$r")" = 200 ] || fail "the dashboard's GET /proxies: $r"
pass "dashboard: http://localhost:$api_port/ui is served and its same-origin API calls pass"

out=$(docker exec "$fl" /toxiproxy-cli --host http://127.0.0.1:8474 list 2>&1) \
  || fail "the CLI inside the container: $out"
grep -q "echo:7000" <<<"$out" || fail "the CLI inside the container did not list proxy echo: $out"
pass "docker exec ... /toxiproxy-cli list (the CLI in the image) lists the preloaded proxies"
out=$(docker exec "$fl" /toxiproxy-cli -h 127.0.0.1:8474 toxic add -t latency -a latency=100 -n cli_check echo 2>&1) \
  || fail "toxiproxy-cli's own flags inside the container: $out"
[ "$out" = "Added downstream latency toxic 'cli_check' on proxy 'echo'" ] || fail "toxiproxy-cli output: $out"
out=$(docker exec "$fl" /toxiproxy-cli -h 127.0.0.1:8474 toxic remove -n cli_check echo 2>&1) \
  || fail "toxiproxy-cli toxic remove: $out"
pass "/toxiproxy-cli takes toxiproxy-cli's flags (-h host:port, -t, -a, -n) and prints its output: $out"

out=$(curl -fsS -m 10 "http://127.0.0.1:$http_port/") || fail "HTTP through proxy 'http': $out"
[ "$out" = "hello from the faultline example upstream" ] || fail "unexpected HTTP body: $out"
pass "host -> faultline -> echo container over HTTP: '$out'"

samples=$(rtt "$echo_port" 5) || fail "echo through faultline failed: $samples"
read -r min med max <<<"$(head -n1 <<<"$samples")"
pass "baseline echo round trip through faultline: min $min / median $med / max $max ms"

say "== latency toxic of $latency ms (downstream) on proxy 'echo', over REST"
r=$(api POST "$base/proxies/echo/toxics" \
  "{\"name\":\"slow\",\"type\":\"latency\",\"stream\":\"downstream\",\"attributes\":{\"latency\":$latency}}") || true
[ "$(status_of "$r")" = 200 ] || fail "POST toxic: $r"
pass "POST /proxies/echo/toxics -> 200: $(body_of "$r")"
samples=$(rtt "$echo_port" 5) || fail "echo through the toxic failed: $samples"
read -r min med max <<<"$(head -n1 <<<"$samples")"
upper=$((latency + 1500))
say "   samples (ms): $(tail -n1 <<<"$samples")"
python3 -c "import sys; sys.exit(0 if $min >= $latency else 1)" ||
  fail "with the toxic, a round trip took $min ms < $latency ms"
python3 -c "import sys; sys.exit(0 if $max <= $upper else 1)" ||
  fail "with the toxic, a round trip took $max ms > $upper ms"
pass "with the toxic every round trip is in [$latency, $upper] ms: min $min / median $med / max $max ms"

r=$(api DELETE "$base/proxies/echo/toxics/slow") || true
[ "$(status_of "$r")" = 204 ] || fail "DELETE toxic: $r"
pass "DELETE /proxies/echo/toxics/slow -> 204"
samples=$(rtt "$echo_port" 5) || fail "echo after removing the toxic failed: $samples"
read -r min med max <<<"$(head -n1 <<<"$samples")"
say "   samples (ms): $(tail -n1 <<<"$samples")"
python3 -c "import sys; sys.exit(0 if $med < $latency / 2 else 1)" ||
  fail "after removing the toxic the median round trip is still $med ms"
pass "toxic removed, the effect is gone: min $min / median $med / max $max ms (median < $((latency / 2)) ms)"

say "== from a client container on the compose network"
out=$(probe "$network" "http://faultline:8474/version") || fail "client container -> faultline:8474: $out"
pass "client container -> http://faultline:8474/version: $out"
out=$(probe "$network" "http://faultline:18080/") || fail "client container -> faultline:18080: $out"
base_ms=$(ms_of "$out")
pass "client container -> faultline:18080 -> echo:8080: $out"
slow=1000
r=$(api POST "$base/proxies/http/toxics" \
  "{\"type\":\"latency\",\"stream\":\"upstream\",\"attributes\":{\"latency\":$slow}}") || true
[ "$(status_of "$r")" = 200 ] || fail "POST toxic on 'http': $r"
out=$(probe "$network" "http://faultline:18080/") || fail "client container through the toxic: $out"
ms=$(ms_of "$out")
[ -n "$ms" ] && [ "$ms" -ge "$slow" ] && [ "$ms" -le $((slow + 2000)) ] ||
  fail "with a $slow ms upstream latency toxic the request took '$ms' ms: $out"
pass "with a $slow ms upstream latency toxic, the client container's request took $ms ms (was $base_ms ms)"
r=$(api DELETE "$base/proxies/http/toxics/latency_upstream") || true
[ "$(status_of "$r")" = 204 ] || fail "DELETE toxic on 'http': $r"
out=$(probe "$network" "http://faultline:18080/") || fail "client container after removing the toxic: $out"
ms=$(ms_of "$out")
[ -n "$ms" ] && [ "$ms" -lt $((slow / 2)) ] || fail "after removing the toxic the request took '$ms' ms"
pass "toxic removed: the client container's request took $ms ms"

say "== an outage: disable the proxy, then enable it again"
r=$(api POST "$base/proxies/echo" '{"enabled":false}') || true
[ "$(status_of "$r")" = 200 ] || fail "disable: $r"
if out=$(rtt "$echo_port" 1 2>&1); then fail "echo still answered with the proxy disabled: $out"; fi
pass "proxy 'echo' disabled: the host's echo connection fails ($(tail -n1 <<<"$out" | cut -c1-70))"
r=$(api POST "$base/reset") || true
[ "$(status_of "$r")" = 204 ] || fail "POST /reset: $r"
# No `| head` here: under pipefail, head closing the pipe early fails the writer (a CI run
# once died of python's BrokenPipeError on the second line, with the echo itself working).
out=$(rtt "$echo_port" 3 2>&1) || fail "echo after /reset failed: $out"
out=${out%%$'\n'*}
pass "POST /reset re-enabled it: echo round trips work again ($out ms min/median/max)"

say "== teardown"
