"""The service on the test cluster: a database on the Galera nodes and gunicorn instances in front.

Instances are started with tests/support.py's LiveServer (a free port, a
clean environment, stopped by PID), each pointed at one or more
nodes through DB_HOST, with REDIS_URL set to the Sentinel address so that
every worker caches identities and pages, as deployed.
"""
import collections
import os
import secrets
import threading

import pytest

import db
from support import ROOT, LiveServer
from support import timed_call as call  # (status, headers, JSON body, seconds)

PASSWORD = "cluster-test-password-8Wz"


def create_database(cluster):
    """A database with the schema, created through node 1 (Galera replicates the DDL); its name."""
    name = f"cluster_{secrets.token_hex(4)}"
    first = cluster.galera.nodes[0]
    db.server_execute(first.config(), f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    db.run_script(first.config(name), (ROOT / "sql" / "schema.sql").read_text())
    return name


def instance(directory, cluster, nodes, database, workers=2, **env):
    """A started gunicorn whose DB_HOST lists `nodes` (first preferred) and whose cache uses Sentinel."""
    # CLUSTER_DB_CAUSAL_READS=off shows what the suite catches without causal reads.
    settings = dict(nodes[0].config(database), DB_HOST=cluster.galera.hosts(nodes),
                    REDIS_URL=cluster.redis.url(), CACHE_SECONDS=10,
                    DB_CAUSAL_READS=os.environ.get("CLUSTER_DB_CAUSAL_READS", "auto"))
    settings.update(env)
    server = LiveServer(directory, settings, workers=workers)
    server.wait_ready(timeout=60)
    server.nodes, server.database = nodes, database
    return server


def register(url, username, password=PASSWORD):
    status, _, body, _ = call("POST", url + "/register", body={"username": username, "password": password})
    assert status == 201, (status, body)
    return body["id"]


def login(url, username, password=PASSWORD):
    status, _, body, _ = call("POST", url + "/auth", body={"username": username, "password": password})
    assert status == 200, (status, body)
    return body


def rest_auth(url, access_token):
    """The status of GET /rest-auth with the token (200 accepted, 401 refused)."""
    return call("GET", url + "/rest-auth", token=access_token)[0]


class Tally:
    """Statuses seen, per label, from many threads."""

    def __init__(self):
        self.counts = collections.Counter()
        self.lock = threading.Lock()

    def add(self, label, status):
        with self.lock:
            self.counts[(label, status)] += 1

    def of(self, label):
        return {status: n for (name, status), n in self.counts.items() if name == label}

    def server_errors(self):
        return {key: n for key, n in self.counts.items() if key[1] >= 500}


def instances_fixture(folder):
    """A module fixture: two gunicorn instances on the cluster, A preferring node 1, B node 2."""
    @pytest.fixture(scope="module")
    def instances(cluster, tmp_path_factory):
        database = create_database(cluster)
        directory = tmp_path_factory.mktemp(folder)
        node1, node2, node3 = cluster.galera.nodes
        started = []
        try:
            started.append(instance(directory, cluster, [node1, node2, node3], database))
            started.append(instance(directory, cluster, [node2, node3, node1], database))
            yield started
        finally:
            for server in started:
                server.stop()
    return instances
