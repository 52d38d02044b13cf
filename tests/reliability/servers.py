"""Servers the reliability tests start themselves: a private MariaDB (gunicorn: support.LiveServer).

Each test stops exactly what it started, by PID (terminate, then kill), and
talks to loopback addresses only.
"""
import os
import signal
import subprocess
import time
from pathlib import Path

import db
from support import free_port, stop_process

HOST = "127.0.0.1"


class PrivateMariaDB:
    """A mariadbd of our own: its own data directory, port and socket, root without password."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.datadir = self.directory / "data"
        self.port = free_port()
        self.process = None

    def install(self):
        """Create the system tables (mariadb-install-db); about 2 s."""
        args = ["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal", "--skip-test-db"]
        if os.geteuid() == 0:
            args.append("--user=root")
        subprocess.run(args, check=True, capture_output=True, timeout=120)

    def start(self, timeout=30):
        """Start mariadbd on the data directory and port; wait until it takes connections."""
        args = ["mariadbd", "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
                f"--socket={self.directory / 'mariadb.sock'}", f"--bind-address={HOST}",
                f"--pid-file={self.directory / 'mariadb.pid'}", "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
                "--max-connections=200", f"--log-error={self.directory / 'mariadb.err'}"]
        if os.geteuid() == 0:
            args.append("--user=root")
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited: {self.error_log()[-2000:]}")
            try:
                db.server_execute(self.config(), "SELECT 1")
                return
            except db.DatabaseUnavailable:
                time.sleep(0.1)
        raise RuntimeError(f"mariadbd did not accept connections in {timeout} s")

    def kill9(self):
        """SIGKILL: the crash the service must survive."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        stop_process(self.process, timeout=20)

    def error_log(self):
        path = self.directory / "mariadb.err"
        return path.read_text(errors="replace") if path.exists() else ""

    def config(self, database=""):
        """The app's DB_* settings for this server."""
        return {"DB_HOST": HOST, "DB_PORT": self.port, "DB_USER": "root", "DB_PASSWORD": "",
                "DB_NAME": database, "DB_SSL_MODE": "disabled", "DB_CONNECT_TIMEOUT": 1,
                "DB_READ_TIMEOUT": 3, "DB_WRITE_TIMEOUT": 3}
