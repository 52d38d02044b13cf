"""bench/serving_choice.py (docs/performance.md, "Choosing the server") measures every candidate.

It runs in its quick mode (2-s wrk, 5-s attacks, 50 sockets of each kind):
the figures are too short to compare speeds, but not to show the property
the server was chosen for. Ours answers every normal call while slow sockets
trickle headers and bodies; gunicorn's sync workers, the old shipped setup,
do not while headers trickle (issue 17). The other promises of that section
(the make target, the flags, the one-line refusal without a tool) are checked
without running it.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

from support import ROOT, require_tool, server_config

SCRIPT = ROOT / "bench" / "serving_choice.py"

KEYS = ["gunicorn_sync_4", "granian_wsgi_2", "granian_wsgi_4", "gunicorn_gevent_4",
        "nginx_gunicorn_sync_4", "ours_4", "ours_2"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    require_tool("wrk", "the throughput part of bench/serving_choice.py")
    # Debian's nginx lives in /usr/sbin, often off a user's PATH.
    require_tool(shutil.which("nginx") or "/usr/sbin/nginx", "the nginx candidate of bench/serving_choice.py")
    out = tmp_path_factory.mktemp("choice") / "serving-choice.json"
    env = {**os.environ, **{k: str(v) for k, v in server_config().items() if k != "DB_NAME"},
           "PYTHON_DOTENV_DISABLED": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=420)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "gunicorn sync ×4 (old shipped)" in done.stdout  # the table
    return json.loads(out.read_text())


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


@pytest.mark.live
@pytest.mark.slow
def test_every_candidate_has_numeric_figures(report):
    assert list(report["candidates"]) == KEYS
    assert report["settings"]["quick"] is True and report["settings"]["header_sockets"] == 50
    for key, entry in report["candidates"].items():
        speed = entry["throughput"]
        assert _number(speed["req_s"]) and speed["req_s"] > 0, (key, speed)
        assert _number(speed["p99_ms"]) and _number(speed["ratio"]), (key, speed)
        assert speed["bad_answers"] == 0, (key, speed)  # every answer a 2xx, no socket error
        if "attacked_as" in entry:  # a ×2 variant: the same server as its ×4, attacked once
            assert entry["attacked_as"] in report["candidates"] and "slow_headers" in \
                report["candidates"][entry["attacked_as"]], key
            continue
        for part in ("quiet", "slow_headers", "slow_bodies"):
            figures = entry[part]
            assert figures["calls"] > 0 and 0 <= figures["answered"] <= 1, (key, part, figures)
            assert _number(figures["p99_ms"]), (key, part, figures)
    assert report["candidates"]["gunicorn_sync_4"]["throughput"]["ratio"] == 1.0


@pytest.mark.live
@pytest.mark.slow
def test_the_attacks_really_held_sockets(report):
    for key, entry in report["candidates"].items():
        if "attacked_as" in entry:
            continue
        assert entry["slow_headers"]["attacker"]["headers"]["opened"] >= 50, key
        assert entry["slow_bodies"]["attacker"]["bodies"]["opened"] >= 50, key


@pytest.mark.live
@pytest.mark.slow
def test_ours_answers_every_call_under_both_attacks(report):
    ours = report["candidates"]["ours_4"]
    for part in ("quiet", "slow_headers", "slow_bodies"):
        assert ours[part]["answered"] == 1.0, (part, ours[part])


@pytest.mark.live
@pytest.mark.slow
def test_gunicorn_sync_workers_starve_under_slow_headers(report):
    sync = report["candidates"]["gunicorn_sync_4"]
    assert sync["quiet"]["answered"] == 1.0, sync["quiet"]  # it serves when nobody attacks
    assert sync["slow_headers"]["answered"] < 1.0, sync["slow_headers"]


@pytest.mark.live
@pytest.mark.slow
def test_it_listens_in_its_port_range_and_leaves_nothing_listening(report):
    for key, entry in report["candidates"].items():
        ports = [entry["throughput"]["port"]] + ([entry["service_port"]] if "service_port" in entry else [])
        for port in ports:
            assert 57300 <= port <= 57399, (key, port)
            with socket.socket() as sock:  # every server it started was stopped
                assert sock.connect_ex(("127.0.0.1", port)) != 0, (key, port)


def test_make_bench_serving_runs_it():
    done = subprocess.run(["make", "-n", "--no-print-directory", "bench-serving"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == ".venv/bin/python bench/serving_choice.py"


def test_every_flag_the_docs_name_exists():
    section = (ROOT / "docs" / "performance.md").read_text().split("## Choosing the server", 1)[1]
    section = section.split("\n## ", 1)[0]
    named = set(re.findall(r"(--[a-z][a-z-]+)", section.split("### Figures", 1)[0]))
    named -= {"--workers", "--interface", "--preload", "--timeout", "--graceful-timeout", "--keep-alive",
              "--no-control-socket", "--latency"}  # the candidates' and wrk's own flags
    helptext = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True,
                              timeout=60).stdout
    assert named and {flag for flag in named if flag not in helptext} == set()


def test_a_missing_tool_stops_it_at_once_with_one_line(tmp_path):
    # No wrk on this PATH: nothing may start, no database may be made.
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path / "x.json")],
                          cwd=ROOT, env={**os.environ, "PATH": str(tmp_path)}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: wrk (Debian package wrk)") and done.stderr.count("\n") == 1
    assert "make system-deps" in done.stderr
    assert not (tmp_path / "x.json").exists()
