"""POST /register (seed 000), /signup and /users (seed 002): one rule set, 201, 409, never the hash."""
import json
import re
import threading

import pytest
from werkzeug.serving import make_server

import db
from support import call, free_port

PASSWORD = "a-long-enough-password"
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def user_row(app, username):
    with app.app_context():
        row = db.one("SELECT id, username, password, is_admin, token_version FROM user"
                     " WHERE username = %s", (username,))
        db.close_db()
    return row


@pytest.mark.parametrize("path, field", [
    ("/register", "name"), ("/register", "username"),
    ("/signup", "username"), ("/users", "username"),
])
def test_register_creates_the_account(client, app, path, field):
    response = client.post(path, json={field: "newbie", "password": PASSWORD})
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "username", "created"}
    assert body["username"] == "newbie"
    assert ISO_UTC.fullmatch(body["created"])
    assert response.headers["Location"] == f"/users/{body['id']}"
    assert PASSWORD not in response.get_data(as_text=True)
    row = user_row(app, "newbie")
    assert row["id"] == body["id"] and not row["is_admin"]
    assert row["password"].startswith("$argon2id$")


def test_registered_user_can_log_in(client):
    client.post("/signup", json={"username": "newbie", "password": PASSWORD})
    response = client.post("/auth", json={"username": "newbie", "password": PASSWORD})
    assert response.status_code == 200
    assert response.get_json()["access_token"]


def test_duplicate_username_is_409(client):
    assert client.post("/users", json={"username": "taken", "password": PASSWORD}).status_code == 201
    response = client.post("/register", json={"name": "taken", "password": "another-password-2"})
    assert response.status_code == 409
    assert response.get_json() == {
        "status_code": 409, "error": "Conflict",
        "description": "The username 'taken' is taken.", "field": "username",
    }


def test_usernames_differing_only_in_case_are_duplicates(client):
    assert client.post("/users", json={"username": "Taken", "password": PASSWORD}).status_code == 201
    assert client.post("/users", json={"username": "tAKEN", "password": PASSWORD}).status_code == 409


@pytest.mark.parametrize("body, status, field", [
    ({"password": PASSWORD}, 400, "username"),
    ({"username": "newbie"}, 400, "password"),
    ({"username": None, "password": PASSWORD}, 400, "username"),
    ({"username": 7, "password": PASSWORD}, 400, "username"),
    ({"username": ["newbie"], "password": PASSWORD}, 400, "username"),
    ({"username": "newbie", "password": 12345678}, 400, "password"),
    ({"username": "newbie", "password": {"a": 1}}, 400, "password"),
    ({"username": "ab", "password": PASSWORD}, 422, "username"),
    ({"username": "x" * 33, "password": PASSWORD}, 422, "username"),
    ({"username": "has space", "password": PASSWORD}, 422, "username"),
    ({"username": "semi;colon", "password": PASSWORD}, 422, "username"),
    ({"username": "newbie", "password": "short"}, 422, "password"),
    ({"username": "newbie", "password": "password"}, 422, "password"),
    ({"username": "newbie", "password": "x" * 1025}, 422, "password"),
    ({"name": "newbie", "username": "newbie", "password": PASSWORD}, 400, "name"),
    ({"name": "ab", "password": PASSWORD}, 422, "name"),
])
def test_bad_fields_are_refused_naming_the_field(client, app, body, status, field):
    response = client.post("/register", json=body)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["field"] == field
    assert response.get_json()["status_code"] == status
    assert user_row(app, "newbie") is None


@pytest.mark.parametrize("field, value", [
    ("admin", True), ("is_admin", 1), ("role", "admin"), ("id", 1), ("password_hash", "x"),
])
def test_privilege_fields_are_refused(client, app, field, value):
    response = client.post("/users", json={"username": "sneaky", "password": PASSWORD, field: value})
    assert response.status_code == 400
    assert response.get_json() == {
        "status_code": 400, "error": "Bad Request",
        "description": f"'{field}' cannot be set here.", "field": field,
    }
    assert user_row(app, "sneaky") is None


def test_unknown_fields_are_refused(client, app):
    response = client.post("/signup", json={"username": "newbie", "password": PASSWORD, "email": "a@b"})
    assert response.status_code == 400
    assert response.get_json()["field"] == "email"
    assert response.get_json()["description"] == "Unknown field 'email'."
    assert user_row(app, "newbie") is None


@pytest.mark.parametrize("kwargs, status", [
    ({"data": "username=newbie&password=x", "content_type": "application/x-www-form-urlencoded"}, 415),
    ({"data": "", "content_type": "text/plain"}, 415),
    ({"data": "{not json", "content_type": "application/json"}, 400),
    ({"data": "[1, 2]", "content_type": "application/json"}, 400),
    ({"data": "null", "content_type": "application/json"}, 400),
])
def test_body_must_be_a_json_object(client, kwargs, status):
    response = client.post("/register", **kwargs)
    assert response.status_code == status
    assert response.get_json()["status_code"] == status


def test_oversized_body_is_413(client):
    body = json.dumps({"username": "newbie", "password": "p" * 70_000})
    response = client.post("/register", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["status_code"] == 413


def test_get_on_register_is_405_json(client):
    response = client.get("/register")
    assert response.status_code == 405
    assert response.get_json()["status_code"] == 405


@pytest.fixture
def threaded_server(app):
    """The app in a threaded werkzeug server: concurrent requests, each on its own pooled connection."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def test_twenty_racing_registrations_give_one_201_and_nineteen_409(app, threaded_server):
    start = threading.Barrier(20)
    results = []
    lock = threading.Lock()

    def register(n):
        start.wait()  # all 20 requests leave together
        status, _, body = call("POST", threaded_server + "/register",
                               body={"name": "racer", "password": f"{PASSWORD}-{n}"})
        with lock:
            results.append((status, body))

    threads = [threading.Thread(target=register, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 19, results
    assert all(body["field"] == "username" for status, body in results if status == 409)
    with app.app_context():
        assert db.one("SELECT COUNT(*) AS n FROM user WHERE username = 'racer'")["n"] == 1
        db.close_db()
