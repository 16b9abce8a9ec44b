"""Noticing a Redis broker connection that died while Celery was not reading it.

kombu's Redis transport reads its sockets only while the worker has room for another
message. When the broker goes away while every slot is busy, or while a finished message is
being acknowledged (the acknowledgement fails, and the slot then counts as busy for good),
the dead socket stays in the event loop: readable at every turn and never read, the worker
spins at full CPU and never reconnects, even once the broker is back (kombu #2214). When
the dead connection gets closed on the way instead, the transport stops polling altogether:
no spin, but no message is ever taken again either.

`install` makes a worker look at the sockets the transport waits on every second and, when
one is closed or the broker has closed or reset it, raise a connection error inside the
event loop. Celery then does what it does for any lost connection: it reconnects with its
usual retries, on a fresh channel with no busy slot. Other transports (AMQP) read their
socket whatever the slots, so there is nothing to watch.
"""

import errno
import socket

CHECK_SECONDS = 1.0
# What recv reports for a connection the other side has reset rather than closed.
RESET = (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ETIMEDOUT)


class BrokerConnectionLost(ConnectionError):
    """The broker closed a connection the event loop still waits on."""


def is_dead(sock: socket.socket) -> bool:
    """True when `sock` is closed, at end of file (the broker closed it) or reset."""
    if sock.fileno() == -1:
        return True
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # open, nothing to read yet
    except OSError as error:
        return error.errno in RESET


def dead_broker_socket(connection) -> bool:
    """True when a socket the Redis transport polls for `connection` is dead."""
    cycle = getattr(getattr(connection, "transport", None), "cycle", None)
    # kombu's poller keeps the socket objects it registered: an fd number could already
    # belong to another socket once the connection is closed.
    sockets = getattr(cycle, "_chan_to_sock", None) or {}
    return any(is_dead(sock) for sock in list(sockets.values()))


def check(consumer) -> None:
    """Raise BrokerConnectionLost when `consumer`'s broker connection is dead."""
    connection = getattr(consumer, "connection", None)
    if connection is not None and dead_broker_socket(connection):
        raise BrokerConnectionLost("the broker closed the connection")


def install(app, interval: float = CHECK_SECONDS) -> None:
    """Check the broker sockets of `app`'s workers every `interval` seconds.

    A consumer step, so the check is added to the event loop each time it starts: Celery
    clears the loop's timers whenever it reconnects. (A start-stop step: only those are
    kept among the consumer's steps that the event loop is handed to.)
    """
    from celery import bootsteps

    class WatchBrokerSockets(bootsteps.StartStopStep):
        name = "pipelines.worker.broker_watch"

        def register_with_event_loop(self, consumer, hub) -> None:
            hub.call_repeatedly(interval, check, consumer)

    app.steps["consumer"].add(WatchBrokerSockets)
