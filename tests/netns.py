"""Hosts for multi-machine tests: Linux network namespaces joined by veth pairs.

`Hosts` makes one namespace per host, a bridge in the first (the server host) and a veth pair
from it to each other host, all on a private subnet that exists only inside these
namespaces. Processes run on a host with `ip netns exec`; `Forward` carries TCP between a
host and this test's own network (a socket keeps the namespace it was made in, so one thread
can listen in one namespace and connect in another). Everything is removed by name.
"""

import contextlib
import ctypes
import os
import secrets
import socket
import subprocess
import threading

CLONE_NEWNET = 0x40000000
SUBNET = "10.231.7"
_libc = ctypes.CDLL(None, use_errno=True)


class NamespacesUnavailable(Exception):
    """This machine (or user) cannot make network namespaces."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {result.stderr.strip()}")


@contextlib.contextmanager
def inside(namespace: str | None):
    """Run this thread in `namespace`'s network stack for the sockets it makes (None: ours).

    setns() moves the calling thread only; the other threads stay where they are.
    """
    if namespace is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into " + namespace)
        yield
    finally:
        _libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)


class Hosts:
    """host name -> (namespace, address); the first host holds the bridge."""

    def __init__(self, *names: str):
        self.tag = f"pl{secrets.token_hex(3)}"
        self.namespaces = {name: f"{self.tag}-{name}" for name in names}
        self.addresses = {name: f"{SUBNET}.{10 + i}" for i, name in enumerate(names)}
        self.hub = names[0]
        self.made: list[str] = []

    def create(self) -> "Hosts":
        if os.geteuid() != 0:
            raise NamespacesUnavailable("network namespaces need root")
        try:
            for namespace in self.namespaces.values():
                _ip("netns", "add", namespace)
                self.made.append(namespace)
                _ip("-n", namespace, "link", "set", "lo", "up")
        except OSError as error:
            self.delete()
            raise NamespacesUnavailable(str(error)) from error
        hub = self.namespaces[self.hub]
        try:
            _ip("-n", hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", hub, "addr", "add", f"{self.addresses[self.hub]}/24", "dev", "br0")
            _ip("-n", hub, "link", "set", "br0", "up")
            for index, name in enumerate(self.namespaces):
                if name == self.hub:
                    continue
                namespace, port = self.namespaces[name], f"v{index}"
                _ip("-n", hub, "link", "add", port, "type", "veth", "peer", "name", "eth0")
                _ip("-n", hub, "link", "set", "eth0", "netns", namespace)
                _ip("-n", hub, "link", "set", port, "master", "br0")
                _ip("-n", hub, "link", "set", port, "up")
                _ip("-n", namespace, "addr", "add", f"{self.addresses[name]}/24", "dev", "eth0")
                _ip("-n", namespace, "link", "set", "eth0", "up")
        except BaseException:
            self.delete()
            raise
        return self

    def run(self, name: str, argv: list[str]) -> list[str]:
        """`argv` as a process on host `name`."""
        return ["ip", "netns", "exec", self.namespaces[name], *argv]

    def cut(self, name: str) -> None:
        """Take the host's link down: its packets go nowhere, no connection is refused."""
        _ip("-n", self.namespaces[name], "link", "set", "eth0", "down")

    def delete(self) -> None:
        """Remove the namespaces this object made (their links and bridge go with them)."""
        for namespace in reversed(self.made):
            with contextlib.suppress(OSError):
                _ip("netns", "del", namespace)
        self.made.clear()


class Forward:
    """TCP from (namespace, host, port) to (namespace, host, port); namespace None is ours."""

    def __init__(self, listen: tuple, target: tuple):
        self.target = target
        namespace, host, port = listen
        with inside(namespace):
            self.listener = socket.create_server((host, port))
        self.port = self.listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        namespace, host, port = self.target
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                with inside(namespace):
                    upstream = socket.create_connection((host, port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        for sock in [self.listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
