"""Races across processes: the service under gunicorn with 4 workers, many clients at once.

Twenty concurrent registrations of one name are covered in-process by
tests/http/test_users_register.py and concurrent If-Match updates by
tests/http/test_conditional.py; here the refresh-token exchange, whose single use
must hold across worker processes, not only threads.
"""
import threading

import pytest

from support import LiveServer, call, create_database, drop_database, server_config

pytestmark = pytest.mark.live

PASSWORD = "race-test-password-5Kz"
RACERS = 20


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    database = create_database(prefix="test_races")
    server = LiveServer(tmp_path_factory.mktemp("races"), server_config(database), workers=4)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
        drop_database(database)


def _at_once(count, send):
    """Run send(i) in `count` threads released together; return the results in order."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(i):
        barrier.wait(timeout=10)
        results[i] = send(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_twenty_concurrent_exchanges_of_one_refresh_token_let_exactly_one_win(service):
    status, _, _ = call("POST", service.url + "/register",
                        body={"username": "racer", "password": PASSWORD})
    assert status == 201
    status, _, tokens = call("POST", service.url + "/auth",
                             body={"username": "racer", "password": PASSWORD})
    assert status == 200
    refresh_token = tokens["refresh_token"]

    results = _at_once(RACERS, lambda i: call("POST", service.url + "/refresh",
                                              body={"refresh_token": refresh_token}))

    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] + [401] * (RACERS - 1)
    winner = next(body for status, _, body in results if status == 200)
    for status, headers, body in results:
        if status == 401:
            assert body["status_code"] == 401
            assert "already used" in body["description"]
            assert headers["WWW-Authenticate"].startswith("Bearer")
    # The losers raced within the grace period: refused, but the session lives on.
    status, _, body = call("GET", service.url + "/rest-auth", winner["access_token"])
    assert status == 200, body
    status, _, body = call("POST", service.url + "/refresh",
                           body={"refresh_token": winner["refresh_token"]})
    assert status == 200, body
