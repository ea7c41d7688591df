# faultline's container image: a drop-in for Shopify's toxiproxy image (same API port 8474, same
# flags, same entrypoint style), FROM scratch with static binaries compiled in a builder stage.
#
#   docker build -t faultline .                       # or: docker compose up --build
#   docker run --rm -p 8474:8474 faultline
#   docker run --rm -p 8474:8474 -p 26379:26379 -v "$PWD/proxies.json:/config/toxiproxy.json:ro" \
#       faultline -host=0.0.0.0 -config=/config/toxiproxy.json
#   docker build --target echo -t faultline-echo .    # the example upstream of docker-compose.yml
#
# BUILDER_IMAGE is any image with cargo, rustc, gcc and glibc's static libraries (libc6-dev): the
# official Rust image by default. Without registry access, docker/builder-image.sh makes a local
# one from the host's own toolchain and the vendored crate sources, under this same tag.

ARG BUILDER_IMAGE=rust:1.95-slim-bookworm

# --- plan: the workspace's manifests, with every .rs file replaced by an empty `fn main` --------
# The stub tree only changes when a manifest or the set of files changes, so the dependency layer
# below (keyed on the stub tree's content) stays cached across source edits.
FROM ${BUILDER_IMAGE} AS plan
COPY . /src
RUN mkdir /stub && cd /src \
 && find . -name Cargo.toml -o -name Cargo.lock | while read -r f; do \
      mkdir -p "/stub/$(dirname "$f")" && cp "$f" "/stub/$f"; done \
 && find . -name '*.rs' | while read -r f; do \
      mkdir -p "/stub/$(dirname "$f")" \
      && printf '#![allow(dead_code)]\nfn main() {}\n' > "/stub/$f"; done

# --- build: static release binaries --------------------------------------------------------
FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
# Static glibc binaries (they run FROM scratch), without debug info (a smaller image). --target
# keeps RUSTFLAGS off build scripts and proc macros. The jobs default suits a small shared host.
ARG CARGO_BUILD_JOBS=2
ENV CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS} \
    RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    CARGO_TARGET_DIR=/target
# 1. Every dependency, compiled once against the stub tree: a source change starts from here.
COPY --from=plan /stub/ /src/
RUN target=$(rustc -vV | sed -n 's/^host: //p') \
 && cargo build --release --locked --target "$target" -p faultline -p faultline-cli \
      --bin faultline --bin faultline-cli
# 2. The real sources (their mtimes may be older than the stubs', so touch them for cargo).
COPY . /src/
RUN find /src -name '*.rs' -exec touch {} + \
 && target=$(rustc -vV | sed -n 's/^host: //p') \
 && cargo build --release --locked --target "$target" -p faultline -p faultline-cli \
      --bin faultline --bin faultline-cli \
 && mkdir -p /out/faultline /out/echo /target/examples \
 && for example in echo_server healthcheck; do \
      rustc --edition 2021 -O $RUSTFLAGS -C strip=debuginfo --target "$target" \
        -o "/target/examples/$example" "examples/$example.rs" || exit 1; done \
 && cp "/target/$target/release/faultline" "/target/$target/release/faultline-cli" /out/faultline/ \
 && ln -s faultline /out/faultline/toxiproxy \
 && ln -s faultline-cli /out/faultline/toxiproxy-cli \
 && cp /target/examples/healthcheck /out/faultline/faultline-healthcheck \
 && cp /target/examples/echo_server /out/echo/echo-server \
 && cp /target/examples/healthcheck /out/echo/faultline-healthcheck \
 && for bin in /out/*/*; do \
      if [ ! -L "$bin" ] && readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then \
        echo "$bin is dynamically linked; it would not run FROM scratch" >&2; exit 1; fi; done

# --- echo: the example upstream of docker-compose.yml (examples/echo_server.rs) -------------
# TCP echo on 7000, a one-line HTTP service on 8080.
FROM scratch AS echo
COPY --from=build /out/echo/ /
USER 65532:65532
EXPOSE 7000 8080
HEALTHCHECK --interval=10s --timeout=5s --retries=3 \
    CMD ["/faultline-healthcheck", "--tcp", "127.0.0.1:7000"]
ENTRYPOINT ["/echo-server"]
CMD ["--echo", "0.0.0.0:7000", "--http", "0.0.0.0:8080"]

# --- the faultline image (the default target) -------------------------------------------
FROM scratch AS faultline

# /faultline                the server
# /toxiproxy -> faultline   so compose files that set `entrypoint: /toxiproxy` keep working
# /faultline-cli            the CLI (`docker exec <c> /faultline-cli list`); /toxiproxy-cli
#                           links to it, as in Shopify's image, and then takes toxiproxy-cli's flags
# /faultline-healthcheck    a tiny static HTTP probe (examples/healthcheck.rs): scratch has no
#                           shell or curl, and this is what HEALTHCHECK runs
COPY --from=build /out/faultline/ /

# Listen on every interface inside the container: a proxy or API bound to 127.0.0.1 there is
# unreachable from the host and from other containers. The env var is the default, so it still
# holds when a user replaces CMD (e.g. only `-config ...`); a -host flag overrides it.
# NO_COLOR: plain log lines in `docker logs`.
ENV FAULTLINE_HOST=0.0.0.0 \
    LOG_LEVEL=info \
    NO_COLOR=1

# Any unprivileged uid works; 65532 is distroless' "nonroot". A mounted config file must be
# readable by it (mode 644 is enough). Docker >= 20.10 lets non-root processes bind ports < 1024
# inside a container, so proxies can still listen on :80 or :443.
USER 65532:65532

EXPOSE 8474

# GET http://127.0.0.1:$FAULTLINE_PORT/version (port 8474 unless FAULTLINE_PORT is set: to
# move the API, set FAULTLINE_PORT rather than -port so this probe follows it).
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/faultline-healthcheck"]

ENTRYPOINT ["/faultline"]
CMD ["-host=0.0.0.0"]
