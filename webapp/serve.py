"""`python -m webapp.serve`: the production-grade WSGI server (waitress) for the Django app."""

import argparse
import os


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m webapp.serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

    from django.conf import settings
    from waitress import serve

    from webapp.wsgi import application

    print(f"pipelines server on http://{args.host}:{args.port}/", flush=True)
    serve(
        application,
        host=args.host,
        port=args.port,
        threads=args.threads,
        # The artifact limit is enforced by the upload handler with a clear 413; waitress only
        # needs to let such a body through.
        max_request_body_size=settings.ARTIFACT_MAX_BYTES + 1024 * 1024,
        channel_timeout=600,
        ident="pipelines",
    )


if __name__ == "__main__":
    main()
