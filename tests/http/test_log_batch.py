"""rest/log_batch.py: access-log lines written in batches, in order, whole, and never lost at a flush or a fork."""
import io
import json
import logging
import os
import threading
import time

import pytest

from rest import log_batch, middleware
from support import bearer


class Recording(io.StringIO):
    """An underlying stream that remembers each write() it was given."""

    def __init__(self):
        super().__init__()
        self.writes = []

    def write(self, text):
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def batched():
    underlying = Recording()
    return log_batch.BatchedStream(underlying), underlying


def test_the_documented_bounds():
    # docs/operations.md: "at most 0.05 s (or 64 KiB)".
    assert (log_batch.FLUSH_SECONDS, log_batch.BATCH_BYTES) == (0.05, 64 * 1024)


def test_lines_wait_for_the_batch_then_go_out_in_one_write_in_order(batched):
    stream, underlying = batched
    for n in range(3):
        stream.write(f'{{"n":{n}}}\n')
    assert underlying.getvalue() == ""
    stream.flush()
    assert underlying.writes == ['{"n":0}\n{"n":1}\n{"n":2}\n']


def test_a_batch_is_written_within_flush_seconds_without_another_request(batched):
    stream, underlying = batched
    began = time.monotonic()
    stream.write("one\n")
    while underlying.getvalue() == "" and time.monotonic() - began < 2:
        time.sleep(0.005)
    assert underlying.getvalue() == "one\n"
    assert time.monotonic() - began < log_batch.FLUSH_SECONDS + 0.5  # the sleep, plus a busy machine
    stream.write("two\n")  # the next batch has its own deadline
    time.sleep(log_batch.FLUSH_SECONDS + 0.5)
    assert underlying.getvalue() == "one\ntwo\n"


def test_a_full_batch_is_written_at_once(batched, monkeypatch):
    stream, underlying = batched
    monkeypatch.setattr(log_batch, "BATCH_BYTES", 10)
    stream.write("12345\n")
    assert underlying.getvalue() == ""
    stream.write("67890\n")
    assert underlying.writes == ["12345\n67890\n"]


def test_lines_from_many_threads_are_each_written_once_and_whole(batched):
    stream, underlying = batched

    def write(tag):
        for n in range(500):
            stream.write(f"{tag}-{n}\n")

    threads = [threading.Thread(target=write, args=(tag,)) for tag in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stream.flush()
    lines = underlying.getvalue().splitlines()
    assert sorted(lines) == sorted(f"{tag}-{n}" for tag in "abcd" for n in range(500))
    for tag in "abcd":  # each thread's lines in the order it wrote them
        assert [line for line in lines if line[0] == tag] == [f"{tag}-{n}" for n in range(500)]


def test_logging_shutdown_writes_what_is_kept(batched):
    # What the watchdog calls before it ends a worker, and what runs at exit.
    stream, underlying = batched
    handler = logging.StreamHandler(stream)
    stream.write("kept\n")
    logging.shutdown([lambda: handler])
    assert underlying.getvalue() == "kept\n"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_a_forked_worker_writes_its_own_lines_and_never_its_parents_again(tmp_path):
    path = tmp_path / "log.txt"
    with open(path, "a", buffering=1) as underlying:
        stream = log_batch.BatchedStream(underlying)
        stream.write("parent-before\n")
        pid = os.fork()  # the parent's kept line is written before the fork
        if pid == 0:
            try:
                stream.write("child\n")
                time.sleep(log_batch.FLUSH_SECONDS + 0.3)  # the child's own flusher thread
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        stream.write("parent-after\n")
        stream.flush()
    assert sorted(path.read_text().splitlines()) == ["child", "parent-after", "parent-before"]


def test_the_access_log_handler_writes_through_a_batched_stream():
    middleware._setup_access_log()
    assert isinstance(middleware._default_handler.stream, log_batch.BatchedStream)


def test_deferred_lines_are_made_at_the_flush_in_their_place(batched):
    stream, underlying = batched
    made = []

    def make(n):
        made.append(n)
        return f"deferred-{n}\n"

    stream.write("text-1\n")
    stream.defer(make, (2,))
    stream.write("text-3\n")
    assert made == []  # nothing made before the batch is written
    stream.flush()
    assert made == [2]
    assert underlying.writes == ["text-1\ndeferred-2\ntext-3\n"]


def test_a_line_that_cannot_be_made_says_so_and_the_others_are_written(batched):
    stream, underlying = batched
    stream.defer(lambda: 1 / 0, ())
    stream.write("after\n")
    stream.flush()
    first, second = underlying.getvalue().splitlines()
    assert json.loads(first) == {"level": "error", "logger": "rest.log_batch",
                                 "msg": "could not make an access-log line: "
                                        "ZeroDivisionError('division by zero')"}
    assert second == "after"


def test_the_deferred_access_line_is_the_line_written_directly(client, make_user, login, monkeypatch):
    make_user("alice", "correct-horse-battery")
    token = login("alice", "correct-horse-battery")
    handler = middleware._default_handler
    monkeypatch.setattr(middleware.access_log, "handlers", [handler])
    lines = {}
    for kind, stream in (("direct", io.StringIO()), ("deferred", log_batch.BatchedStream(io.StringIO()))):
        previous = handler.setStream(stream)
        try:
            client.get("/caf%C3%A9", headers={**bearer(token), "X-Request-ID": "same-1"})
        finally:
            handler.setStream(previous)
        if kind == "deferred":
            stream.flush()
            stream = stream.stream
        [lines[kind]] = [json.loads(text) for text in stream.getvalue().splitlines()]
    for line in lines.values():
        line.pop("ts"), line.pop("duration_ms")
    assert lines["deferred"] == lines["direct"] == {
        "level": "info", "logger": "jwt_api.access", "msg": "request", "method": "GET",
        "path": "/caf\u00e9", "status": 404, "user_id": None, "request_id": "same-1"}
