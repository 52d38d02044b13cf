"""The access log's stream: lines kept in memory and written in batches, not one write() per request.

Under granian with 4 workers appending to one file, writing each access line
cost ~15 us of worker CPU per request (the system call and the file's lock,
which the workers share), more than making the line (bench/hot_path.py,
ACCESS_LOG on vs off). A pipe to a log collector costs a reader wake-up per
write as well. So the line each request writes goes to a list, and one
write() takes the whole batch: FLUSH_SECONDS after the first line of a
batch (a thread per process), at once when BATCH_BYTES have piled up, and
whenever the stream is flushed (logging.shutdown() at exit and before the
watchdog's restart, StreamHandler.emit for a line that went through
`logging`) or the process forks. Lines keep their order and are written
whole; a worker killed by SIGKILL loses at most its last FLUSH_SECONDS.
The access log hands over what a line says rather than the line (defer()):
it is formatted when its batch is written.
"""
import json
import os
import threading
import time
import weakref

FLUSH_SECONDS = 0.05
BATCH_BYTES = 64 * 1024
LINE_BYTES = 240  # what a deferred line counts towards BATCH_BYTES (an access line is ~220)


class BatchedStream:
    """A text stream for a logging.StreamHandler over `stream` (stderr)."""

    def __init__(self, stream):
        self.stream = stream
        self._fresh()
        # Weakly: a stream that is gone (a test's) is no reason to stay, or to run at a fork.
        this = weakref.ref(self)
        os.register_at_fork(before=lambda: _at_fork(this, "flush"),
                            after_in_child=lambda: _at_fork(this, "_fresh"))

    def _fresh(self):
        # At creation, and in a forked child: the parent's flusher thread and
        # its locks' state did not come along (its lines were flushed before).
        self._lines = []
        self._size = 0
        self._lock = threading.Lock()         # guards _lines and _size
        self._write_lock = threading.Lock()   # one batch at a time, in order
        self._due = threading.Event()         # a batch has begun
        self._flusher = None                  # (pid, thread) of this process's flusher

    def write(self, text: str) -> int:
        self._keep(text, len(text))
        return len(text)

    def defer(self, make_line, args: tuple) -> None:
        """Keep the line make_line(*args) will return, made when its batch is written.

        Made there, one line after another, it costs less than in the middle
        of a request, where its code and data have left the CPU's caches: an
        access line took 7 us of a GET /rest-auth instead of 11 in process
        (bench/hot_path.py). It keeps its place among the lines written.
        """
        self._keep((make_line, args), LINE_BYTES)

    def _keep(self, item, size):
        with self._lock:
            self._lines.append(item)
            self._size += size
            first, full = len(self._lines) == 1, self._size >= BATCH_BYTES
            start = first and (self._flusher is None or self._flusher[0] != os.getpid())
            if start:
                self._flusher = (os.getpid(), threading.Thread(target=self._run, name="access-log",
                                                               daemon=True))
        if start:
            self._flusher[1].start()
        if full:
            self.flush()
        elif first:
            self._due.set()

    def flush(self) -> None:
        """Write every kept line now, in one write, then flush the underlying stream."""
        with self._write_lock:
            with self._lock:
                lines, self._lines, self._size = self._lines, [], 0
            if lines:
                self.stream.write("".join(item if type(item) is str else _made(*item) for item in lines))
            self.stream.flush()

    def _run(self):
        while True:
            self._due.wait()
            time.sleep(FLUSH_SECONDS)
            self._due.clear()  # before the flush: a line written after it starts the next batch
            try:
                self.flush()
            except (OSError, ValueError):  # stderr closed or broken: those lines are lost, not the thread
                pass

    def __getattr__(self, name):
        # What else a handler or a test may ask of a stream (fileno, encoding, isatty...).
        return getattr(self.stream, name)


def _at_fork(this, method):
    stream = this()
    if stream is not None:
        try:
            getattr(stream, method)()
        except (OSError, ValueError):  # an underlying stream closed: nothing to write to
            pass


def _made(make_line, args):
    """make_line(*args), or a line saying why not: a bad line never costs the batch (or the thread)."""
    try:
        return make_line(*args)
    except Exception as exc:  # noqa: BLE001 - written to the log itself, never lost
        return json.dumps({"level": "error", "logger": __name__,
                           "msg": f"could not make an access-log line: {exc!r}"}) + "\n"
