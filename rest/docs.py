"""GET /docs: interactive API documentation (Swagger UI) for /openapi.json.

Swagger UI's files come from the flask-swagger-ui package (its `dist/`
folder: pip brings them, no CDN and nothing vendored by hand); only the three
the page loads are served. Its own blueprint is not used: its page starts
Swagger UI from an inline script, which the page Content-Security-Policy
(script-src 'self') refuses; static/docs.js does it instead.
"""
from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, abort, render_template, send_from_directory

bp = Blueprint("docs", __name__)

SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})
ASSET_MAX_AGE = 24 * 3600  # the files change only with the package version


@bp.get("/docs")
def docs_page():
    """The Swagger UI page; static/docs.js points it at /openapi.json."""
    return render_template("docs.html")


@bp.get("/docs/assets/<name>")
def docs_asset(name):
    """One of Swagger UI's files; 404 for any other name."""
    if name not in ASSETS:
        abort(404)
    return send_from_directory(SWAGGER_UI_DIST, name, max_age=ASSET_MAX_AGE)
