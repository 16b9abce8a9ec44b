"""The `pipelines` command: up, server, worker, serverworker, login, demo, status."""

import argparse
import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pipelines",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str):
        return commands.add_parser(name, help=help, description=help)

    up = command("up", "run everything on this machine (data in $PIPELINES_DATA_DIR)")
    up.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the web server listens on (default: %(default)s)",
    )
    up.add_argument(
        "--port",
        type=int,
        default=8000,
        help="port the web server listens on (default: %(default)s)",
    )
    up.add_argument("--demo", action="store_true", help="run the demo pipeline once up")
    up.add_argument("--exit-after-demo", action="store_true", help="stop after the demo")

    server = command("server", "run the web server (API, dashboard, admin)")
    server.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    server.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default: %(default)s)"
    )
    server.add_argument(
        "--threads", type=int, help="requests served at once per process (default: WEB_THREADS, 8)"
    )
    server.add_argument(
        "--processes", type=int, help="server processes (default: WEB_PROCESSES, one per core)"
    )

    worker = command("worker", "run a step worker")
    worker.add_argument(
        "-q",
        "--queue",
        action="append",
        dest="queues",
        default=[],
        help="a queue to take steps from (repeat for several; default: default)",
    )
    worker.add_argument("--name", default="", help="the worker's name (default: host and pid)")
    worker.add_argument(
        "--concurrency", type=int, default=1, help="steps run at once (default: %(default)s)"
    )

    command("serverworker", "run the server worker (pipeline engine, lease reaper, sweeps)")

    login = command("login", "save the server URL and API key for the SDK on this machine")
    login.add_argument(
        "--url", default=os.environ.get("PIPELINES_API_URL", ""), help="the server's URL"
    )
    login.add_argument(
        "--key", default=os.environ.get("PIPELINES_API_KEY", ""), help="an API key of yours"
    )

    command("demo", "register the example's base tasks and run its pipeline")
    command("status", "show the server, queues and workers")

    args = parser.parse_args(argv)
    handler = {
        "up": _up,
        "server": _server,
        "worker": _worker,
        "serverworker": _serverworker,
        "login": _login,
        "demo": _demo,
        "status": _status,
    }[args.command]
    return handler(args) or 0


def _server(args) -> int:
    """The web server runs the Django app, so it is a server process: exec it."""
    command = [sys.executable, "-m", "webapp.serve", "--host", args.host, "--port", str(args.port)]
    for flag, value in (("--threads", args.threads), ("--processes", args.processes)):
        if value:
            command += [flag, str(value)]
    os.execv(sys.executable, command)  # noqa: S606
    return 0


def _worker(args) -> int:
    from ..worker.step_worker import run_worker

    return run_worker(
        queues=args.queues or ["default"], name=args.name, concurrency=args.concurrency
    )


def _serverworker(args) -> int:
    """A Celery worker of the Django app (webapp.celery), on the server queue: exec it."""
    os.execv(sys.executable, [sys.executable, "-m", "webapp.serverworker"])  # noqa: S606
    return 0


def _up(args) -> int:
    from .up import run_up

    return run_up(args)


def _demo(args) -> int:
    from .demo import run_demo

    return run_demo()


def _login(args) -> int:
    from ..client import ApiError, Client
    from ..config import ClientConfig, save_config

    url = args.url or input("Server URL [http://127.0.0.1:8000]: ") or "http://127.0.0.1:8000"
    key = args.key or input("API key: ")
    client = Client(ClientConfig(url.rstrip("/"), key.strip()), retry_for=2)
    try:
        me = client.get("me/")
    except ApiError as error:
        print(f"login failed: {error}", file=sys.stderr)
        return 1
    path = save_config(url, key.strip())
    print(f"logged in to {url} as {me['username']}; configuration written to {path}")
    return 0


def _status(args) -> int:
    from ..client import get_client

    client = get_client()
    queues = client.get("queues/")
    workers = client.get("workers/")
    print(json.dumps({"server": client.base, "queues": queues, "workers": workers}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
