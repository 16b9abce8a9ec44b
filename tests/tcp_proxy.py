"""A TCP forwarder the fault tests put between a client and the server, to cut it."""

import socket
import threading
from dataclasses import dataclass, field

from tests.support import free_port

HOLD_LIMIT_SECONDS = 120


@dataclass
class Hold:
    """A request held at the proxy: `arrived` is set when it comes, `release()` sends it on."""

    marker: bytes
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 that a test can cut (refusing and dropping connections)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set = set()
        self._listener = None
        self._drops: list[bytes] = []
        self.dropped: list[bytes] = []
        self._holds: list[Hold] = []
        self.restore()

    def drop_response_to(self, *markers: bytes) -> None:
        """For each marker, the next request containing it reaches the server, but its
        response is never delivered: the connection closes instead (a lost response)."""
        with self._lock:
            self._drops.extend(markers)

    def hold_request_with(self, marker: bytes) -> Hold:
        """The next request containing `marker` waits at the proxy (its connection alone)
        until the test releases it, or HOLD_LIMIT_SECONDS pass."""
        hold = Hold(marker)
        with self._lock:
            self._holds.append(hold)
        return hold

    def release_holds(self) -> None:
        with self._lock:
            holds, self._holds = self._holds, []
        for hold in holds:
            hold.release()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop listening and drop every open connection: the server looks unreachable."""
        with self._lock:
            sockets, self._sockets = self._sockets, set()
            listener, self._listener = self._listener, None
        for sock in [listener, *sockets]:
            if sock is None:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            state = {"drop": None}
            for source, sink, request in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pipe, args=(source, sink, state, request), daemon=True
                ).start()

    def _pipe(self, source, sink, state=None, request=True) -> None:
        try:
            while data := source.recv(65536):
                if request and self._holds:
                    with self._lock:
                        hold = next((h for h in self._holds if h.marker in data), None)
                        if hold is not None:
                            self._holds.remove(hold)
                    if hold is not None:
                        hold.arrived.set()
                        hold.released.wait(HOLD_LIMIT_SECONDS)
                if request and self._drops:
                    with self._lock:
                        marker = next((m for m in self._drops if m in data), None)
                        if marker is not None:
                            self._drops.remove(marker)
                            state["drop"] = marker
                elif not request and state is not None and state["drop"] is not None:
                    self.dropped.append(state["drop"])
                    break  # the response is lost: close both sides without sending it
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            source.close()
