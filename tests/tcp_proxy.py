"""A TCP forwarder the fault tests put between a client and the server, to cut it."""

import socket
import threading

from tests.support import free_port


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
        self.restore()

    def drop_response_to(self, *markers: bytes) -> None:
        """For each marker, the next request containing it reaches the server, but its
        response is never delivered: the connection closes instead (a lost response)."""
        with self._lock:
            self._drops.extend(markers)

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
