"""app.CompactJSON: Flask's JSON output, byte for byte, from one reused encoder; its parsing of bodies."""
import json
import time
from datetime import datetime, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from flask import request
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


# --- parsing: every request body goes through app.json.loads (rest/json_body.py) ----------

def test_bodies_parse_as_json_loads_reads_them(app):
    for text in ('{"b": 1, "a": [1, "é", null, true]}', "[]", '"\\ud83d\\ude00"', "-0", "1.5e300"):
        assert app.json.loads(text) == json.loads(text)
        assert app.json.loads(text.encode()) == json.loads(text)


def test_the_depth_cap_is_32_arrays_and_objects_together(app):
    from rest.json_body import MAX_DEPTH, RefusedJSON
    assert MAX_DEPTH == 32
    mixed = '[{"a":' * 16 + "1" + "}]" * 16  # 32 levels
    assert app.json.loads(mixed) is not None
    for deeper in ("[" + mixed + "]", "[" * 33 + "]" * 33, "[" * 33):
        with pytest.raises(RefusedJSON, match="JSON nested deeper than 32 levels."):
            app.json.loads(deeper)


def test_the_depth_scan_skips_strings_and_their_escapes(app):
    text = json.dumps(["[" * 40, '\\"[[[[', "{" * 40, "]" * 40])
    assert app.json.loads(text)[0] == "[" * 40


def test_a_refusal_is_a_valueerror_so_a_silent_parse_is_none(app):
    """get_json() catches ValueError: silent callers (the rate limiter's key) see None, not a 500."""
    from rest.json_body import RefusedJSON
    assert issubclass(RefusedJSON, ValueError)
    for body in (b"[" * 30000, b'{"a": "\\ud800"}', b'{"a": NaN}'):
        with app.test_request_context("/auth", method="POST", data=body, content_type="application/json"):
            assert request.get_json(silent=True) is None


def test_strict_decoding_of_bytes(app):
    from rest.json_body import RefusedJSON
    for body in (b'"\xed\xa0\x80"', b'"\xff"', b'"\xc0\xaf"'):
        with pytest.raises(RefusedJSON, match="not valid UTF-8"):
            app.json.loads(body)
    assert app.json.loads('"é"'.encode("utf-16")) == "é"  # json's own encoding detection is kept


def test_a_duplicate_key_keeps_the_last_value(app):
    assert app.json.loads('{"a": 1, "a": 2}') == {"a": 2}


def _depth_by_hand(text):
    """The deepest nesting of `text`, one character at a time (the reference for the fast scan)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(st.integers(0, 40), st.text(st.sampled_from('[]{}"\\a'), max_size=80))
@example(30, '"[[[')  # an unterminated string: its brackets nest nothing
@example(30, '"\\"[[[')
@example(31, '"\\\\"[[')  # an escaped backslash, then the string ends
def test_the_depth_scan_agrees_with_a_scan_by_hand(opened, text):
    from rest import json_body
    text = "[" * opened + text  # near the cap, where a wrong count changes the answer
    assert json_body._too_deep(text) == (_depth_by_hand(text) > json_body.MAX_DEPTH)


@pytest.mark.parametrize("tail", ['\\"' * 32000, '"' * 64000, "\\" * 64000, '"\\' * 32000, "[" * 64000])
def test_the_depth_scan_is_linear_on_hostile_text(app, tail):
    """A 64 KB body of escaped quotes took 33 s of CPU when a failed string match rescanned the rest."""
    from rest.json_body import RefusedJSON
    started = time.perf_counter()
    with pytest.raises(ValueError) as refused:
        app.json.loads("[" * 40 + '"' + tail)
    assert time.perf_counter() - started < 2.0
    assert isinstance(refused.value, RefusedJSON)
