"""The API keeps no Flask cookie session (app.NoCookieSession)."""
import flask
import pytest


def test_no_request_opens_a_session_or_sets_a_cookie(client):
    response = client.get("/public")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_flask_session_is_empty_and_refuses_writes(app):
    with app.test_request_context("/"):
        assert dict(flask.session) == {}
        with pytest.raises(RuntimeError):
            flask.session["user"] = 1
