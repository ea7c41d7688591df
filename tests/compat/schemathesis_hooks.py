"""Schemathesis checks of faultline's own, loaded with SCHEMATHESIS_HOOKS.

The only 5xx faultline may answer are Toxiproxy's 500s for a listen address that cannot be
bound or resolved (schemathesis's not_a_server_error would refuse those too), so instead of
that check: a 5xx must be a documented 500 whose JSON error is a listen error."""

import re

import schemathesis

# Go's wording, which faultline keeps: "listen tcp 127.0.0.1:1: bind: ...",
# "address x: missing port in address", "lookup host on ...: no such host".
LISTEN_ERROR = re.compile(r"^(listen tcp|address |lookup )")


@schemathesis.check
def only_listen_errors_are_server_errors(ctx, response, case):
    if response.status_code < 500:
        return None
    if response.status_code != 500:
        raise AssertionError("a %d: only Toxiproxy's 500 for listen errors is allowed" % response.status_code)
    body = response.json()
    message = body.get("error", "")
    if not LISTEN_ERROR.match(message):
        raise AssertionError("a 500 that is not a listen error: %r" % message)
    return None
