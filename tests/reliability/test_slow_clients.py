"""Slow clients cannot starve the server (README, "Running in production"; docs/security.md).

1,000 sockets trickle their headers and 200 trickle a POST body, one piece a
second, for 30 s, reconnecting whenever the server hangs up, while a normal
client calls GET /rest-auth. Every normal call must succeed, its p99 stay
within 3x of the same client's p99 without the attack, and every slow
socket must be closed by the server's own timeouts. "Without the attack" is
measured just before it and just after it, and the slower of the two counts:
this shared machine's own speed can drift by half within a minute (ci15 of
2026-12-01: 579 calls/s before, 326 during), which is not the attack's doing.
"""
import http.client
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import start_live_server, stop_live_server

pytestmark = [pytest.mark.live, pytest.mark.slow]

HEADER_SOCKETS, BODY_SOCKETS = 1000, 200
ATTACK_SECONDS = 30
TIMEOUT = 5  # SERVER_HEADER_TIMEOUT and SERVER_BODY_TIMEOUT for this server
ATTACKER = Path(__file__).with_name("slow_clients.py")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = start_live_server(tmp_path_factory.mktemp("slow"), SERVER_HEADER_TIMEOUT=str(TIMEOUT),
                             SERVER_BODY_TIMEOUT=str(TIMEOUT), ACCESS_LOG="false")
    yield live
    stop_live_server(live)


def bearer(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("POST", "/auth", body=json.dumps({"username": "roy", "password": "roy"}),
                       headers={"Content-Type": "application/json"})
    answer = connection.getresponse()
    assert answer.status == 200
    return json.loads(answer.read())["access_token"]


def normal_calls(server, token, seconds):
    """Call GET /rest-auth back to back for `seconds`: the latencies, failing on any wrong answer."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    latencies, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        connection.request("GET", "/rest-auth", headers={"Authorization": f"Bearer {token}"})
        answer = connection.getresponse()
        body = answer.read()
        latencies.append(time.perf_counter() - started)
        assert answer.status == 200, (answer.status, body)
        assert json.loads(body)["user"]["username"] == "roy"
    connection.close()
    return latencies


def p99(values):
    ordered = sorted(values)
    return ordered[int(len(ordered) * 0.99)]


def test_slow_clients_neither_starve_nor_slow_the_others(server):
    token = bearer(server)
    normal_calls(server, token, 2)  # warm: pools, caches
    quiet = normal_calls(server, token, 8)
    attacker = subprocess.Popen(
        [sys.executable, str(ATTACKER), str(server.port), str(HEADER_SOCKETS), str(BODY_SOCKETS),
         str(ATTACK_SECONDS), "1"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(3)  # every slow socket connected and trickling
        attacked = normal_calls(server, token, ATTACK_SECONDS - 6)
        out, _ = attacker.communicate(timeout=ATTACK_SECONDS + 30)
    finally:
        attacker.kill()
    tally = json.loads(out)
    after = normal_calls(server, token, 8)  # every slow socket is closed by now
    without = max(p99(quiet), p99(after))
    print(json.dumps({"p99_before_ms": round(p99(quiet) * 1000, 2), "p99_after_ms": round(p99(after) * 1000, 2),
                      "p99_attacked_ms": round(p99(attacked) * 1000, 2), "calls_before": len(quiet),
                      "calls_attacked": len(attacked), "calls_after": len(after), **tally}))
    assert p99(attacked) <= 3 * without, (p99(quiet), p99(after), p99(attacked), len(attacked))
    for kind, sockets in (("headers", HEADER_SOCKETS), ("bodies", BODY_SOCKETS)):
        seen = tally[kind]
        # Each socket was hung up on by the server (not kept for the whole 30 s) and reconnected.
        assert seen["opened"] >= 2 * sockets, (kind, seen)
        assert seen["closed_by_server"] >= sockets, (kind, seen)
        assert seen["longest_s"] <= TIMEOUT + 3, (kind, seen)
    # A body that never arrives is answered 408 before the server hangs up.
    assert sum(n for status, n in tally["bodies"]["answers"].items() if status.endswith("408")) \
        >= BODY_SOCKETS, tally["bodies"]
