"""One request of the service's WSGI app, called in this process: no server, no sockets.

Shared by bench/hot_path.py (--cprofile) and bench/instructions.py. It imports
nothing of the service, so bench/instructions.py can load another checkout's
app beside it.
"""
import io

from werkzeug.test import EnvironBuilder


def caller(application, path, token):
    """(once, statuses): once() serves one GET `path` with the token; statuses collects every status."""
    template = EnvironBuilder(path=path, headers={"Authorization": f"Bearer {token}",
                                                  "Host": "127.0.0.1"}).get_environ()
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def once():
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(b"")
        b"".join(application(environ, start_response))

    return once, statuses
