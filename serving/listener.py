"""One listening socket for every worker, opened by the master, handing over only connections with a request.

granian on Linux gives each worker its own SO_REUSEPORT socket. The kernel spreads
new connections over them, so when a worker is retired (SERVER_WORKER_MAX_RSS,
SERVER_WORKER_LIFETIME, a reload) every connection waiting in that worker's queue is
reset with its socket. And hyper's graceful stop closes at once a connection it has
accepted but read nothing from yet, which drops a request sent a moment later.
Both dropped requests during worker recycling (tests/reliability/test_server_lifecycle.py).

So the master opens one socket that the workers inherit, as granian does on other
systems: a retiring worker leaves its queue to the others. TCP_DEFER_ACCEPT makes the
kernel hand a connection over only once its first bytes have arrived, so a worker no
longer holds connections with nothing to read when it is told to stop.
"""
from __future__ import annotations

import socket

from granian.net import SocketSpec
from granian.server.mp import MPServer


class OneListenerServer(MPServer):
    """granian's process server with one shared, deferred-accept TCP socket.

    `defer_seconds` is how long the kernel waits for a connection's first bytes before
    it hands the connection over anyway (then hyper's header timeout applies).
    """

    def __init__(self, *args, defer_seconds: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.defer_seconds = defer_seconds

    def _init_shared_socket(self):
        if self.bind_uds:  # granian already shares a unix socket
            super()._init_shared_socket()
            return
        holder = SocketSpec(self.bind_addr, self.bind_port, self.backlog).build()
        listener = socket.socket(fileno=holder.get_fd())
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, self.defer_seconds)
        listener.set_inheritable(True)
        self._ssp, self._shd, self._sfd, self._sso = None, holder, holder.get_fd(), listener
