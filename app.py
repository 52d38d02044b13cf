"""Application factory. `python app.py` runs a development server on 127.0.0.1:5000."""
import json
import logging
import secrets
import sys
from types import FunctionType

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SessionInterface

import cli
import config as settings
import db
import mail_cli
from accounts import events, keys, mail_sender
from rest import errors, fast_paths, inputs, json_body, middleware, rate_limits, register_blueprints

log = logging.getLogger(__name__)


def _config_error_in_one_line(kind, value, traceback):
    """sys.excepthook: an uncaught ConfigError prints `error: <how to fix it>`, not a traceback.

    `flask <command>` builds the app through create_app() outside any of our
    code, so a bad setting (DB_PORT=abc, a short SECRET_KEY in production)
    would otherwise reach the user as a traceback. Other exceptions keep the
    default report.
    """
    if issubclass(kind, settings.ConfigError):
        sys.stderr.write(f"error: {value}\n")
    else:
        _default_excepthook(kind, value, traceback)


_default_excepthook = sys.excepthook
sys.excepthook = _config_error_in_one_line


def create_app(config=None, env=None):
    """Build the app: defaults, then the environment (and .env), then `config`.

    `env` replaces os.environ (tests pass {} so a developer's .env cannot leak
    in). Raises config.ConfigError when the result is unsafe to run.
    """
    app = Service(__name__)
    app.config.update(settings.from_env(env))
    app.config.update(config or {})
    settings.validate(app.config)
    app.json = CompactJSON(app)
    app.request_class = json_body.JSONRequest  # a refused body keeps its own 400 (rest/json_body.py)
    app.before_request(inputs.require_host)
    app.session_interface = NoCookieSession()
    app.extensions["keyring"] = _keyring(app)

    db.init_app(app)
    errors.init_app(app)
    middleware.init_app(app)  # first: request id and timing for every later hook
    rate_limits.init_app(app)
    register_blueprints(app)
    mail_sender.init_app(app)
    events.init_app(app)
    cli.init_app(app)
    mail_cli.init_app(app)
    return app


class Service(Flask):
    """Flask, remembering which functions ensure_sync() found synchronous, with rest/fast_paths.py's shortcuts.

    Flask asks inspect.iscoroutinefunction() about the view and every
    teardown function at every request (0.7 us each, bench/hot_path.py); a
    function's answer never changes. Only plain functions are remembered
    (views, hooks: a fixed set); bound methods and other callables, which
    may be made anew per request, are asked every time, as Flask does.
    """

    response_class = fast_paths.Response

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync_functions = set()

    def create_url_adapter(self, request):
        if request is not None:
            adapter = fast_paths.url_adapter(self, request)
            if adapter is not None:
                return adapter
        return super().create_url_adapter(request)

    def ensure_sync(self, func):
        if type(func) is not FunctionType:
            return super().ensure_sync(func)
        if func in self._sync_functions:
            return func
        wrapped = super().ensure_sync(func)
        if wrapped is func:
            self._sync_functions.add(func)
        return wrapped


class CompactJSON(DefaultJSONProvider):
    """Flask's JSON with keys in the order written, one encoder for every response, and safe parsing.

    json.dumps() with options builds a new JSONEncoder per call (2.5 us of the
    4.3 us of a small body); the compact form every non-debug response uses
    is encoded by one built here. The output is byte for byte the same.
    """

    sort_keys = False

    def __init__(self, app):
        super().__init__(app)
        self._compact = json.JSONEncoder(ensure_ascii=self.ensure_ascii, sort_keys=False,
                                         separators=_COMPACT["separators"], default=self.default).encode

    def dumps(self, obj, **kwargs):
        if kwargs == _COMPACT:
            return self._compact(obj)
        return super().dumps(obj, **kwargs)

    def loads(self, s, **kwargs):
        """Every request body is read here: depth cap, no lone surrogates, no NaN (rest/json_body.py)."""
        return json_body.loads(s, **kwargs)


_COMPACT = {"separators": (",", ":")}


class NoCookieSession(SessionInterface):
    """No Flask cookie session: a token API never uses one.

    Flask's default builds a signing serializer from SECRET_KEY at every
    request (20-30 us, measured by bench/) only to find no cookie; and the
    token secret should sign nothing else. `flask.session` is an empty
    NullSession that refuses writes.
    """

    def open_session(self, app, request):
        return None

    def save_session(self, app, session, response):
        return None


def _keyring(app):
    secret = app.config["SECRET_KEY"]
    if not secret:
        # Only reachable outside production (validate() refuses it there).
        log.warning("SECRET_KEY is not set: using a random key; tokens die with this process")
        secret = secrets.token_urlsafe(48)
    return keys.build_ring(app.config, secret)  # ConfigError if a key file is unusable


def reload_keys(app):
    """Read the key files again (serving/worker.py, in every new worker: kill -HUP after `keys rotate`).

    `python -m serving` builds the app once, in the master, and every worker,
    HUP's included, is forked from that loaded app: without this they would
    keep the ring of the first start. HS256 rings come from settings alone, which a HUP
    does not re-read, and a random development secret must stay the same in
    every worker, so only file-backed rings are rebuilt. Unusable files leave
    the current ring in place and log one line: a bad rotation must not stop
    the workers from starting.
    """
    config = app.config
    if not config["SECRET_KEY"] or (config["JWT_ALGORITHM"] == "HS256"
                                     and not config["JWT_VERIFY_KEYS_DIR"]):
        return
    try:
        app.extensions["keyring"] = _keyring(app)
    except settings.ConfigError as exc:
        log.error("keys not reloaded (%s); still signing with kid %s",
                  exc, app.extensions["keyring"].signing.kid)


if __name__ == "__main__":
    try:
        application = create_app()
        address = settings.bind_address(application.config["SERVER_BIND"])
        if not isinstance(address, tuple):
            raise settings.ConfigError("`python app.py` serves HOST:PORT only; "
                                       "use `python -m serving` for a unix socket")
        host, port = address
        settings.refuse_busy_address(host, port)
    except settings.ConfigError as exc:
        sys.exit(f"error: {exc}")
    application.run(host=host, port=port)
