"""Waitress's event loop at a cost that does not grow with idle connections.

Waitress's poll loop asks every open connection whether it wants to read or write on each
turn, and registers them all with a fresh poll() object: with a thousand step workers keeping
connections open, a request cost the server 2.4 ms of CPU against 0.8 ms with none open. Here the
registrations live in one epoll object, and a turn only asks the connections that can have
changed: those that had an event, those with a request in progress or output to send, and
the server's own sockets. An idle connection (nothing in progress, nothing to send) can only
change through an event on its socket, since only a request in progress lets a thread touch
it; and every connection is asked again once a second, which covers the server's own idle
timeouts (`channel_timeout`).
"""

import select
import time

from waitress import wasyncore
from waitress.channel import HTTPChannel

READ = select.POLLIN | select.POLLPRI
FULL_TURN_SECONDS = 1.0


class EpollTurns:
    """A drop-in for `wasyncore.poll2(timeout, map)`."""

    def __init__(self):
        self.epoll = select.epoll()
        self.registered: dict[int, int] = {}
        self.active: set[int] = set()
        self.fixed: set[int] = set()
        self.next_full_turn = 0.0

    def added(self, fd: int) -> None:
        self.active.add(fd)

    def removed(self, fd) -> None:
        if fd is None:
            return
        self.active.discard(fd)
        if self.registered.pop(fd, None) is not None:
            try:
                self.epoll.unregister(fd)
            except OSError:
                pass

    def __call__(self, timeout=0.0, map=None):  # noqa: A002 - wasyncore's signature
        now = time.monotonic()
        if now >= self.next_full_turn:
            self.next_full_turn = now + FULL_TURN_SECONDS
            for gone in [fd for fd in self.registered if fd not in map]:
                self.removed(gone)
            self.fixed = {fd for fd, obj in map.items() if not isinstance(obj, HTTPChannel)}
            asked = list(map)
        else:
            asked = [*self.fixed, *self.active]
        for fd in asked:
            obj = map.get(fd)
            if obj is None:
                self.removed(fd)
                continue
            self._ask(fd, obj)
        try:
            events = self.epoll.poll(-1 if timeout is None else timeout)
        except InterruptedError:
            return
        for fd, flags in events:
            obj = map.get(fd)
            if obj is None:
                continue
            self.active.add(fd)
            wasyncore.readwrite(obj, flags)

    def _ask(self, fd: int, obj) -> None:
        channel = isinstance(obj, HTTPChannel)
        # `requests` first: a thread empties it only after its last write, and sets
        # close_when_flushed before it does, so an empty list means nothing more is coming.
        idle = channel and not (
            obj.requests or obj.total_outbufs_len or obj.will_close or obj.close_when_flushed
        )
        flags = READ if obj.readable() else 0
        if obj.writable() and not obj.accepting:
            flags |= select.POLLOUT
        if flags != self.registered.get(fd):
            if not flags:
                self.removed(fd)
            elif fd in self.registered:
                self.epoll.modify(fd, flags)
                self.registered[fd] = flags
            else:
                self.epoll.register(fd, flags)
                self.registered[fd] = flags
        if channel and idle and flags == READ:
            self.active.discard(fd)
        elif channel:
            self.active.add(fd)


class Balance:
    """Open connections per server process, in memory the processes share, so that none takes
    far more than the others: a kept-alive connection stays with the process that accepted
    it, and a thousand workers connecting at once would otherwise pile onto whichever
    process was quickest to wake."""

    SLACK = 8

    def __init__(self, processes: int):
        from multiprocessing.sharedctypes import RawArray

        self.counts = RawArray("i", processes)
        self.slot = 0

    def count(self, change: int) -> None:
        self.counts[self.slot] += change

    def may_accept(self) -> bool:
        return self.counts[self.slot] <= min(self.counts) + self.SLACK

    def hold_back(self, listener) -> None:
        """Make `listener` (a waitress server) accept only while this process is not ahead."""
        readable = listener.readable
        listener.readable = lambda: readable() and self.may_accept()


class TrackedChannel(HTTPChannel):
    """A channel that tells the process's `EpollTurns` (and `Balance`) when it joins and
    leaves the map."""

    turns: EpollTurns | None = None
    balance: Balance | None = None

    def add_channel(self, map=None):  # noqa: A002
        super().add_channel(map)
        if self.turns is not None:
            self.turns.added(self._fileno)
        if self.balance is not None:
            self.balance.count(1)

    def del_channel(self, map=None):  # noqa: A002
        if self._fileno is not None:
            if self.turns is not None:
                self.turns.removed(self._fileno)
            if self.balance is not None:
                self.balance.count(-1)
        super().del_channel(map)


def install(balance: Balance | None = None, slot: int = 0) -> EpollTurns | None:
    """Use epoll turns in this process's waitress loop (Linux; None where there is none),
    and count this process's connections in `balance` under `slot`."""
    if balance is not None:
        balance.slot = slot
        balance.counts[slot] = 0
        TrackedChannel.balance = balance
    if not hasattr(select, "epoll"):
        return None
    turns = EpollTurns()
    TrackedChannel.turns = turns
    wasyncore.poll2 = turns
    return turns
