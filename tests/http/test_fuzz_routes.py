"""Hostile input on every route: never a 5xx, and every error in the one JSON shape.

The routes come from the app's own url_map, so a new route is fuzzed without
touching this file. Each (method, route) gets a fixed number of generated
requests (Hypothesis, derandomized: the same ones every run), sent with a
valid bearer token or without one: a JSON body (or, less often, a form or a
body of no declared type), a query string, and sometimes hostile headers
(Authorization, If-Match, DPoP, X-Request-ID...). The JSON is built as text, so
that it can hold what json.dumps never writes: lone surrogate escapes
("\\ud800"), nesting past the cap and far past it ([ x 30,000), NaN and
Infinity literals, 1e400, -0, integers of thousands of digits, duplicate keys.
Objects are mostly made of the field names openapi.yaml documents, so bodies
get past the unknown-field check to the code behind it. Query strings carry
percent-encoded surrogates and invalid UTF-8.

In-process (Flask's test client, the test database): the whole file runs in
well under a minute (docs/security.md, "Request input").
"""
import json
import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import app as app_module
from rest import openapi as spec
from support import app_config, bearer

# Hypothesis warns when it prints a drawn 30,000-'[' body: they are big on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

PASSWORD = "fuzzing-passphrase-1"
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
EXAMPLES = {True: 30, False: 10}  # per route: with a body / without


def _routes():
    application = app_module.create_app(app_config("fuzz_routes_not_connected"), env={})
    return sorted((method, rule.rule) for rule in application.url_map.iter_rules()
                  for method in rule.methods - {"HEAD", "OPTIONS"})


ROUTES = _routes()


def _field_names(node, found):
    """Every property name openapi.yaml gives any schema."""
    if isinstance(node, dict):
        found.update(node.get("properties") or {})
        for value in node.values():
            _field_names(value, found)
    elif isinstance(node, list):
        for value in node:
            _field_names(value, found)
    return found


FIELDS = sorted(_field_names(spec.load_spec(), set()))
QUERY_NAMES = ["token", "user_id", "limit", "cursor", "kind", "access_token", "email", "username"]

# --- JSON as text -----------------------------------------------------------------------

ESCAPES = st.sampled_from(["\\ud800", "\\udfff", "\\udc00", "\\ud83d", "\\ud83d\\ude00",
                           "\\u0000", "\\\\", '\\"', "\\n", "\\u2028"])


def _literal(parts):
    return '"' + "".join(parts) + '"'


STRINGS = st.one_of(
    st.lists(st.one_of(st.text(max_size=12).map(lambda t: json.dumps(t)[1:-1]), ESCAPES),
             max_size=4).map(_literal),
    st.sampled_from(["alice", "", " ", "correct-horse-battery", "a" * 300, "é" * 5000,
                     "x" * 70000, "[[[[{{{{", "' OR 1=1 --"]).map(json.dumps),
)
NUMBERS = st.one_of(
    st.sampled_from(["1e400", "-1e400", "1e-400", "-0", "-0.0", "0", "-1", "1.5", "NaN", "Infinity",
                     "-Infinity", "4294967295", "4294967296", "9223372036854775808",
                     "1" + "0" * 40, "9" * 5000, "1E+2", "01"]),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
)
SCALARS = st.one_of(STRINGS, NUMBERS, st.sampled_from(["true", "false", "null"]))
DEEP = st.one_of(
    st.sampled_from(["[" * 30000, '{"a":' * 30000, "[" * 1000 + "]" * 1000, '[{"a":' * 600 + "1" + "}]" * 600]),
    st.integers(30, 34).map(lambda n: "[" * n + "]" * n),
    st.integers(30, 34).map(lambda n: '{"a":' * n + "1" + "}" * n),
)
KEYS = st.one_of(st.sampled_from(FIELDS).map(json.dumps), STRINGS)


def _object(pairs):
    return "{" + ",".join(f"{key}:{value}" for key, value in pairs) + "}"


VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        st.lists(st.tuples(KEYS, children), max_size=4).map(_object),
    ),
    max_leaves=8,
)
# Mostly objects of the API's field names (a name may come twice: a duplicate key).
OBJECTS = st.lists(st.tuples(KEYS, st.one_of(VALUES, DEEP)), max_size=6).map(_object)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=10,
).map(json.dumps)
JSON_BODIES = st.one_of(OBJECTS, OBJECTS, OBJECTS, VALUES, DEEP, DEEP, ANY_JSON,
                        st.sampled_from(["", "{", "{}", "[]", "\ufeff{}", '{"a":1}x']))
RAW_BYTES = st.one_of(st.binary(max_size=64), st.sampled_from([b'{"username":"\xed\xa0\x80"}', b"\xff\xfe{}"]))

# --- query strings and forms --------------------------------------------------------------

PERCENT = st.sampled_from(["%ED%A0%80", "%FF", "%00", "%C0%AF", "%F0%9F%98%80", "%", "%zz", "+"])
QUERY_VALUES = st.lists(st.one_of(st.text(max_size=10).map(quote), PERCENT), max_size=3).map("".join)
QUERIES = st.lists(st.tuples(st.sampled_from(QUERY_NAMES + FIELDS[:5]), QUERY_VALUES), max_size=3).map(
    lambda pairs: "?" + "&".join(f"{name}={value}" for name, value in pairs) if pairs else "")
FORMS = st.lists(st.tuples(st.sampled_from(["username", "password", "otp", "token", "token_type_hint"]),
                           QUERY_VALUES), max_size=4).map(
    lambda pairs: "&".join(f"{name}={value}" for name, value in pairs).encode("latin-1"))


# What a server can hand over in a header: latin-1 text, no line breaks.
HEADER_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40),
    st.sampled_from(["Bearer", "Bearer ", "Bearer a.b.c", "Bearer \xed\xa0\x80", "JWT x y", "Basic %%%",
                     "Basic " + "A" * 3000, '""', '"", W/""', "*", "x" * 5000]),
)
HEADERS = st.dictionaries(
    st.sampled_from(["Authorization", "x-access-tokens", "DPoP", "If-Match", "X-Request-ID", "Origin",
                     "Access-Control-Request-Method", "X-Forwarded-For", "Accept"]),
    HEADER_VALUES, max_size=2)


@st.composite
def requests_for(draw, method):
    """(body bytes, content type or None, query string, headers, with a token?) for one request.

    With a token, the drawn headers may replace it (a hostile Authorization).
    """
    query = draw(QUERIES)
    authed = draw(st.booleans())
    headers = draw(st.one_of(st.just({}), st.just({}), HEADERS))
    if method not in BODY_METHODS:
        return b"", None, query, headers, authed
    kind = draw(st.sampled_from(["json"] * 6 + ["form", "raw"]))
    if kind == "json":
        return draw(JSON_BODIES).encode("utf-8", "surrogatepass"), "application/json", query, headers, authed
    if kind == "form":
        return draw(FORMS), "application/x-www-form-urlencoded", query, headers, authed
    content_type = draw(st.sampled_from([None, "application/json", "text/plain"]))
    return draw(RAW_BYTES), content_type, query, headers, authed


# --- the account whose token the authenticated requests carry ------------------------------

class Account:
    """A user and a working token; replaced when a request logged it out, renamed or deleted it."""

    def __init__(self, client, make_user):
        self.client, self.make_user, self.made = client, make_user, 0
        self._new()

    def _new(self):
        self.made += 1
        user = self.make_user(f"fuzzer{self.made}", PASSWORD)
        response = self.client.post("/auth", json={"username": user["username"], "password": PASSWORD})
        assert response.status_code == 200, response.get_json()
        self.id, self.headers = user["id"], bearer(response.get_json()["access_token"])

    def headers_after(self, response):
        """The headers for the next request, checking the token when `response` was a 401."""
        if response.status_code == 401 and self.client.get("/rest-auth", headers=self.headers).status_code != 200:
            self._new()
        return self.headers


def _path(rule, account):
    """The rule with its parameters filled in: the account's own id for user ids, else 1 or 'x'."""
    def value(match):
        converter, name = match.group(1), match.group(2)
        if name in ("uid", "user_id"):
            return str(account.id)
        return "1" if converter == "id" else "x" * (32 if name == "session_id" else 1)
    return re.sub(r"<(?:([^:<>]+):)?([^<>]+)>", value, rule)


def assert_contract(response, what):
    """No 5xx; a 4xx is the JSON error shape with its own status."""
    assert response.status_code < 500, (what, response.status_code, response.get_data()[:300])
    if response.status_code >= 400:
        body = response.get_json(silent=True)
        assert isinstance(body, dict), (what, response.status_code, response.get_data()[:300])
        assert body.get("status_code") == response.status_code, (what, body)
        assert isinstance(body.get("error"), str) and isinstance(body.get("description"), str), (what, body)
        assert "Traceback" not in response.get_data(as_text=True), what


@pytest.mark.parametrize(("method", "rule"), ROUTES, ids=[f"{m} {r}" for m, r in ROUTES])
def test_no_input_reaches_a_5xx(client, make_user, method, rule):
    account = Account(client, make_user)
    last = [None]

    @settings(max_examples=EXAMPLES[method in BODY_METHODS], derandomize=True, deadline=None,
              database=None, suppress_health_check=list(HealthCheck))
    @given(request=requests_for(method))
    def run(request):
        body, content_type, query, drawn, authed = request
        headers = {}
        if authed:
            headers = dict(account.headers_after(last[0]) if last[0] is not None else account.headers)
        headers.update(drawn)
        if content_type:
            headers["Content-Type"] = content_type
        path = _path(rule, account) + query
        response = client.open(path, method=method, data=body, headers=headers)
        assert_contract(response, (method, path, body[:200], content_type, drawn, authed))
        last[0] = response if authed else last[0]

    run()


def test_every_route_is_fuzzed():
    """The url_map is read, not a list kept by hand: the API's routes are all there."""
    assert ("POST", "/auth") in ROUTES and ("PATCH", "/users/<id:user_id>") in ROUTES
    assert len(ROUTES) >= 70
    assert len([route for route in ROUTES if route[0] in BODY_METHODS]) >= 40
