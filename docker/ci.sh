#!/usr/bin/env bash
# CI entry point for the Docker path, from a fresh clone: `git clone`s the committed HEAD of
# this repository into a temporary directory (so nothing uncommitted, ignored or built on the
# host, target/ included, can reach the image), and there makes the builder image from this
# machine's toolchain (docker/builder-image.sh: no registry needed; kept between runs, so a
# rerun reuses it and the engine's layer cache), then runs docker/compose-test.sh, which builds
# the images with `docker compose build` and tests them. The clone is removed on exit; the
# compose build log is copied to target/compose-build.log first. Skips (exit 0, saying so)
# when there is no Docker engine. Any failure is non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker >/dev/null 2>&1; then
  echo "SKIP: no docker engine (docker CLI not installed)"
  exit 0
fi
if ! timeout 30 docker info >/dev/null 2>&1; then
  echo "SKIP: no docker engine (docker info failed)"
  exit 0
fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  echo "SKIP: docker engine reachable, but neither 'docker compose' nor 'docker-compose' is installed"
  exit 0
fi
# The builder image is made of this host's packages: install the few a minimal host may lack.
need=()
for pkg in gcc libc6-dev binutils findutils diffutils python3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing for the builder image: ${need[*]}"
  if ! { apt-get update -qq && apt-get install -y -qq "${need[@]}"; }; then
    echo "SKIP: the Debian package registry is unreachable; cannot install ${need[*]} for the builder image"
    exit 0
  fi
fi

origin=$PWD
tmp=$(mktemp -d "${TMPDIR:-/tmp}/faultline-docker-ci.XXXXXX")
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -f "$tmp/clone/target/compose-build.log" ]; then
    mkdir -p "$origin/target"
    cp "$tmp/clone/target/compose-build.log" "$origin/target/compose-build.log"
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== fresh clone of $(git rev-parse --short HEAD) ($(git log -1 --format=%s | cut -c1-60)) into $tmp/clone"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "   note: the working tree has uncommitted changes; the image is built from HEAD without them"
fi
git clone --quiet "$origin" "$tmp/clone"
cd "$tmp/clone"

started=$(date +%s)
echo "== docker/builder-image.sh (the Dockerfile's builder image, offline)"
docker/builder-image.sh
echo "   builder image ready in $(($(date +%s) - started)) s"
echo "== docker/compose-test.sh (Docker engine $(docker version -f '{{.Server.Version}}' 2>/dev/null))"
docker/compose-test.sh
