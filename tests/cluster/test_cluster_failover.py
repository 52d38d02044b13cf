"""Failures on the cluster: a Galera node SIGKILLed under load, a node out of sync, the Redis primary killed.

Instance A lists node 1 first, instance B node 2 first (DB_HOST names all
three nodes), both with the cache on through Sentinel. While client
threads log in, refresh, read and post on both, node 2 is killed with
SIGKILL: no 500 anywhere, B answers again from node 3 within the cluster's
suspect timeout, every post acknowledged with a 201 is on every node
exactly once (no blind re-run), and once node 2 has rejoined B's new
connections go back to it.
"""
import itertools
import threading
import time

import pytest

import harness
from service import PASSWORD, Tally, call, instance, instances_fixture, login, register, rest_auth
from support import stop_process

pytestmark = pytest.mark.cluster

SUSPECT_TIMEOUT = 5.0  # Galera's evs.suspect_timeout default: the cluster stalls this long for a dead node
cluster = harness.cluster_fixture()


instances = instances_fixture("cluster-failover")


class MixedLoad:
    """Client threads on each instance: posts, reads, pages, logins and refreshes, every answer timed."""

    def __init__(self, servers, users, threads_per_server=3):
        self.records = []        # (instance index, kind, status, started at, seconds)
        self.posted = []         # titles acknowledged with 201
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.serial = itertools.count()
        self.threads = [threading.Thread(target=self._loop, args=(index, server, users[index]))
                        for index, server in enumerate(servers) for _ in range(threads_per_server)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def _record(self, index, kind, status, began, seconds):
        with self.lock:
            self.records.append((index, kind, status, began, seconds))

    def _loop(self, index, server, user):
        name, uid = user
        tokens = login(server.url, name)
        for kind in itertools.cycle(["post", "read", "page", "post", "refresh", "read", "login"]):
            if self.stop_event.is_set():
                return
            began = time.monotonic()
            if kind == "post":
                title = f"post-{index}-{next(self.serial)}"
                status, _, body, seconds = call("POST", f"{server.url}/users/{uid}/posts",
                                                token=tokens["access_token"], body={"title": title, "body": "x"})
                if status == 201:
                    with self.lock:
                        self.posted.append(title)
            elif kind == "read":
                status, _, _, seconds = call("GET", server.url + "/rest-auth", token=tokens["access_token"])
            elif kind == "page":
                status, _, _, seconds = call("GET", f"{server.url}/users/{uid}/posts?limit=5",
                                             token=tokens["access_token"])
            elif kind == "refresh":
                status, _, body, seconds = call("POST", server.url + "/refresh",
                                                body={"refresh_token": tokens["refresh_token"]})
                if status == 200:
                    tokens = body
            else:
                status, _, body, seconds = call("POST", server.url + "/auth",
                                                body={"username": name, "password": PASSWORD})
                if status == 200:
                    tokens = body
            self._record(index, kind, status, began, seconds)
            if status in (401, 503) and kind == "refresh":
                # A refresh whose answer was lost (503) leaves the session to a new login.
                relog = call("POST", server.url + "/auth", body={"username": name, "password": PASSWORD})
                if relog[0] == 200:
                    tokens = relog[2]
            if status == 503:
                time.sleep(0.05)

    def statuses(self, index=None):
        found = {}
        for record in self.records:
            if index is None or record[0] == index:
                found[record[2]] = found.get(record[2], 0) + 1
        return found


def titles_on(node, database):
    # A causal read: what the cluster committed before it, applied on this node.
    rows = harness.query(node.port, "SET STATEMENT wsrep_sync_wait = 1 FOR "
                         "SELECT title, COUNT(*) AS n FROM post GROUP BY title", database=database)
    return {row["title"]: row["n"] for row in rows}


def connections_on(node, database):
    rows = harness.query(node.port, "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = %s",
                         (database,))
    return rows[0]["n"]


def test_a_node_killed_under_load_loses_nothing_and_rejoins(cluster, instances):
    a, b = instances
    node1, node2, node3 = cluster.galera.nodes
    users = [(name, register(a.url, name)) for name in ("load-on-a", "load-on-b")]
    load = MixedLoad(instances, users)
    load.start()
    time.sleep(3)
    assert connections_on(node2, a.database) > 0, "B was not using node 2 before the kill"
    killed_at = time.monotonic()
    node2.kill9()
    time.sleep(12)
    rejoin_began = time.monotonic()
    cluster.galera.rejoin(node2)
    rejoin_seconds = time.monotonic() - rejoin_began
    time.sleep(harness_host_retry() + 3)
    load.stop()

    statuses = load.statuses()
    failures_b = [r for r in load.records if r[0] == 1 and r[2] >= 500 and r[3] >= killed_at]
    failover = max((r[3] + r[4] - killed_at for r in failures_b), default=0.0)
    slowest = max(r[4] for r in load.records)
    # How long until B acknowledged a write again: the first 201 of a post B began after the kill.
    back = min((r[3] + r[4] - killed_at for r in load.records
                if r[0] == 1 and r[1] == "post" and r[2] == 201 and r[3] >= killed_at), default=None)
    print(f"\nnode kill: answers {statuses}, A {load.statuses(0)}, B {load.statuses(1)}; "
          f"B's last failure {failover:.1f} s after the kill, first write again at {back:.1f} s; "
          f"slowest answer {slowest:.1f} s; "
          f"node 2 rejoined in {rejoin_seconds:.1f} s; posts acknowledged {len(load.posted)}")
    assert not [s for s in statuses if s >= 500 and s != 503], "a 5xx other than 503"
    assert failover <= SUSPECT_TIMEOUT + 3, f"B kept failing for {failover:.1f} s"
    assert back is not None and back <= SUSPECT_TIMEOUT + 6, f"B wrote nothing for {back} s"
    assert not [r for r in load.records if r[0] == 0 and r[2] >= 500], "A failed while node 2 died"

    # Every acknowledged post is on every node, exactly once.
    for node in cluster.galera.nodes:
        titles = titles_on(node, a.database)
        missing = [t for t in load.posted if t not in titles]
        duplicated = {t: n for t, n in titles.items() if n > 1}
        print(f"{node.name}: {len(titles)} posts, {len(missing)} acknowledged missing, {len(duplicated)} duplicated")
        assert not missing and not duplicated

    # Traffic returns: B's new connections go to node 2 again once it is Synced.
    for _ in range(30):
        rest_auth(b.url, login(b.url, users[1][0])["access_token"])
    assert connections_on(node2, a.database) > 0, "B did not come back to node 2"


def harness_host_retry():
    import db
    return db.HOST_RETRY_SECONDS


def test_readyz_reports_a_desynced_node_and_b_moves_on(cluster, instances, tmp_path):
    a, b = instances
    node3 = cluster.galera.nodes[2]
    alone = instance(tmp_path, cluster, [node3], a.database, workers=1)
    try:
        assert call("GET", alone.url + "/readyz")[0] == 200
        harness.query(node3.port, "SET GLOBAL wsrep_desync = ON")
        try:
            status, headers, body, _ = call("GET", alone.url + "/readyz")
            assert status == 503 and "Retry-After" in headers
            assert "not Synced (wsrep_local_state_comment=Donor/Desynced)" in body["description"], body
        finally:
            harness.query(node3.port, "SET GLOBAL wsrep_desync = OFF")
        deadline = time.monotonic() + 10
        while call("GET", alone.url + "/readyz")[0] != 200:
            assert time.monotonic() < deadline, "readyz did not come back after the node resynced"
            time.sleep(0.2)
    finally:
        alone.stop()


def test_the_redis_primary_killed_costs_no_5xx_and_no_revocation(cluster, instances):
    a, b = instances
    register(a.url, "redis-failover")
    tally = Tally()
    stop = threading.Event()

    def pairs():
        while not stop.is_set():
            tokens = login(a.url, "redis-failover")
            tally.add("use on B before", rest_auth(b.url, tokens["access_token"]))
            tally.add("logout on A", call("POST", a.url + "/logout", token=tokens["access_token"])[0])
            tally.add("use on B after", rest_auth(b.url, tokens["access_token"]))

    threads = [threading.Thread(target=pairs) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    old = cluster.redis.kill_primary()
    killed_at = time.monotonic()
    new = cluster.redis.wait_failover(old)
    failover_seconds = time.monotonic() - killed_at
    time.sleep(6)  # every worker resubscribes within RETRY_SECONDS
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    print(f"\nredis failover {old} -> {new} in {failover_seconds:.1f} s; answers {dict(tally.counts)}")
    assert not tally.server_errors()
    assert set(tally.of("use on B after")) == {401}, "a logged-out token was accepted during a Redis failover"
    assert set(tally.of("logout on A")) == {204}
    # The cache is on again: B's workers hold subscriptions on the new primary.
    import redis
    channel = f"jwt-api:users-changed:{a.database}"
    subscribers = redis.Redis(host=harness.HOST, port=new).pubsub_numsub(channel)[0][1]
    assert subscribers >= 2, f"only {subscribers} workers subscribed on the new primary"


def test_haproxy_with_the_documented_check_leaves_a_desynced_node(cluster, tmp_path):
    """docs/haproxy/galera.cfg and galera-check, on this cluster: traffic leaves a desynced node and returns."""
    import subprocess

    from service import ROOT
    from support import require_tool
    require_tool("haproxy", "the HAProxy front of the cluster suite")
    require_tool("mysql", "the HAProxy check script (docs/haproxy/galera-check)")
    node1, node2, node3 = cluster.galera.nodes
    port = harness.free_ports(1)[0]
    config = (ROOT / "docs" / "haproxy" / "galera.cfg").read_text()
    config = config.replace("bind 127.0.0.1:3306", f"bind {harness.HOST}:{port}")
    (tmp_path / "galera-check.cnf").write_text("[client]\nuser=root\npassword=\n")
    check = (ROOT / "docs" / "haproxy" / "galera-check").read_text()
    (tmp_path / "galera-check").write_text(check.replace("/etc/haproxy/galera-check.cnf",
                                                         str(tmp_path / "galera-check.cnf")))
    (tmp_path / "galera-check").chmod(0o755)
    config = config.replace("/etc/haproxy/galera-check", str(tmp_path / "galera-check"))
    for node, address in zip((node1, node2, node3), ("10.0.0.1", "10.0.0.2", "10.0.0.3")):
        config = config.replace(f"{address}:3306", f"{harness.HOST}:{node.port}")
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    env = {"PATH": "/usr/sbin:/usr/bin:/bin"}
    process = subprocess.Popen(["haproxy", "-db", "-f", str(path)], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=open(tmp_path / "haproxy.log", "wb"))

    def served_by(timeout=15, want=None):
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = harness.query(port, "SELECT @@port AS port", timeout=2)[0]["port"]
                if want is None or got == want:
                    return got
            except Exception:  # noqa: BLE001 - HAProxy not listening yet, or no healthy server
                got = None
            if time.monotonic() > deadline:
                return got
            time.sleep(0.2)

    try:
        assert served_by(want=node1.port) == node1.port
        harness.query(node1.port, "SET GLOBAL wsrep_desync = ON")
        try:
            began = time.monotonic()
            assert served_by(want=node2.port) == node2.port, (tmp_path / "haproxy.log").read_text()
            print(f"\nHAProxy left the desynced node in {time.monotonic() - began:.1f} s")
        finally:
            harness.query(node1.port, "SET GLOBAL wsrep_desync = OFF")
        assert served_by(want=node1.port) == node1.port
    finally:
        stop_process(process, timeout=20)


def test_rate_limits_count_in_redis_found_through_sentinel(cluster, instances, tmp_path):
    """RATELIMIT_STORAGE_URI=redis+sentinel://...: the counts live on the primary the sentinels name."""
    import redis
    a = instances[0]
    prefix = f"cluster-limits-{time.monotonic_ns()}"
    limited = instance(tmp_path, cluster, cluster.galera.nodes, a.database, workers=2,
                       RATELIMIT_ENABLED="true", RATELIMIT_STORAGE_URI=cluster.redis.url(),
                       RATELIMIT_KEY_PREFIX=prefix, RATELIMIT_REGISTER="3/minute")
    try:
        statuses = [call("POST", limited.url + "/register",
                         body={"username": f"limited-{prefix[-6:]}-{n}", "password": PASSWORD})[0]
                    for n in range(5)]
    finally:
        limited.stop()
    assert statuses == [201, 201, 201, 429, 429]
    primary = redis.Redis(host=harness.HOST, port=cluster.redis.primary_port())
    assert list(primary.scan_iter(match=f"*{prefix}*")), "no rate-limit count on the Sentinel's primary"
