"""rest/fast_paths.py gives what Flask and Werkzeug give, and steps aside where its shortcut would not."""
import flask
import pytest
from werkzeug.exceptions import BadHost
from werkzeug.test import EnvironBuilder

from rest import fast_paths


def _answer(response_class, environ, make):
    """(body bytes, status, headers) of a response built by make(response_class), served for environ."""
    response = make(response_class)
    app_iter, status, headers = response.get_wsgi_response(environ)
    try:
        body = b"".join(app_iter)
    finally:
        if hasattr(app_iter, "close"):
            app_iter.close()
    return body, status, headers


def _streamed(cls):
    return cls((part for part in [b"a", b"b"]), mimetype="text/plain")


RESPONSES = {
    "json": lambda cls: cls(b'{"a":1}\n', mimetype="application/json"),
    "text": lambda cls: cls("héllo", mimetype="text/plain"),
    "created with Location": lambda cls: cls(b"{}", 201, {"Location": "/users/ü"}),
    "Content-Location": lambda cls: cls(b"{}", headers={"Content-Location": "/a b"}),
    "no content": lambda cls: cls(b"", 204),
    "not modified": lambda cls: cls(b"{}", 304, {"ETag": '"x"'}),
    "informational": lambda cls: cls(b"x", 103),
    "a list of str": lambda cls: cls(["a", "b"]),
    "two bytes parts": lambda cls: cls([b"a", b"b"]),
    "streamed": _streamed,
    "direct passthrough": lambda cls: cls([b"raw"], direct_passthrough=True),
    "error": lambda cls: cls(b'{"status_code":404}', 404, mimetype="application/json"),
}


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
@pytest.mark.parametrize("name", list(RESPONSES))
def test_the_response_is_werkzeugs_byte_for_byte(name, method):
    environ = EnvironBuilder(path="/x", method=method).get_environ()
    ours = _answer(fast_paths.Response, environ, RESPONSES[name])
    flasks = _answer(flask.Response, environ, RESPONSES[name])
    assert ours == flasks


def test_a_whole_json_body_is_handed_over_as_its_list():
    response = fast_paths.Response(b'{"a":1}', mimetype="application/json")
    app_iter, status, headers = response.get_wsgi_response(EnvironBuilder().get_environ())
    assert app_iter is response.response and app_iter == [b'{"a":1}']
    assert status == "200 OK"
    assert headers == [("Content-Type", "application/json"), ("Content-Length", "7")]
    headers.append(("X-Extra", "1"))  # the middleware appends to what it gets
    assert "X-Extra" not in response.headers


def test_close_callbacks_still_run():
    closed = []
    response = fast_paths.Response(b"{}")
    response.call_on_close(lambda: closed.append(True))
    app_iter, _, _ = response.get_wsgi_response(EnvironBuilder().get_environ())
    assert not isinstance(app_iter, list)
    b"".join(app_iter)
    app_iter.close()
    assert closed == [True]


def test_the_service_answers_with_it(client):
    response = client.get("/public")
    assert isinstance(response, flask.Response)
    assert response.get_json() == {"message": "This is a public page"}
    assert response.headers["Content-Length"] == str(len(response.data))


ENVIRONS = {
    "plain": dict(path="/users/1/posts", query_string="limit=20", headers={"Host": "api.example"}),
    "a port": dict(path="/a", headers={"Host": "API.Example:8080"}),
    "the default port": dict(path="/a", headers={"Host": "api.example:80"}),
    "https's default port": dict(path="/a", base_url="https://api.example:443"),
    "an IDNA host": dict(path="/a", headers={"Host": "bücher.example"}),
    "no Host": dict(path="/a", environ_overrides={"HTTP_HOST": None, "SERVER_NAME": "srv", "SERVER_PORT": "81"}),
    "a script name": dict(path="/a", base_url="http://h.example/prefix"),
    "a non-ASCII path": dict(path="/caf%C3%A9/%E2%9C%93"),
    "a POST": dict(path="/auth", method="POST"),
}


def _adapter_fields(adapter):
    return (adapter.server_name, adapter.script_name, adapter.subdomain, adapter.url_scheme,
            adapter.path_info, adapter.default_method, adapter.query_args, adapter.map)


def _flask_adapter(app, request):
    return flask.Flask.create_url_adapter(app, request)


@pytest.mark.parametrize("name", list(ENVIRONS))
def test_the_url_adapter_is_flasks(app, name):
    environ = EnvironBuilder(**ENVIRONS[name]).get_environ()
    if environ.get("HTTP_HOST") is None:
        environ.pop("HTTP_HOST", None)
    ours_request, flasks_request = app.request_class(dict(environ)), app.request_class(dict(environ))
    ours = fast_paths.url_adapter(app, ours_request)
    assert ours is not None
    assert _adapter_fields(ours) == _adapter_fields(_flask_adapter(app, flasks_request))
    assert ours_request.host == flasks_request.host


def test_routing_through_it_matches_as_flask_does(client, people):
    answer = client.get("/rest-auth", headers=people.alice.headers)
    assert answer.status_code == 200
    assert answer.get_json()["user"]["username"] == "alice"
    assert client.get("/no-such-route").status_code == 404
    assert client.delete("/public").status_code == 405


def test_a_host_idna_cannot_encode_is_flasks_bad_host(app):
    environ = EnvironBuilder(path="/a", headers={"Host": "a..b"}).get_environ()
    with pytest.raises(BadHost):
        _flask_adapter(app, app.request_class(dict(environ)))
    with pytest.raises(BadHost):
        fast_paths.url_adapter(app, app.request_class(dict(environ)))


@pytest.mark.parametrize("change", ["SERVER_NAME", "TRUSTED_HOSTS", "upgrade", "subdomains", "hosts"])
def test_it_steps_aside_for_what_only_flask_handles(app, change, monkeypatch):
    headers = {"Host": "api.example"}
    if change == "SERVER_NAME":
        monkeypatch.setitem(app.config, "SERVER_NAME", "api.example")
    elif change == "TRUSTED_HOSTS":
        monkeypatch.setitem(app.config, "TRUSTED_HOSTS", ["api.example"])
    elif change == "upgrade":
        headers.update(Connection="Upgrade", Upgrade="websocket")
    elif change == "subdomains":
        monkeypatch.setattr(app, "subdomain_matching", True)
    else:
        monkeypatch.setattr(app.url_map, "host_matching", True)
    request = app.request_class(EnvironBuilder(path="/a", headers=headers).get_environ())
    assert fast_paths.url_adapter(app, request) is None
    assert app.create_url_adapter(request) is not None  # Flask's own answer, through app.Service
