"""Closing the HTTP connection after each ClearML response.

Why: the `clearml` SDK forks a background reporting process after its HTTP session has
already been used, so parent and child share the pooled keep-alive sockets; when both send
on one socket, each may read the other's response and one of them waits forever (seen as
`Task.close()` hanging in a step script, every few runs). clearml-server closes idle
connections within seconds, which hides this; we answer every ClearML call with
`Connection: close`, so the SDK's pool never holds a socket for a fork to share.

WSGI forbids an application to set `Connection` itself, so with waitress (our server) we
mark the request as `Connection: close`, which makes waitress send the header and close.
Other servers are left as they are (gunicorn's sync workers close after each response).
"""


def close_after_response(request) -> None:
    probe = request.META.get("waitress.client_disconnected")
    channel = getattr(probe, "__self__", None)
    pending = getattr(channel, "requests", None)
    if not pending:
        return
    # waitress serves channel.requests[0] and reads its headers when it writes the response.
    headers = getattr(pending[0], "headers", None)
    if isinstance(headers, dict):
        headers["CONNECTION"] = "close"
