"""Listening sockets that outlive the workers, handing over only connections with a request.

granian on Linux has each worker open its own SO_REUSEPORT socket, and the kernel
spreads new connections over them. When a worker is retired (SERVER_WORKER_MAX_RSS,
SERVER_WORKER_LIFETIME, a HUP) its socket closes with it, and every connection
waiting in that socket's queue is reset. hyper's graceful stop adds a second way to
drop a request: it closes at once a connection it accepted but has read nothing from
yet. Both dropped requests while workers were recycled: 11 of 808,267 in 180 s of
recycling every 5 s (tests/reliability/test_server_lifecycle.py).

So the master opens one SO_REUSEPORT socket per worker slot and keeps it open. A
worker inherits its slot's socket; its replacement, started before it is told to stop,
inherits the same one, so the queue outlives them both. One socket per slot rather
than one for all keeps the kernel's even spread of connections over the workers: with
one shared socket the workers that happened to be running took nearly all of a burst
of new connections (28, 26, 6 and 0 of 64 across four workers on two cores).
TCP_DEFER_ACCEPT makes the kernel hand a connection over only once its first bytes
have arrived, so a retiring worker holds no connection with nothing read from it.
"""
from __future__ import annotations

import socket

from granian.net import SocketSpec
from granian.server.mp import MPServer


class KeptListenersServer(MPServer):
    """granian's process server with the master's own deferred-accept socket for each worker slot.

    `defer_seconds`: how long the kernel waits for a connection's first bytes before
    it hands the connection over anyway (then hyper's header timeout applies).
    """

    def __init__(self, *args, defer_seconds: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.defer_seconds = defer_seconds
        self._kept: dict[int, tuple] = {}

    def _spawn_worker(self, idx, target, callback_loader):
        if self.bind_uds:  # granian already shares one unix socket
            return super()._spawn_worker(idx, target, callback_loader)
        # granian passes the worker ((spec, holder), socket); a holder is used as it is.
        self._ssp, (self._shd, self._sso) = None, self._listener(idx)
        return super()._spawn_worker(idx, target, callback_loader)

    def _listener(self, idx: int) -> tuple:
        """The slot's (holder, socket), opened the first time the slot is filled."""
        if idx not in self._kept:
            holder = SocketSpec(self.bind_addr, self.bind_port, self.backlog).build()
            listener = socket.socket(fileno=holder.get_fd())
            listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, self.defer_seconds)
            listener.set_inheritable(True)
            self._kept[idx] = (holder, listener)
        return self._kept[idx]

    def _drop_shared_socket(self):
        super()._drop_shared_socket()
        for _, listener in self._kept.values():
            listener.close()
        self._kept = {}
