#!/usr/bin/env python3
"""Published Python clients drive a real faultline binary, unchanged:
toxiproxy-python (what Python test suites use) and chaostoolkit-toxiproxy (Chaos Toolkit's
extension), against a server without a token and against one started with --api-token (the
clients reach it through a URL with credentials, `http://:TOKEN@host:port`).
Usage: python_clients.py PATH/TO/faultline. Exits non-zero on any failure."""

import json
import socket
import subprocess
import sys
import threading
import time


def echo_server():
    """A TCP echo server on an ephemeral port of 127.0.0.1."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve(conn):
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)

    def accept():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def round_trip(port, message=b"ping"):
    """Seconds for one echo through 127.0.0.1:port."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        start = time.monotonic()
        s.sendall(message)
        got = b""
        while len(got) < len(message):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the echo came back")
            got += chunk
        assert got == message, got
        return time.monotonic() - start


TOKEN = "compat-s3cret"


def start_faultline(binary, *extra):
    proc = subprocess.Popen(
        [binary, "--port", "0", "--log-format", "json", *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        record = json.loads(line)
        address = record.get("fields", {}).get("address")
        if address:
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            host, port = address.rsplit(":", 1)
            return proc, host, int(port)
    raise RuntimeError("faultline exited before listening")


CHECKS = []
TOKEN_CHECKS = []


def check(name, registry=CHECKS):
    def register(fn):
        registry.append((name, fn))
        return fn

    return register


@check("toxiproxy-python: create, latency, down, reset, destroy")
def toxiproxy_python(host, port, upstream):
    from toxiproxy import Toxiproxy

    server = Toxiproxy()
    server.update_api_consumer(host, port)
    assert server.running()
    assert b"2.12.0" in server.version()
    proxy = server.create(upstream="127.0.0.1:%d" % upstream, name="py", listen="127.0.0.1:0")
    listen = int(proxy.listen.rsplit(":", 1)[1])
    assert listen != 0
    assert round_trip(listen) < 0.3
    proxy.add_toxic(type="latency", attributes={"latency": 200})
    took = round_trip(listen)
    assert took >= 0.2, took
    assert list(proxy.toxics()) == ["latency_downstream"], proxy.toxics()
    proxy.destroy_toxic("latency_downstream")
    assert round_trip(listen) < 0.3
    with proxy.down():
        try:
            round_trip(listen)
        except OSError:
            pass
        else:
            raise AssertionError("the proxy answered while down")
    assert round_trip(listen) < 0.3
    assert "py" in server.proxies()
    assert server.reset()
    server.destroy(proxy)
    assert server.get_proxy("py") is None


@check("chaostoolkit-toxiproxy: create on 0.0.0.0, toxics, disable, enable, reset, delete")
def chaos_toolkit(host, port, upstream):
    from chaostoxi.proxy import actions as proxies
    from chaostoxi.toxic import actions as toxics

    config = {"toxiproxy_host": host, "toxiproxy_port": port}
    proxies.create_proxy("chaos", "127.0.0.1", upstream, configuration=config)
    listen = int(config["chaos_PORT"])
    assert round_trip(listen) < 0.3
    toxics.create_latency_toxic("chaos", "slow", 200, configuration=config)
    took = round_trip(listen)
    assert took >= 0.2, took
    assert toxics.delete_toxic("chaos", "slow", configuration=config)
    toxics.create_limiter_toxic("chaos", "cap", 2, configuration=config)
    toxics.delete_toxic("chaos", "cap", configuration=config)
    proxies.disable_proxy("chaos", configuration=config)
    try:
        round_trip(listen)
    except OSError:
        pass
    else:
        raise AssertionError("the proxy answered while disabled")
    proxies.enable_proxy("chaos", configuration=config)
    assert round_trip(listen) < 0.3
    proxies.reset(configuration=config)
    proxies.delete_proxy("chaos", configuration=config)


@check("token: refused without it, accepted as Bearer (requests)", TOKEN_CHECKS)
def token_bearer(host, port, upstream):
    import requests

    base = "http://%s:%d" % (host, port)
    refused = requests.get(base + "/proxies")
    assert refused.status_code == 401, refused.status_code
    assert refused.json()["status"] == 401, refused.text
    assert requests.get(base + "/version").status_code == 200
    ok = requests.get(base + "/proxies", headers={"Authorization": "Bearer " + TOKEN})
    assert ok.status_code == 200, ok.text


@check("token: toxiproxy-python through http://:TOKEN@host:port", TOKEN_CHECKS)
def token_toxiproxy_python(host, port, upstream):
    from toxiproxy import Toxiproxy

    server = Toxiproxy()
    # The client builds "http://%s:%s" % (host, port): credentials ride in the host part.
    server.update_api_consumer(":%s@%s" % (TOKEN, host), port)
    proxy = server.create(upstream="127.0.0.1:%d" % upstream, name="pytok", listen="127.0.0.1:0")
    listen = int(proxy.listen.rsplit(":", 1)[1])
    proxy.add_toxic(type="latency", attributes={"latency": 200})
    took = round_trip(listen)
    assert took >= 0.2, took
    server.destroy(proxy)
    assert server.get_proxy("pytok") is None


@check("token: chaostoolkit-toxiproxy through toxiproxy_url with credentials", TOKEN_CHECKS)
def token_chaos_toolkit(host, port, upstream):
    from chaostoxi.proxy import actions as proxies

    config = {"toxiproxy_url": "http://:%s@%s:%d" % (TOKEN, host, port)}
    proxies.create_proxy("chaostok", "127.0.0.1", upstream, configuration=config)
    assert round_trip(int(config["chaostok_PORT"])) < 0.3
    proxies.delete_proxy("chaostok", configuration=config)


def run_checks(checks, binary, *extra):
    proc, host, port = start_faultline(binary, *extra)
    upstream = echo_server()
    passed = failed = 0
    try:
        for name, fn in checks:
            try:
                fn(host, port, upstream)
            except Exception as error:  # report every check, then fail the run
                failed += 1
                print("FAIL %s: %r" % (name, error))
            else:
                passed += 1
                print("ok   %s" % name)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return passed, failed


def main():
    passed, failed = run_checks(CHECKS, sys.argv[1])
    more = run_checks(TOKEN_CHECKS, sys.argv[1], "--api-token", TOKEN)
    passed, failed = passed + more[0], failed + more[1]
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
