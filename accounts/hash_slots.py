"""At most one password hash per core at a time, across every worker process of one server.

An argon2id check is ~25 ms of one core and 19 MiB of memory traffic. The
server runs more workers than cores (so that one waiting on MySQL leaves its
core to another); when they all hash at once, the extra hashes only share
the cores and the caches, and the whole machine checks fewer passwords per
second: 70.5–77.0 verifies/s from 4 processes against 74.5–79.3 from 2 on
this 2-core machine (bench/run.py's _verify_rate in forked processes, three
times each). With slots, a worker that finds every core hashing waits, and
the workers that are not hashing (writing a session, answering other
requests) keep their share.

A slot is an exclusive flock() on one of `count` files in a directory the
server's master made before forking: the kernel releases it when its holder
exits, however it exits, so a killed worker never keeps a slot. Without a
server (the development server, the tests' client) nothing is limited.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator

POLL_SECONDS = 0.001  # a waiter tries the slots again this often (a hash takes ~25 ms)


class HashSlots:
    """`count` slots shared by the processes forked after this was made (the files live in `directory`)."""

    def __init__(self, directory: str, count: int):
        self.paths = [os.path.join(directory, f"slot-{n}") for n in range(count)]
        for path in self.paths:
            with open(path, "a"):
                pass
        self._files: tuple[int, list[int]] | None = None  # (pid, descriptors): opened per process
        self._held = threading.local()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold one slot for the block (re-entrant in one thread: a nested hash reuses the slot)."""
        # The holder's pid too: a process forked inside the block inherits this thread's state, not its lock.
        if getattr(self._held, "pid", None) == os.getpid():
            yield
            return
        fd = self._take()
        self._held.pid = os.getpid()
        try:
            yield
        finally:
            self._held.pid = None
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _take(self) -> int:
        descriptors = self._descriptors()
        while True:
            for fd in descriptors:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    continue
            time.sleep(POLL_SECONDS)

    def _descriptors(self) -> list[int]:
        # A descriptor inherited over fork shares its lock with the parent's: each process opens its own.
        if self._files is None or self._files[0] != os.getpid():
            self._files = (os.getpid(), [os.open(path, os.O_RDWR) for path in self.paths])
        return self._files[1]


class _Unlimited:
    """No slots: every hash runs at once (no server, or threads in one process)."""

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        yield


UNLIMITED = _Unlimited()
