"""Two pieces of Flask's per-request work, done the same way with less of it.

Together they took a GET /rest-auth from 578,807 to 510,546 instructions and
a page of posts from 679,155 to 588,705 (bench/instructions.py). Each falls
back to Flask's own code whenever its shortcut would not give exactly what
Flask gives (tests/test_fast_paths.py compares the two).

- `Response`: a body set whole (every JSON answer: one bytes object in a
  list) is handed to the server as that list, instead of through Werkzeug's
  generator and ClosingIterator, with the headers as they are when Werkzeug's
  copy would change nothing. Nothing is lost: with no call_on_close()
  functions, Response.close() has nothing to do for a list.
- `url_adapter()`: Flask binds the URL map to each request through
  Map.bind_to_environ, which reads the Host twice and IDNA-encodes it every
  time. Without SERVER_NAME, TRUSTED_HOSTS, host or subdomain matching (this
  service sets none of them) the binding needs only the Host, read once, and
  its IDNA form, remembered for the few hosts a deployment sees.
"""
from __future__ import annotations

import functools

import flask
from werkzeug.exceptions import BadHost
from werkzeug.routing import MapAdapter
from werkzeug.wsgi import get_host

NO_BODY_STATUSES = (204, 304)


class Response(flask.Response):
    """flask.Response that hands a body set whole to the server as it is."""

    def get_wsgi_response(self, environ: dict):
        """Werkzeug's (app_iter, status, headers) without its copy of the headers when it would change none.

        Werkzeug copies the headers to fix Location and Content-Location,
        drop a body's headers on 1xx, 204 and 304, and add a Content-Length:
        a 2xx body set whole already has its length, and without either
        location header there is nothing to fix.
        """
        if self._whole_body(environ):
            headers = self.headers.to_wsgi_list()  # a new list: the middleware appends to it
            if _nothing_to_fix(headers):
                return self.response, self.status, headers
        return super().get_wsgi_response(environ)

    def get_app_iter(self, environ: dict):
        if self._whole_body(environ):
            return self.response
        return super().get_app_iter(environ)

    def _whole_body(self, environ: dict) -> bool:
        # One bytes object, as set_data() leaves it, nothing to call on close,
        # and a status and method that send a body.
        body = self.response
        status = self.status_code
        return (type(body) is list and len(body) == 1 and type(body[0]) is bytes
                and not self._on_close and not self.direct_passthrough
                and 200 <= status and status not in NO_BODY_STATUSES
                and environ["REQUEST_METHOD"] != "HEAD")


def _nothing_to_fix(headers: list) -> bool:
    """True when the headers have a Content-Length and neither Location nor Content-Location."""
    length = False
    for name, _ in headers:
        name = name.lower()
        if name == "content-length":
            length = True
        elif name == "location" or name == "content-location":
            return False
    return length


def url_adapter(app: flask.Flask, request: flask.Request) -> MapAdapter | None:
    """What Flask.create_url_adapter(request) returns, or None when only Flask's own code may say."""
    config = app.config
    url_map = app.url_map
    environ = request.environ
    if (config["SERVER_NAME"] is not None or config["TRUSTED_HOSTS"] is not None
            or request.trusted_hosts is not None or url_map.host_matching or app.subdomain_matching or "HTTP_UPGRADE" in environ):
        return None  # a WebSocket upgrade changes the scheme: Werkzeug's code handles it
    host = request.host = get_host(environ)  # as Flask sets it
    script_name = environ.get("SCRIPT_NAME")
    path_info = environ.get("PATH_INFO")
    return MapAdapter(
        url_map, _server_name(host.lower()),
        "/" if script_name is None else _wsgi_text(script_name),
        url_map.default_subdomain or "", environ["wsgi.url_scheme"],
        "/" if path_info is None else _wsgi_text(path_info),
        environ["REQUEST_METHOD"], environ.get("QUERY_STRING", ""),
    )


# Bounded: the Host is the client's to choose.
@functools.lru_cache(maxsize=64)
def _server_name(host: str) -> str:
    """The host as Map.bind gives it to the adapter: its name IDNA-encoded, the port kept."""
    name, separator, port = host.partition(":")
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise BadHost() from exc
    return f"{name}{separator}{port}"


def _wsgi_text(value: str) -> str:
    """A PEP 3333 latin-1 string as the UTF-8 text it carries (Werkzeug's _wsgi_decoding_dance)."""
    return value.encode("latin1").decode(errors="replace")
