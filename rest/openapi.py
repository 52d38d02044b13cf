"""GET /openapi.json: the API's OpenAPI 3.1 document (openapi.yaml, kept in the repo)."""
import json
from pathlib import Path

import yaml
from flask import Blueprint, current_app

bp = Blueprint("openapi", __name__)

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"


def load_spec():
    """Return openapi.yaml as a dict (YAML anchors resolved)."""
    with SPEC_PATH.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI document as JSON; parsed once per process."""
    body = current_app.extensions.get("openapi_json")
    if body is None:
        body = json.dumps(load_spec(), ensure_ascii=False).encode()
        current_app.extensions["openapi_json"] = body
    response = current_app.response_class(body, mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
