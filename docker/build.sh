#!/usr/bin/env bash
# Builds faultline's two images from this checkout with the multi-stage Dockerfile:
#   faultline:latest       the server (the Dockerfile's default target)
#   faultline-echo:latest  the example upstream of docker-compose.yml (target `echo`)
# Both share the Dockerfile's builder stages, so the second build reuses the first's layers.
#
# Without registry access, run docker/builder-image.sh first (once): it makes the builder
# image from this host's toolchain. `--offline` runs it for you.
#
# usage: docker/build.sh [--offline]
# env:   FAULTLINE_IMAGE (default faultline:latest), FAULTLINE_ECHO_IMAGE
#        (default faultline-echo:latest), BUILDER_IMAGE (default: the Dockerfile's),
#        CARGO_BUILD_JOBS (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  --offline) docker/builder-image.sh ;;
  "") ;;
  -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
  *) echo "build.sh: unknown argument '$1' (expected --offline or nothing)" >&2; exit 2 ;;
esac

image=${FAULTLINE_IMAGE:-faultline:latest}
echo_image=${FAULTLINE_ECHO_IMAGE:-faultline-echo:latest}
args=(--build-arg "CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}")
[ -n "${BUILDER_IMAGE:-}" ] && args+=(--build-arg "BUILDER_IMAGE=$BUILDER_IMAGE")

echo "== docker build -t $image"
docker build "${args[@]}" -t "$image" .
echo "== docker build --target echo -t $echo_image"
docker build -q "${args[@]}" --target echo -t "$echo_image" .
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.ID}}  {{.Size}}' "$image"
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.ID}}  {{.Size}}' "$echo_image"
