"""bench/run.py's report: issue 17's targets, the two baselines, the peers, and that the peers leave nothing behind.

The figures are made up here: what is tested is the arithmetic (per round,
then the median), the targets and the report, not the speed of anything.
"""
import importlib.util
import sys

import pytest

import db
from support import ROOT, server_config


@pytest.fixture(scope="module")
def bench_run():
    """bench/run.py as a module, without leaving bench/ on sys.path (its profile.py would shadow the stdlib's).

    bench/ is on the path while it loads, as when it runs as a script: it
    imports its neighbours (jsonhttp, load_data, peers, procs) by name.
    """
    saved = list(sys.path)
    try:
        sys.path.insert(0, str(ROOT / "bench"))
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


def _served_summary(bench_run):
    """Three rounds with both baselines, every endpoint of issue 17's targets, and POST /auth's ceilings."""
    results = {
        "hello": [_result(r, p99_ms=10) for r in (3000, 3200, 2800, 3000)],
        "hello_served": [_result(r, p99_ms=5) for r in (6000, 8000, 7000, 6000)],
        "ceiling": [100.0, 80.0, 90.0],
        "rest_auth": [_result(r, p99_ms=p99) for r, p99 in ((4650, 19), (4650, 21), (4350, 25))],
        "posts_page": [_result(r) for r in (3720, 3600, 3480)],
        "auth": [_result(r) for r in (95, 70, 90)],
        "posts_create": [_result(1000)] * 3,
        "refresh": [_result(1000)] * 3,
        "peer_fastapi": [_result(r) for r in (5000, 6000, 6000)],
        "peer_fastapi_users": [_result(r) for r in (460, 470, 440)],
    }
    return bench_run.summarize(results, 3)


def test_the_targets_are_issue_17s(bench_run):
    assert {key: bench_run.TARGETS[key] for key in (
        "rest_auth_ratio", "posts_page_ratio", "auth_ceiling_ratio", "rest_auth_p99_ratio",
        "memory_growth", "fastapi_ratio", "fastapi_users_ratio")} == {
        "rest_auth_ratio": 1.5, "posts_page_ratio": 1.2, "auth_ceiling_ratio": 0.9,
        "rest_auth_p99_ratio": 2.0, "memory_growth": 0.10, "fastapi_ratio": 0.8, "fastapi_users_ratio": 10.0}


def test_hello_served_is_each_run_over_the_hello_just_before_it(bench_run):
    served = _served_summary(bench_run)["hello_served"]
    assert served["ratio"]["values"] == [6000 / 3000, 8000 / 3200, 7000 / 2800, 6000 / 3000]
    assert served["ratio"]["median"] == 2.25
    assert served["p99_ratio"]["median"] == 0.5
    assert "served_ratio" not in served


def test_every_endpoint_has_its_ratio_to_both_baselines(bench_run):
    summary = _served_summary(bench_run)
    rest_auth = summary["rest_auth"]
    # Per round: the mean of the two runs of each baseline around it.
    assert rest_auth["ratio"]["values"] == [4650 / 3100, 4650 / 3000, 4350 / 2900]
    assert rest_auth["served_ratio"]["values"] == [4650 / 7000, 4650 / 7500, 4350 / 6500]
    assert rest_auth["served_ratio"]["median"] == 4650 / 7000
    assert summary["peer_fastapi"]["served_ratio"]["values"] == [5000 / 7000, 6000 / 7500, 6000 / 6500]
    assert "served_ratio" not in _summary(bench_run)["rest_auth"]  # a run without hello_served


def test_each_target_of_issue_17_is_checked(bench_run):
    checks = {c["target"]: c for c in bench_run.evaluate(_served_summary(bench_run), None, None)}
    expected = {
        "GET /rest-auth >= 1.5× hello (bare Flask, gunicorn sync)": (1.5, True),
        "page of 20 posts >= 1.2× hello": (1.2, True),
        "POST /auth >= 0.9× its ceiling (verifies/s on every core, each round; median 90.0 req/s)": (0.95, True),
        "p99 GET /rest-auth <= 2.0× p99 hello": (2.1, False),
        "GET /rest-auth >= 0.8× bare FastAPI's GET /hello (uvicorn workers), same rounds": (0.775, False),
        "GET /rest-auth >= 10× fastapi-users' GET /rest-auth, same rounds": (4650 / 470, False),
        "zero non-2xx answers and socket errors": (0, True),
    }
    assert {label: (pytest.approx(checks[label]["figure"]), checks[label]["met"]) for label in expected} == expected
    assert len(checks) == len(expected)  # no other target, none about hello_served


def test_the_memory_target_is_flat_within_10_percent_with_the_same_workers(bench_run):
    summary = _served_summary(bench_run)
    memory = {"requests": [10_000, 100_000], "growth": 0.09, "same_workers": True}
    check = bench_run.evaluate(summary, memory, None)[-1]
    assert check["target"] == "worker RSS after 100,000 requests within 10% of after 10,000"
    assert check["met"]
    assert not bench_run.evaluate(summary, dict(memory, growth=0.11), None)[-1]["met"]
    assert not bench_run.evaluate(summary, dict(memory, same_workers=False), None)[-1]["met"]


def test_the_table_shows_the_ratio_to_hello_served(bench_run, capsys):
    summary = _served_summary(bench_run)
    descriptions = {name: name for name in summary}
    bench_run.print_table(summary, descriptions)
    lines = capsys.readouterr().out.splitlines()
    assert "× hello-served" in lines[1]
    rest_auth = next(line for line in lines if line.startswith("rest_auth "))
    assert "1.500× (1.500–1.550)" in rest_auth and "0.664× (0.620–0.669)" in rest_auth
    served = next(line for line in lines if line.startswith("hello_served "))
    assert "2.250× (2.000–2.500)" in served


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
    assert not any(line.startswith("bare Flask, our server") for line in lines)  # not measured here
    fastapi = next(line for line in lines if line.startswith("bare FastAPI, uvicorn workers"))
    assert "8,000.0 (4,400.0–8,000.0)" in fastapi and fastapi.rstrip().endswith("0.30× (0.25–0.50)")
    users = next(line for line in lines if line.startswith("FastAPI + fastapi-users"))
    assert users.rstrip().endswith("10.00× (8.00–11.00)")


def test_the_peers_section_shows_hello_served_against_hello(bench_run, capsys):
    bench_run.print_peers(_served_summary(bench_run))
    served = next(line for line in capsys.readouterr().out.splitlines()
                  if line.startswith("bare Flask, our server (python -m serving bench.hello:app)"))
    assert "6,500.0 (6,000.0–8,000.0)" in served and served.rstrip().endswith("2.250× (2.000–2.500)")


def test_the_baselines_open_a_round_when_hello_served_runs(bench_run):
    names = list(bench_run.endpoints(bench_run.Context(None, None, "/tmp", hello_served=object())))
    assert names[:3] == ["hello", "hello_served", "public"]
    assert "hello_served" not in bench_run.endpoints(bench_run.Context(None, None, "/tmp"))


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
