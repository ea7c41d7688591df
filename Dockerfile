# faultline's container image: a drop-in for Shopify's toxiproxy image (same API port 8474,
# same flags, same entrypoint style), built FROM scratch with static binaries.
#
# Nothing is compiled or pulled here: docker/build.sh builds the static release binaries on the
# host and stages them under target/docker/image/, then runs `docker build`. So:
#
#   docker/build.sh                       # binaries + images faultline:latest, faultline-echo:latest
#   docker run --rm -p 8474:8474 faultline
#   docker run --rm -p 8474:8474 -p 26379:26379 -v "$PWD/proxies.json:/config/toxiproxy.json:ro" \
#       faultline -host=0.0.0.0 -config=/config/toxiproxy.json
FROM scratch

# /faultline                the server
# /toxiproxy -> faultline   so compose files that set `entrypoint: /toxiproxy` keep working
# /faultline-cli            the CLI (`docker exec <c> /faultline-cli list`); /toxiproxy-cli
#                           links to it, as in Shopify's image
# /faultline-healthcheck    a tiny static HTTP probe (examples/healthcheck.rs): scratch has no
#                           shell or curl, and this is what HEALTHCHECK runs
COPY target/docker/image/faultline/ /

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
