"""A 3-node MariaDB Galera cluster and a Sentinel-watched Redis, started and stopped by the tests.

Everything runs on this host, on free loopback ports, in one temporary
directory that is removed at the end; every process is stopped by the PID
this module started (SIGTERM, then SIGKILL). Nothing else is touched.

- GaleraCluster: three `mariadbd` with wsrep on, joined over gcomm on private
  ports. Node 1 bootstraps the cluster (--wsrep-new-cluster); the others join
  it and receive the data by rsync SST. rsync SST refuses to run as root, so
  when the tests run as root the servers run as the `mysql` user and own
  their directories. start() returns when every node reports Synced and the
  cluster counts every node.
- RedisSentinel: a primary, one replica and three sentinels (quorum 2,
  down-after 1 s), so that killing the primary promotes the replica.
"""
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pymysql

from support import stop_process

HOST = "127.0.0.1"
PROVIDER = "/usr/lib/galera/libgalera_smm.so"
CLUSTER_NAME = "jwt_api_test"
MASTER_NAME = "mymaster"


def _ephemeral_start():
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count):
    """`count` distinct free TCP ports on the loopback address, below the ephemeral range.

    A server starts seconds after its port is chosen (node 3 waits for nodes
    1 and 2); a port from the ephemeral range could meanwhile become the
    local end of any outgoing connection on this busy machine. Below that
    range only an explicit bind can take it.
    """
    sockets = []
    candidates = list(range(20000, max(20001, _ephemeral_start())))
    random.shuffle(candidates)
    try:
        for port in candidates:
            if len(sockets) == count:
                break
            sock = socket.socket()
            try:
                sock.bind((HOST, port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
        if len(sockets) < count:
            raise RuntimeError(f"fewer than {count} free ports below the ephemeral range")
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _run_as():
    """(user name or None, uid, gid) the servers run as: `mysql` when we are root."""
    if os.geteuid() != 0:
        return None, os.geteuid(), os.getegid()
    entry = pwd.getpwnam("mysql")
    return "mysql", entry.pw_uid, entry.pw_gid


def _own(path, uid, gid):
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def query(port, sql, params=None, database=None, timeout=3):
    """Run one statement on the server at `port` (root, no password) and return its rows as dicts."""
    conn = pymysql.connect(host=HOST, port=port, user="root", password="", database=database,
                           connect_timeout=timeout, read_timeout=timeout * 3, write_timeout=timeout * 3,
                           autocommit=True, cursorclass=pymysql.cursors.DictCursor)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        conn.close()


def status(port, name):
    """One SHOW STATUS value of the server at `port`, or None when it does not answer."""
    try:
        rows = query(port, "SHOW GLOBAL STATUS LIKE %s", (name,), timeout=1)
    except pymysql.MySQLError:
        return None
    return rows[0]["Value"] if rows else None


class GaleraNode:
    """One mariadbd of the cluster: its data directory and its four ports."""

    def __init__(self, cluster, index, ports):
        self.cluster = cluster
        self.index = index
        self.name = f"node{index + 1}"
        self.port, self.gcomm_port, self.ist_port, self.sst_port = ports
        self.directory = cluster.directory / self.name
        self.datadir = self.directory / "data"
        self.process = None

    def config(self, database=""):
        """The app's DB_* settings for this node alone."""
        return {"DB_HOST": HOST, "DB_PORT": self.port, "DB_USER": "root", "DB_PASSWORD": "",
                "DB_NAME": database, "DB_SSL_MODE": "disabled", "DB_CONNECT_TIMEOUT": 1,
                "DB_READ_TIMEOUT": 10, "DB_WRITE_TIMEOUT": 10}

    def install(self):
        """mariadb-install-db on an empty data directory (node 1 only: the others get SST)."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        user, uid, gid = self.cluster.run_as
        args = ["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal", "--skip-test-db"]
        if user:
            _own(self.directory, uid, gid)
            args.append(f"--user={user}")
        subprocess.run(args, check=True, capture_output=True, timeout=120)

    def arguments(self, bootstrap=False):
        addresses = ",".join(f"{HOST}:{node.gcomm_port}" for node in self.cluster.nodes)
        args = ["mariadbd", "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
                f"--socket={self.directory / 'mariadb.sock'}", f"--bind-address={HOST}",
                f"--pid-file={self.directory / 'mariadb.pid'}", f"--log-error={self.directory / 'error.log'}",
                "--skip-name-resolve", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
                "--max-connections=300", "--binlog-format=ROW", "--innodb-autoinc-lock-mode=2",
                "--innodb-flush-log-at-trx-commit=2",
                "--wsrep-on=ON", f"--wsrep-provider={PROVIDER}",
                f"--wsrep-cluster-name={CLUSTER_NAME}", f"--wsrep-node-name={self.name}",
                f"--wsrep-cluster-address=gcomm://{addresses}",
                f"--wsrep-node-address={HOST}:{self.gcomm_port}",
                f"--wsrep-provider-options=base_port={self.gcomm_port};"
                f"ist.recv_addr={HOST}:{self.ist_port};gcache.size=64M",
                "--wsrep-sst-method=rsync", f"--wsrep-sst-receive-address={HOST}:{self.sst_port}"]
        if not self.cluster.auto_increment_control:
            args.append("--wsrep-auto-increment-control=OFF")  # ids 1, 2, 3... (one writer only)
        user = self.cluster.run_as[0]
        if user:
            args.append(f"--user={user}")
        if bootstrap:
            args.append("--wsrep-new-cluster")
        return args

    def start(self, bootstrap=False):
        """Start mariadbd (returns at once; see wait_synced)."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        user, uid, gid = self.cluster.run_as
        if user:
            _own(self.directory, uid, gid)
        self.process = subprocess.Popen(self.arguments(bootstrap), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def state(self):
        """wsrep_local_state_comment ('Synced', 'Joining', 'Donor/Desynced', ...) or None."""
        return status(self.port, "wsrep_local_state_comment")

    def wait_synced(self, size, timeout=90):
        """Wait until this node is Synced in a primary component of `size` nodes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.error_log()[-3000:]}")
            if (self.state() == "Synced" and status(self.port, "wsrep_cluster_status") == "Primary"
                    and status(self.port, "wsrep_cluster_size") == str(size)):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not Synced after {timeout} s: {self.error_log()[-3000:]}")

    def kill9(self):
        """SIGKILL: a crashed node."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        stop_process(self.process, timeout=30)

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def error_log(self):
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


class GaleraCluster:
    """Three Galera nodes in a temporary directory; start() bootstraps, stop() ends them all."""

    def __init__(self, directory, size=3, auto_increment_control=True):
        self.directory = Path(directory)
        self.run_as = _run_as()
        self.auto_increment_control = auto_increment_control
        ports = free_ports(4 * size)
        self.nodes = []
        for index in range(size):
            self.nodes.append(GaleraNode(self, index, ports[4 * index:4 * index + 4]))

    def start(self):
        """Bootstrap node 1, join the others one at a time, and wait until all are Synced."""
        first = self.nodes[0]
        first.install()
        first.start(bootstrap=True)
        first.wait_synced(1)
        for count, node in enumerate(self.nodes[1:], start=2):
            node.start()
            node.wait_synced(count)
        for node in self.nodes:
            node.wait_synced(len(self.nodes))

    def rejoin(self, node, timeout=90):
        """Start a node that was stopped or killed again; it rejoins by IST or SST. Waits for Synced."""
        node.start()
        node.wait_synced(len(self.nodes), timeout=timeout)

    def stop(self):
        for node in reversed(self.nodes):
            node.stop()

    def hosts(self, nodes=None):
        """DB_HOST for several nodes: 'host:port,host:port'."""
        return ",".join(f"{HOST}:{node.port}" for node in (nodes or self.nodes))


class RedisSentinel:
    """A Redis primary, one replica and three sentinels watching them as MASTER_NAME."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        ports = free_ports(5)
        self.redis_ports = ports[:2]
        self.sentinel_ports = ports[2:]
        self.redis = {}      # port -> process
        self.sentinels = []

    def _start_redis(self, port, replica_of=None):
        args = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
                "--dir", str(self.directory), "--daemonize", "no", "--protected-mode", "no",
                "--logfile", str(self.directory / f"redis-{port}.log")]
        if replica_of:
            args += ["--replicaof", HOST, str(replica_of)]
        self.redis[port] = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _start_sentinel(self, port):
        conf = self.directory / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind {HOST}\nprotected-mode no\ndaemonize no\n"
            f"dir {self.directory}\nlogfile {self.directory / f'sentinel-{port}.log'}\n"
            f"sentinel monitor {MASTER_NAME} {HOST} {self.redis_ports[0]} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
            f"sentinel failover-timeout {MASTER_NAME} 5000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n")
        self.sentinels.append(subprocess.Popen(["redis-sentinel", str(conf)], stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def start(self, timeout=30):
        """Start everything; return when every sentinel knows the primary, the replica and its peers."""
        import redis
        primary, replica = self.redis_ports
        self._start_redis(primary)
        self._start_redis(replica, replica_of=primary)
        for port in self.sentinel_ports:
            self._start_sentinel(port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ready = all(
                    info["num-slaves"] >= 1 and info["num-other-sentinels"] >= 2
                    for info in (redis.Redis(host=HOST, port=port, socket_timeout=1)
                                 .sentinel_master(MASTER_NAME) for port in self.sentinel_ports))
                if ready:
                    return
            except (redis.RedisError, KeyError):
                pass
            time.sleep(0.2)
        raise RuntimeError("the sentinels did not see the primary, the replica and each other")

    def url(self, scheme="redis+sentinel"):
        """The Sentinel address of MASTER_NAME: redis+sentinel://h:p,h:p,h:p/mymaster."""
        hosts = ",".join(f"{HOST}:{port}" for port in self.sentinel_ports)
        return f"{scheme}://{hosts}/{MASTER_NAME}"

    def primary_port(self):
        """The port the sentinels currently name as primary."""
        import redis
        for port in self.sentinel_ports:
            try:
                return int(redis.Redis(host=HOST, port=port, socket_timeout=1)
                           .sentinel_get_master_addr_by_name(MASTER_NAME)[1])
            except (redis.RedisError, TypeError):
                continue
        return None

    def kill_primary(self):
        """SIGKILL the current primary; returns its port."""
        port = self.primary_port()
        process = self.redis[port]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        return port

    def wait_failover(self, old_port, timeout=30):
        """Wait until the sentinels name a primary other than `old_port` and it answers as one; returns its port."""
        import redis
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            port = self.primary_port()
            if port and port != old_port:
                try:
                    if redis.Redis(host=HOST, port=port, socket_timeout=1).info("replication")["role"] == "master":
                        return port
                except redis.RedisError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"no failover from Redis port {old_port} in {timeout} s")

    def stop(self):
        for process in self.sentinels + list(self.redis.values()):
            stop_process(process, timeout=10)


class Cluster:
    """The whole set: a Galera cluster and a Sentinel-watched Redis in one temporary directory."""

    def __init__(self, **galera_options):
        # Not under pytest's tmp_path: the servers run as `mysql`, which must be able to enter it.
        self.directory = Path(tempfile.mkdtemp(prefix="jwt-api-cluster-"))
        os.chmod(self.directory, 0o755)
        self.galera = GaleraCluster(self.directory / "galera", **galera_options)
        self.redis = RedisSentinel(self.directory / "redis")

    def start(self):
        try:
            self.redis.start()
            self.galera.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        try:
            self.galera.stop()
            self.redis.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def missing_tools():
    """The external programs the cluster needs that are not installed."""
    names = ["mariadbd", "mariadb-install-db", "rsync", "redis-server", "redis-sentinel"]
    missing = [name for name in names if not shutil.which(name)]
    if not os.path.exists(PROVIDER):
        missing.append(PROVIDER)
    return missing


# --- the pytest fixture -------------------------------------------------------------

def require_cluster_tools():
    """Skip locally, fail under CI=true, when a program the cluster needs is missing."""
    import pytest
    missing = missing_tools()
    if missing:
        message = f"the cluster suite needs {', '.join(missing)}; `make test` installs them"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def cluster_fixture():
    """A module-scoped pytest fixture yielding a started Cluster, stopped (by PID) afterwards.

    Usage in a test module: `cluster = harness.cluster_fixture()`.
    (A fixture per module, not per session: tests/cluster has no conftest.py
    of its own, which would shadow tests/conftest.py as module `conftest`.)
    """
    import pytest

    @pytest.fixture(scope="module")
    def cluster():
        require_cluster_tools()
        running = Cluster().start()
        try:
            yield running
        finally:
            running.stop()
    return cluster
