"""`python -m webapp.serve`: the production-grade WSGI server (waitress) for the Django app."""

import argparse
import os
import re
import resource
import socket
import time

from waitress.parser import HTTPRequestParser
from waitress.receiver import ChunkedReceiver, FixedStreamReceiver
from waitress.wasyncore import _DISCONNECTED

from webapp import eventloop, startup

# Raw artifact uploads (ArtifactViewSet.content). Waitress reads a whole body before the app
# sees it; for these the body goes straight to a file under the artifact storage root,
# hashed as it arrives, so the view can rename it into place: the bytes are written once.
RAW_UPLOAD_PATH = re.compile(r"^/api/v1/artifacts/[0-9a-f]{32}/content/?$")
# Bigger reads than waitress's 8 KiB: a 1 GiB body in 8 KiB pieces costs more in Python
# calls than in copying. Not much bigger: each recv() allocates this much, and past a few
# hundred KiB every allocation is fresh memory the kernel has to fault in.
RECV_BYTES = 256 * 1024
# What waitress reads from a file response per send(); it re-reads what the socket did not
# take, so its default (the socket buffer, MBs on loopback) reads a large download many times.
SEND_BYTES = 256 * 1024
# Connections the kernel queues while every process is busy.
LISTEN_BACKLOG = 2048


class SpoolingParser(HTTPRequestParser):
    """Waitress's parser, spooling raw artifact upload bodies into the storage's folder."""

    spool_dir = None  # set by main() when the artifact storage is local
    spool = None  # this request's SpooledBody, once its headers asked for one
    body_limit = None  # set by main(): DATA_UPLOAD_MAX_MEMORY_SIZE, for non-upload paths

    def parse_header(self, header_plus):
        super().parse_header(header_plus)
        self._limit_body()
        if (
            self.spool_dir is not None
            and self.command == "PUT"
            and isinstance(self.body_rcv, FixedStreamReceiver)
            and 0 < self.content_length < self.adj.max_request_body_size
            # unauthenticated bodies are refused anyway: keep them off the storage disk
            and "AUTHORIZATION" in self.headers
            and RAW_UPLOAD_PATH.match(self.path or "")
        ):
            from webapp.core.storage import DIGEST_BYTES, TRAILING_SHA256, SpooledBody

            trailing = self.headers.get("X_CONTENT_SHA256", "").lower() == TRAILING_SHA256
            content_size = self.content_length - DIGEST_BYTES if trailing else None
            try:
                spool = SpooledBody(self.spool_dir, content_size)
            except OSError:
                return  # waitress's own buffer; the view copies from it instead
            self.body_rcv = FixedStreamReceiver(self.content_length, spool)
            self.spool = spool

    def _limit_body(self):
        """A body too large for a non-upload path is counted, not kept (webapp/bodylimit.py
        answers it 413); a chunked one is kept only while it fits."""
        from webapp.bodylimit import DiscardedBody, is_upload_path

        limit = self.body_limit
        if limit is None or self.body_rcv is None or is_upload_path(self.path):
            return
        if isinstance(self.body_rcv, ChunkedReceiver):
            self.body_rcv.buf = DiscardedBody(limit, self.body_rcv.buf)
        elif self.content_length > limit:
            self.body_rcv.buf.close()
            self.body_rcv = FixedStreamReceiver(self.content_length, DiscardedBody())


class SpoolingChannel(eventloop.TrackedChannel):
    parser_class = SpoolingParser

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sendbuf_len = min(self.sendbuf_len, SEND_BYTES)

    def handle_read(self):
        spool, remain = self._spool_receiving()
        if spool is None:
            return super().handle_read()
        # As waitress's handle_read and recv(), but into the spool's reused buffers, and
        # never past the body, so nothing of a next request lands in them.
        try:
            block = spool.receive_block(self.socket, remain)
        except OSError as error:
            if error.args[0] not in _DISCONNECTED and self.adj.log_socket_errors:
                self.logger.exception("Socket error")
            self.handle_close()
            return
        if block:
            self.last_activity = time.time()
            self.received(block)
        else:
            self.handle_close()

    def _spool_receiving(self):
        """(spool, bytes still to come) while a spooled upload's body is being read."""
        request = self.request
        spool = getattr(request, "spool", None)
        if spool is None or request.completed or request.body_rcv.remain < 1:
            return None, 0
        return spool, request.body_rcv.remain

    def handle_close(self):
        # A client that hangs up mid-body leaves a half-read request: drop its spool now.
        request = self.request
        if request is not None:
            request.close()
        super().handle_close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m webapp.serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=None, help="per process (WEB_THREADS)")
    parser.add_argument("--processes", type=int, default=None, help="(WEB_PROCESSES)")
    args = parser.parse_args()
    startup.begin()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

    from django.conf import settings
    from django.db import connections

    from webapp.core.storage import incoming_dir, sweep_incoming
    from webapp.wsgi import application

    startup.ready()
    processes = max(1, args.processes or settings.WEB_PROCESSES)
    threads = max(1, args.threads or settings.WEB_THREADS)
    SpoolingParser.spool_dir = incoming_dir()
    SpoolingParser.body_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    sweep_incoming()
    listener = listen(args.host, args.port)
    # Each process keeps its own connections; none may be inherited across a fork.
    connections.close_all()
    limit = settings.WEB_CONNECTION_LIMIT
    _allow_open_files(processes * (limit + threads) + 64)

    balance = eventloop.Balance(processes) if processes > 1 else None

    def serve(slot: int = 0) -> None:
        eventloop.install(balance, slot)  # in the serving process: its epoll object is its own
        server = create_waitress(application, listener, threads, limit)
        if balance is not None:
            balance.hold_back(server)
        server.run()

    print(
        f"pipelines server on http://{args.host}:{args.port}/"
        f" ({processes} process{'es' if processes > 1 else ''} x {threads} threads)",
        flush=True,
    )
    if processes == 1:
        serve()
        return
    from webapp.prefork import Prefork

    raise SystemExit(Prefork(processes, serve).run())


def listen(host: str, port: int) -> socket.socket:
    """The listening socket every server process accepts on, bound once by the parent."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


def create_waitress(application, listener: socket.socket, threads: int, connection_limit: int):
    from django.conf import settings
    from waitress.server import BaseWSGIServer, create_server

    server = create_server(
        application,
        sockets=[listener],
        threads=threads,
        # The artifact limit is enforced by the views with a clear 413; waitress only needs
        # to let such a body through.
        max_request_body_size=settings.ARTIFACT_MAX_BYTES + 1024 * 1024,
        recv_bytes=RECV_BYTES,
        channel_timeout=600,
        # Every step worker keeps connections open (heartbeats, console, reports), and
        # waitress stops accepting at its limit (100 by default): a team's workers need
        # more. poll() rather than select(), which cannot watch descriptors past 1024.
        connection_limit=connection_limit,
        asyncore_use_poll=True,
        backlog=LISTEN_BACKLOG,
        ident="pipelines",
    )
    listeners = [server, *getattr(server, "map", {}).values()]
    for each in listeners:
        if isinstance(each, BaseWSGIServer):
            each.channel_class = SpoolingChannel
    return server


def _allow_open_files(wanted: int) -> None:
    """Raise this process's soft limit on open files towards `wanted` (up to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


if __name__ == "__main__":
    main()
