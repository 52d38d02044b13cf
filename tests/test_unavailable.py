"""Database down or unreachable: a JSON 503 with Retry-After, never a 500 or a hang."""
import pytest

from support import bearer

UNAVAILABLE = {"status_code": 503, "error": "Service Unavailable",
               "description": "The database is unavailable. Retry shortly."}


@pytest.fixture
def token(client, make_user, login):
    make_user("alice", "correct-horse-battery")
    return login("alice", "correct-horse-battery")


@pytest.mark.parametrize("host, port", [("127.0.0.1", 1), ("127.0.0.1", 9)])
def test_closed_port(make_app, token, host, port):
    down = make_app(DB_HOST=host, DB_PORT=port, DB_CONNECT_TIMEOUT=1, DB_RETRY_AFTER=7).test_client()
    for response in (down.post("/auth", json={"username": "alice", "password": "correct-horse-battery"}),
                     down.get("/rest-auth", headers=bearer(token))):
        assert response.status_code == 503
        assert response.get_json() == UNAVAILABLE
        assert response.headers["Retry-After"] == "7"


def test_a_bad_token_is_still_401_while_the_database_is_down(make_app):
    down = make_app(DB_PORT=1, DB_CONNECT_TIMEOUT=1).test_client()
    assert down.get("/rest-auth", headers=bearer("garbage")).status_code == 401


def test_service_recovers_when_the_database_returns(make_app, token, database):
    app = make_app()
    client = app.test_client()
    assert client.get("/rest-auth", headers=bearer(token)).status_code == 200
    # Break every pooled connection from the server side, as a restart would.
    import db
    from support import server_config
    with app.app_context():
        own = db.one("SELECT CONNECTION_ID() AS id")["id"]
        db.close_db()
    db.server_execute(server_config(), "KILL %s", (own,))
    response = client.get("/rest-auth", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
