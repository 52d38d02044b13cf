"""docker-compose.cluster.yml, checked as YAML (no Docker engine on these machines), like docker-compose.yml.

Three MariaDB Galera nodes that form one cluster, the API using every node
with causal reads, and the same secret and port rules as the single-server file.
"""
import re

import pytest
import yaml
from support import ROOT

REQUIRED_INTERPOLATION = re.compile(r"^\$\{[A-Z_]+:\?[^}]+\}$")
NODES = ("galera1", "galera2", "galera3")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())


def _env_example():
    return {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
            if line and not line.startswith("#") and "=" in line}


def _flags(service):
    return [str(arg) for arg in service["command"]]


def test_three_galera_nodes_redis_and_the_api(compose):
    assert set(compose["services"]) == {*NODES, "redis", "api"}
    for name in NODES:
        assert compose["services"][name]["image"] == "mariadb:10.11"


def test_the_nodes_form_one_cluster_with_galera_settings(compose):
    for name in NODES:
        flags = _flags(compose["services"][name])
        assert "--wsrep-on=ON" in flags
        assert "--wsrep-provider=/usr/lib/galera/libgalera_smm.so" in flags
        assert "--wsrep-cluster-address=gcomm://galera1,galera2,galera3" in flags
        assert "--binlog-format=ROW" in flags and "--innodb-autoinc-lock-mode=2" in flags
        assert "--wsrep-cluster-name=jwt-api" in flags
    bootstrapping = [name for name in NODES if "--wsrep-new-cluster" in _flags(compose["services"][name])]
    assert bootstrapping == ["galera1"], "exactly one node bootstraps"


def test_nodes_join_one_after_another_and_are_healthy_only_when_synced(compose):
    assert compose["services"]["galera2"]["depends_on"] == {"galera1": {"condition": "service_healthy"}}
    assert compose["services"]["galera3"]["depends_on"] == {"galera2": {"condition": "service_healthy"}}
    for name in NODES:
        assert "--galera_online" in compose["services"][name]["healthcheck"]["test"]


def test_only_the_bootstrap_node_loads_the_schema(compose):
    volumes = {name: compose["services"][name]["volumes"] for name in NODES}
    assert "./sql:/docker-entrypoint-initdb.d:ro" in volumes["galera1"]
    assert not any("initdb" in v for name in ("galera2", "galera3") for v in volumes[name])


def test_the_api_uses_every_node_with_causal_reads(compose):
    api = compose["services"]["api"]
    env = api["environment"]
    assert env["DB_HOST"] == "galera1:3306,galera2:3306,galera3:3306"
    assert env["DB_CAUSAL_READS"] == "on"
    assert set(env) <= _env_example(), f"not in .env.example: {set(env) - _env_example()}"
    assert {name: c["condition"] for name, c in api["depends_on"].items()} == {
        **{name: "service_healthy" for name in NODES}, "redis": "service_healthy"}


def test_secrets_are_required_interpolations_and_ports_loopback_only(compose):
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET", key):
                assert REQUIRED_INTERPOLATION.match(str(value)), f"{name}.{key} = {value!r}"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port}"
    text = (ROOT / "docker-compose.cluster.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)[:}?-]", text))
    assert used <= _env_example(), f"not in .env.example: {used - _env_example()}"
