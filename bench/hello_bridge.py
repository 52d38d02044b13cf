"""bench/hello.py under our own RSGI bridge and granian, as `python -m serving` runs the service.

    SERVER_BIND=127.0.0.1:57201 SERVER_WORKERS=2 .venv/bin/python -m bench.hello_bridge

The ceiling of the serving stack: bare Flask, nothing of ours but the bridge,
with the same granian settings as serving/__main__.py (RSGI, HTTP/1 only,
one loop thread per worker). bench/hot_path.py compares the service with it.
"""
import os

from bench.hello import app
from serving.bridge import Limits, WsgiBridge


def build() -> WsgiBridge:
    """granian's factory target: the bare app behind the bridge (64 KiB bodies, 10 s to send one)."""
    return WsgiBridge(app, Limits(65536, 10))


def main() -> None:
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.server import Server

    host, _, port = os.environ.get("SERVER_BIND", "127.0.0.1:57201").rpartition(":")
    Server("bench.hello_bridge:build", factory=True, interface=Interfaces.RSGI, loop=Loops.auto,
           http=HTTPModes.http1, websockets=False, workers=int(os.environ.get("SERVER_WORKERS", "2")),
           backlog=2048, log_access=False, address=host, port=int(port)).serve()


if __name__ == "__main__":
    main()
