"""The auth domain: users, passwords, tokens, keys, sessions, revocation, throttling, the cache.

Called alike by the HTTP layer (rest/), the CLI and the tests. It may import
db, config, flask.current_app (settings and per-app state), the standard
library and third-party libraries; it never imports flask.request, rest or
werkzeug.exceptions, and never names an HTTP status. What goes wrong is
raised as an accounts.errors exception; rest/errors.py alone maps those to
statuses. Each table has one owning module here, which holds its SQL.
"""
