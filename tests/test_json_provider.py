"""app.CompactJSON: Flask's JSON output, byte for byte, from one reused encoder."""
import json
from datetime import datetime, timezone

from flask.json.provider import DefaultJSONProvider

import app as app_module

VALUES = [
    {"b": 1, "a": [1, "é", None, True], "c": {"z": 2.5}},
    {"when": datetime(2026, 11, 23, tzinfo=timezone.utc)},
    [],
    "\u2028 <script>",
]


def test_compact_output_is_flasks_with_keys_in_written_order(app):
    flask_provider = DefaultJSONProvider(app)
    flask_provider.sort_keys = False
    for value in VALUES:
        for kwargs in ({"separators": (",", ":")}, {}, {"indent": 2}):
            assert app.json.dumps(value, **kwargs) == flask_provider.dumps(value, **kwargs)


def test_responses_keep_the_order_the_view_wrote(client):
    response = client.get("/healthz")
    assert response.data == b'{"status":"ok"}\n'
    assert list(json.loads(client.get("/no-such-page").data)) == ["status_code", "error", "description"]


def test_the_compact_encoder_is_built_once(app, monkeypatch):
    built = []
    real = json.JSONEncoder.__init__
    monkeypatch.setattr(json.JSONEncoder, "__init__",
                        lambda self, *a, **k: built.append(1) or real(self, *a, **k))
    with app.app_context():
        for _ in range(3):
            app.json.response({"a": 1})
    assert built == []
    assert isinstance(app.json, app_module.CompactJSON)
