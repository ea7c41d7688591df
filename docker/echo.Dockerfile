# The example upstream of the top-level docker-compose.yml (examples/echo_server.rs): a TCP echo
# service on 7000 and a one-line HTTP service on 8080. Built by docker/build.sh, FROM scratch.
FROM scratch
COPY target/docker/image/echo/ /
USER 65532:65532
EXPOSE 7000 8080
HEALTHCHECK --interval=10s --timeout=5s --retries=3 \
    CMD ["/faultline-healthcheck", "--tcp", "127.0.0.1:7000"]
ENTRYPOINT ["/echo-server"]
CMD ["--echo", "0.0.0.0:7000", "--http", "0.0.0.0:8080"]
