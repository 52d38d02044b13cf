"""bench/run.py's peers: which run, how their figures are computed and reported, and that they leave nothing behind.

The figures are made up here: what is tested is the arithmetic (per round,
then the median) and the report, not the speed of anything.
"""
import importlib.util
import sys

import pytest

import db
from support import ROOT, server_config


@pytest.fixture(scope="module")
def bench_run():
    """bench/run.py as a module, without leaving bench/ on sys.path (its profile.py would shadow the stdlib's)."""
    saved = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location("bench_run_under_test", ROOT / "bench" / "run.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


def _result(req_s, p99_ms=10.0):
    return {"req_s": req_s, "p99_us": p99_ms * 1000, "non2xx": 0, "connect_errors": 0, "read_errors": 0,
            "write_errors": 0, "timeouts": 0, "requests": int(req_s * 10), "first_bad_status": 0,
            "first_bad_body": ""}


def _summary(bench_run):
    results = {
        "hello": [_result(r) for r in (3000, 3200, 2800, 3000)],
        "ceiling": [],
        "rest_auth": [_result(r) for r in (2400, 2000, 2200)],
        "peer_fastapi": [_result(r) for r in (8000, 8000, 4400)],
        "peer_fastapi_users": [_result(r) for r in (240, 250, 200)],
    }
    return bench_run.summarize(results, 3)


def test_ours_over_each_peer_is_the_median_of_the_rounds(bench_run):
    summary = _summary(bench_run)
    assert summary["peer_fastapi"]["ours_over"]["values"] == [2400 / 8000, 2000 / 8000, 2200 / 4400]
    assert summary["peer_fastapi"]["ours_over"]["median"] == 0.3
    assert summary["peer_fastapi_users"]["ours_over"]["median"] == 10.0
    # × bare Flask: the mean of the hellos around each round, as for every endpoint.
    assert summary["peer_fastapi"]["ratio"]["values"] == [8000 / 3100, 8000 / 3000, 4400 / 2900]
    assert "ours_over" not in summary["rest_auth"]


def test_issue_17_peer_targets_are_checked(bench_run):
    checks = {c["target"]: c for c in bench_run.evaluate(_summary(bench_run), None, None)}
    fastapi = checks["GET /rest-auth >= 0.8× bare FastAPI's GET /hello (uvicorn workers), same rounds"]
    assert (fastapi["figure"], fastapi["met"]) == (0.3, False)
    users = checks["GET /rest-auth >= 10× fastapi-users' GET /rest-auth, same rounds"]
    assert (users["figure"], users["met"]) == (10.0, True)


def test_no_peer_target_without_the_peers(bench_run):
    summary = _summary(bench_run)
    del summary["peer_fastapi"], summary["peer_fastapi_users"]
    assert not [c for c in bench_run.evaluate(summary, None, None) if "FastAPI" in c["target"]
                or "fastapi-users" in c["target"]]


def test_the_peers_section_names_each_system_and_its_ratios(bench_run, capsys):
    bench_run.print_peers(_summary(bench_run))
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("Peers, 4 workers each")
    assert any(line.startswith("bare Flask, gunicorn sync") for line in lines)
    fastapi = next(line for line in lines if line.startswith("bare FastAPI, uvicorn workers"))
    assert "8,000.0 (4,400.0–8,000.0)" in fastapi and fastapi.rstrip().endswith("0.30× (0.25–0.50)")
    users = next(line for line in lines if line.startswith("FastAPI + fastapi-users"))
    assert users.rstrip().endswith("10.00× (8.00–11.00)")


def test_the_peers_run_right_after_our_rest_auth(bench_run):
    ctx = bench_run.Context(None, None, "/tmp", peers={"fastapi": None, "drf-simplejwt": None})
    names = list(bench_run.endpoints(ctx))
    at = names.index("rest_auth")
    assert names[at + 1:at + 3] == ["peer_fastapi", "peer_drf_simplejwt"]
    assert not [n for n in bench_run.endpoints(bench_run.Context(None, None, "/tmp")) if n.startswith("peer_")]


@pytest.mark.parametrize("argv, chosen", [
    ([], ("fastapi", "flask-jwt-extended", "fastapi-users", "drf-simplejwt")),
    (["--peers", "none"], ()),
    (["--peers", "fastapi,fastapi-users"], ("fastapi", "fastapi-users")),
    (["--only", "rest_auth,peer_drf_simplejwt"], ("drf-simplejwt",)),
    (["--only", "rest_auth"], ()),
])
def test_which_peers_run(bench_run, argv, chosen):
    assert bench_run.chosen_peers(bench_run.parse_args(argv)) == chosen


def test_an_unknown_peer_is_refused(bench_run):
    with pytest.raises(SystemExit, match="unknown peer nope"):
        bench_run.chosen_peers(bench_run.parse_args(["--peers", "fastapi,nope"]))


def test_every_peer_pins_its_requirements(bench_run):
    for name in bench_run.peers.NAMES:
        pins = bench_run.peers.pins(name)
        assert pins and all("==" in line for line in pins), (name, pins)


@pytest.mark.live
@pytest.mark.slow
def test_running_peers_stops_each_peer_and_drops_its_database_even_on_failure(bench_run, tmp_path):
    settings = server_config()
    with pytest.raises(KeyboardInterrupt):
        with bench_run.running_peers(settings, tmp_path, ["flask-jwt-extended"]) as running:
            peer = running["flask-jwt-extended"]
            database = open(f"/proc/{peer.process.pid}/environ", "rb").read().split(b"PEER_DB_NAME=")[1]
            database = database.split(b"\0")[0].decode()
            assert db.server_execute(settings, "SHOW DATABASES LIKE %s", (database,))
            raise KeyboardInterrupt  # Ctrl-C in the middle of the rounds
    assert peer.process.poll() is not None
    assert not db.server_execute(settings, "SHOW DATABASES LIKE %s", (database,))
