"""bench/serving_choice.py (docs/performance.md, "Choosing the server") measures every candidate.

It runs in its quick mode (2-s wrk, 5-s attacks, 50 sockets of each kind):
the figures are too short to compare speeds, but not to show the property
the server was chosen for. Ours answers every normal call while slow sockets
trickle headers and bodies; gunicorn's sync workers, the old shipped setup,
do not while headers trickle (issue 17).
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from support import ROOT, require_tool, server_config

pytestmark = [pytest.mark.live, pytest.mark.slow]

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
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "serving_choice.py"), "--quick",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=420)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "gunicorn sync ×4 (old shipped)" in done.stdout  # the table
    return json.loads(out.read_text())


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


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


def test_the_attacks_really_held_sockets(report):
    for key, entry in report["candidates"].items():
        if "attacked_as" in entry:
            continue
        assert entry["slow_headers"]["attacker"]["headers"]["opened"] >= 50, key
        assert entry["slow_bodies"]["attacker"]["bodies"]["opened"] >= 50, key


def test_ours_answers_every_call_under_both_attacks(report):
    ours = report["candidates"]["ours_4"]
    for part in ("quiet", "slow_headers", "slow_bodies"):
        assert ours[part]["answered"] == 1.0, (part, ours[part])


def test_gunicorn_sync_workers_starve_under_slow_headers(report):
    sync = report["candidates"]["gunicorn_sync_4"]
    assert sync["quiet"]["answered"] == 1.0, sync["quiet"]  # it serves when nobody attacks
    assert sync["slow_headers"]["answered"] < 1.0, sync["slow_headers"]
