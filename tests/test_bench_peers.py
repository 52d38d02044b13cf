"""bench/peers: each peer `make bench` compares us with starts, logs in, and guards its resource.

A broken peer (a requirement that no longer installs, a changed library API)
shows here rather than as a failed `make bench`. Each peer is started as the
bench starts it (`peers.start`: its own venv under bench/.venvs, made once
and reused; 4 workers; a database of its own, dropped afterwards). About 30 s
when the venvs exist; a first run installs them (docs/performance.md, "The peers").
"""
import base64
import json
import os
import time

import pytest

from bench import peers
from bench.peers import venvs
from support import call, server_config

pytestmark = [pytest.mark.live, pytest.mark.slow]


@pytest.fixture
def started(tmp_path):
    """start(name) -> a running peer; every peer stopped and its database dropped afterwards."""
    running, databases = [], []
    settings = server_config()

    def start(name):
        database = None
        if peers.SPECS[name].uses_database:
            database = peers.create_database(settings, name)
            databases.append(database)
        peer = peers.start(name, peers.free_port(), database, settings, log_dir=tmp_path, log=lambda _: None)
        running.append(peer)
        return peer

    yield start
    for peer in running:
        peer.stop()
    for database in databases:
        peers.drop_database(settings, database)


@pytest.mark.parametrize("name", [n for n in peers.NAMES if peers.SPECS[n].login])
def test_the_peer_answers_its_user_with_a_token_and_401_without(started, name):
    peer = started(name)
    assert peer.path == "/rest-auth"

    status, _, body = call("GET", peer.url + peer.path, token=peer.token)
    assert status == 200, peer.log_tail()
    assert body["message"] == peers.MESSAGE
    assert peer.identity in body["user"].values()
    assert peers.PASSWORD not in str(body)

    status, _, body = call("GET", peer.url + peer.path)
    assert status == 401, body
    assert peer.identity not in str(body)

    # The signature is checked: the same claims with another signature are refused
    # (Flask-JWT-Extended answers a bad token 422 by default, the others 401).
    header, payload, signature = peer.token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    status, _, body = call("GET", peer.url + peer.path, token=forged)
    assert status == (422 if name == "flask-jwt-extended" else 401), body
    assert peer.identity not in str(body)
    assert_four_workers(peer)
    assert int(peer.url.rsplit(":", 1)[1]) in peers.PORTS
    # The bench's one change to each peer's token: it outlives any run.
    lifetime = token_claims(peer.token)["exp"] - time.time()
    assert peers.ACCESS_TTL - 120 < lifetime <= peers.ACCESS_TTL + 5


def test_a_peer_sees_none_of_the_service_environment(started, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "the-service-secret-" + "x" * 40)
    monkeypatch.setenv("DB_NAME", "the_service_database")
    peer = started("flask-jwt-extended")
    environ = dict(item.split(b"=", 1) for item in
                   open(f"/proc/{peer.process.pid}/environ", "rb").read().split(b"\0") if item)
    assert b"SECRET_KEY" not in environ and b"DB_NAME" not in environ
    assert environ[b"PEER_DB_NAME"].startswith(b"bench_peer_flask_jwt_extended_")
    assert all(key.startswith(b"PEER_") or key in (b"PATH", b"HOME", b"LANG", b"PYTHONUNBUFFERED",
                                                    b"PYTHONDONTWRITEBYTECODE") for key in environ), environ


def token_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_bare_fastapi_answers_like_bench_hello(started):
    peer = started("fastapi")
    status, headers, body = call("GET", peer.url + peer.path)
    assert (status, body) == (200, {"message": "hello"})
    assert headers["server"] == "uvicorn"
    assert_four_workers(peer)
    # uvloop and httptools named, so that uvicorn fails rather than fall back to asyncio and h11.
    argv = peers.SPECS["fastapi"].serve(peers.PEERS_DIR, 57100)
    assert argv[argv.index("--loop") + 1] == "uvloop" and argv[argv.index("--http") + 1] == "httptools"


def assert_four_workers(peer):
    """The bench compares servers of 4 workers each (a uvicorn worker may still be starting)."""
    deadline = time.monotonic() + 15
    while len(peer.workers()) < peers.WORKERS and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(peer.workers()) == peers.WORKERS, peer.log_tail()


def test_a_venv_is_made_once_and_again_only_when_its_requirements_change(tmp_path):
    requirements = tmp_path / "requirements-empty.txt"
    requirements.write_text("# no package: only the venv is made\n")
    made = venvs.ensure("empty", requirements_file=requirements, venvs_dir=tmp_path / "venvs", log=lambda _: None)
    assert (made / "python").exists()
    marker = made.parent / "marker"
    marker.write_text("kept unless the venv is made again")

    venvs.ensure("empty", requirements_file=requirements, venvs_dir=tmp_path / "venvs", log=lambda _: None)
    assert marker.exists()

    requirements.write_text("# changed\n")
    venvs.ensure("empty", requirements_file=requirements, venvs_dir=tmp_path / "venvs", log=lambda _: None)
    assert not marker.exists()
    assert (made / "python").exists()


def test_peer_dependencies_stay_out_of_the_service_requirements():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ours = "".join(open(os.path.join(root, name)).read().lower()
                   for name in ("requirements.txt", "requirements-dev.txt"))
    for package in ("fastapi", "uvicorn", "flask-jwt-extended", "dbutils", "django", "aiomysql", "mysqlclient"):
        assert f"\n{package}=" not in ours and not ours.startswith(f"{package}=")
