#!/usr/bin/env bash
# Builds faultline's container images from this checkout, pulling nothing from any registry:
#   1. static release binaries on the host (glibc, +crt-static), in their own target dir
#      (target/docker) so they never disturb other builds;
#   2. stages them under target/docker/image/{faultline,echo}/;
#   3. `docker build`s the FROM scratch images:
#        faultline:latest       (Dockerfile)              the server, a drop-in for toxiproxy's image
#        faultline-echo:latest  (docker/echo.Dockerfile)  the example upstream of docker-compose.yml
#
# usage: docker/build.sh [--binaries-only]
# env:   FAULTLINE_IMAGE (default faultline:latest), FAULTLINE_ECHO_IMAGE
#        (default faultline-echo:latest), CARGO_BUILD_JOBS (default 2)
# needs: a Linux host with cargo/rustc and glibc's static libraries (libc6-dev), and docker
#        for step 3.
set -euo pipefail
cd "$(dirname "$0")/.."

binaries_only=false
case "${1:-}" in
  --binaries-only) binaries_only=true ;;
  "") ;;
  -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
  *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
esac

image=${FAULTLINE_IMAGE:-faultline:latest}
echo_image=${FAULTLINE_ECHO_IMAGE:-faultline-echo:latest}
jobs=${CARGO_BUILD_JOBS:-2}
host=$(rustc -vV | sed -n 's/^host: //p')
case "$host" in
  *-linux-gnu) ;;
  *) echo "build.sh: static glibc binaries need a *-linux-gnu host; this is $host" >&2; exit 1 ;;
esac
target_dir=target/docker
out=$target_dir/$host/release
stage=$target_dir/image
static="-C target-feature=+crt-static"

echo "== static release build of faultline and faultline-cli ($host, -j $jobs, target dir $target_dir)"
# --target makes RUSTFLAGS apply to the binary only, not to build scripts and proc macros.
# No debug info: the image stays small (symbol names are kept for backtraces).
CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=debuginfo RUSTFLAGS="$static" \
  cargo build --release --target "$host" --target-dir "$target_dir" -j "$jobs" \
    -p faultline -p faultline-cli --bin faultline --bin faultline-cli

# The examples use only std, so a plain rustc builds them (cargo would also compile every
# dev-dependency of the package, TLS stack included, for nothing).
mkdir -p "$target_dir/examples"
for example in echo_server healthcheck; do
  src=examples/$example.rs bin=$target_dir/examples/$example
  if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
    echo "== rustc $src"
    # shellcheck disable=SC2086
    rustc --edition 2021 -O $static -C strip=debuginfo --target "$host" -o "$bin" "$src"
  fi
done

for bin in "$out/faultline" "$out/faultline-cli" "$target_dir/examples/echo_server" "$target_dir/examples/healthcheck"; do
  if command -v readelf >/dev/null && readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then
    echo "build.sh: $bin is dynamically linked; it would not run FROM scratch" >&2
    exit 1
  fi
done

# One build at a time from here on: two runs must not restage under each other's docker build.
mkdir -p "$target_dir"
if command -v flock >/dev/null; then
  exec 9>"$target_dir/.stage.lock"
  flock 9
fi

echo "== staging $stage"
rm -rf "$stage"
mkdir -p "$stage/faultline" "$stage/echo"
cp "$out/faultline" "$stage/faultline/faultline"
ln -s faultline "$stage/faultline/toxiproxy"
cp "$out/faultline-cli" "$stage/faultline/faultline-cli"
ln -s faultline-cli "$stage/faultline/toxiproxy-cli"
cp "$target_dir/examples/healthcheck" "$stage/faultline/faultline-healthcheck"
cp "$target_dir/examples/echo_server" "$stage/echo/echo-server"
cp "$target_dir/examples/healthcheck" "$stage/echo/faultline-healthcheck"
chmod 0755 "$stage"/*/*
ls -lh "$stage"/*/

$binaries_only && exit 0
echo "== docker build -t $image"
docker build -q -t "$image" -f Dockerfile .
echo "== docker build -t $echo_image"
docker build -q -t "$echo_image" -f docker/echo.Dockerfile .
for name in "$image" "$echo_image"; do
  docker image ls --format '{{.Repository}}:{{.Tag}}  {{.ID}}  {{.Size}}' "$name"
done
