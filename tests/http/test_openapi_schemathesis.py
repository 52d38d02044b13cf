"""schemathesis against a live gunicorn server, authenticated, on a database of its own.

Every operation in openapi.yaml gets a fixed number of generated requests,
valid and invalid (derandomized: the same ones every run). Checks: no 5xx,
every status is documented, every response body matches its schema, and an
operation that declares security answers 401 without a token and with a bad one.

The fuzzer logs out, renames and deletes its own account along the way, so it
has its own server and database (not the shared live_server), and its token
provider logs in again (registering a new account when the old one is gone)
whenever its token stops working.

(schemathesis' own pytest plugin does not run under pytest 9, so each
operation is a plain parametrized test driving Hypothesis with the operation's
strategy.)
"""
import itertools
import re

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.auths import AuthStorage
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    ignored_auth, response_schema_conformance, status_code_conformance,
)

from support import ROOT, bearer, start_live_server, stop_live_server

MAX_EXAMPLES = 20  # per operation and mode
PASSWORD = "fuzzing-passphrase-1"
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, ignored_auth]

SCHEMA = schemathesis.openapi.from_path(str(ROOT / "openapi.yaml"))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
LABELS = [operation.label for operation in OPERATIONS]
SECURITY_HEADERS = {"authorization", "x-access-tokens"}


def _negatable(operation):
    """True if the operation has an input that invalid data can be generated for."""
    headers = [h for h in operation.headers if h.name.lower() not in SECURITY_HEADERS]
    return bool(list(operation.path_parameters) or list(operation.query)
                or list(operation.body) or headers)


# Every operation with valid data; those that take input with invalid data too.
CASES = [(operation.label, GenerationMode.POSITIVE) for operation in OPERATIONS] + [
    (operation.label, GenerationMode.NEGATIVE) for operation in OPERATIONS if _negatable(operation)
]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    server = start_live_server(tmp_path_factory.mktemp("fuzz"))
    yield server
    stop_live_server(server)


class FuzzerAccount:
    """A throwaway account and a token that works: checked before each case, renewed when not."""

    def __init__(self, base_url):
        self.base_url = base_url
        self.names = (f"fuzzer{n}" for n in itertools.count(1))
        self.username = next(self.names)
        self.token = None

    def valid_token(self):
        if self.token and self._works(self.token):
            return self.token
        for _ in range(5):
            response = requests.post(f"{self.base_url}/auth", timeout=10,
                                     json={"username": self.username, "password": PASSWORD})
            if response.status_code == 200:
                self.token = response.json()["access_token"]
                return self.token
            # Renamed or deleted by an earlier case: start again under a new name.
            self.username = next(self.names)
            requests.post(f"{self.base_url}/register", timeout=10,
                          json={"username": self.username, "password": PASSWORD})
        raise AssertionError(f"the fuzzer cannot log in: {response.status_code} {response.text}")

    def _works(self, token):
        response = requests.get(f"{self.base_url}/rest-auth", timeout=10,
                                headers={"Authorization": f"Bearer {token}"})
        return response.status_code == 200


@pytest.fixture(scope="module")
def fuzz_auth(fuzz_server):
    account = FuzzerAccount(fuzz_server.url)

    class Token:
        def get(self, case, context):
            return account.valid_token()

        def set(self, case, data, context):
            case.headers = case.headers or {}
            case.headers["Authorization"] = f"Bearer {data}"

    storage = AuthStorage()
    storage(refresh_interval=None)(Token)  # no caching: Token checks its own
    return storage


@pytest.mark.live
@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{label} {mode.value}" for label, mode in CASES])
def test_operation_conforms(label, mode, fuzz_server, fuzz_auth):
    operation = SCHEMA.find_operation_by_label(label)

    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, auth_storage=fuzz_auth))
    def run(case):
        case.call_and_validate(base_url=fuzz_server.url, checks=CHECKS, timeout=15)

    run()


def test_every_operation_is_fuzzed(app):
    from test_openapi import flask_operations
    assert len(LABELS) == len(flask_operations(app))


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/users/4294967296", "/authors/4294967296",
                                  "/users/4294967296/posts/1", "/users/1/posts/9999999999"])
def test_id_beyond_int_unsigned_is_404_for_every_method(client, method, path):
    """Found by schemathesis: these were 405 (the converter refused after the path matched)."""
    response = client.open(path, method=method)
    assert response.status_code == 404
    assert response.get_json()["status_code"] == 404


@pytest.mark.live
def test_the_auth_check_has_teeth(fuzz_server, fuzz_auth):
    """A route that declares security but lets anyone in must fail ignored_auth."""
    from rest import openapi as spec
    document = spec.load_spec()
    document["paths"]["/public"]["get"]["security"] = [{"Bearer": []}]
    operation = schemathesis.openapi.from_dict(document).find_operation_by_label("GET /public")

    @settings(max_examples=1, derandomize=True, deadline=None, database=None)
    @given(case=operation.as_strategy(auth_storage=fuzz_auth))
    def run(case):
        case.call_and_validate(base_url=fuzz_server.url, checks=[ignored_auth], timeout=15)

    with pytest.raises(BaseExceptionGroup) as caught:
        run()
    failures = caught.value.exceptions
    assert [type(f).__name__ for f in failures] == ["IgnoredAuth"]


@pytest.mark.parametrize("if_match", ['""', '"", W/""', '"", "zz-v1"'])
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_empty_etag_in_if_match_is_412_not_500(client, make_user, login, method, if_match):
    """Found by schemathesis: `If-Match: ""` (Werkzeug parses the empty tag as None) was a 500."""
    user = make_user("carol", "carol-old-password")
    headers = bearer(login("carol", "carol-old-password"))
    author = client.post("/authors", json={"name": "n", "book": "b", "country": "c"}, headers=headers)
    post = client.post(f"/users/{user['id']}/posts", json={"title": "t", "body": "b"}, headers=headers)
    for path, body in ((f"/authors/{author.get_json()['id']}", {"name": "n", "book": "b", "country": "c"}),
                       (f"/users/{user['id']}/posts/{post.get_json()['id']}", {"title": "t", "body": "b"})):
        response = client.open(path, method=method, headers={**headers, "If-Match": if_match},
                               json=None if method == "DELETE" else body)
        assert response.status_code == 412, (path, response.get_json())
        assert response.get_json()["status_code"] == 412


SECURED = [(operation.method.upper(), operation.path) for operation in OPERATIONS
           if operation.definition.raw.get("security") and {} not in operation.definition.raw["security"]]


@pytest.mark.live
@pytest.mark.parametrize(("method", "path"), SECURED, ids=[f"{m} {p}" for m, p in SECURED])
def test_every_secured_operation_is_401_without_a_token(live_server, method, path):
    """Exactly 401 with the JSON error and a challenge, before any input is read."""
    url = live_server.url + re.sub(r"\{[^}]+\}", "1", path).replace("/sessions/1", "/sessions/" + "a" * 32)
    response = requests.request(method, url, json={}, timeout=10)
    assert response.status_code == 401, response.text
    assert response.json()["status_code"] == 401
    assert "WWW-Authenticate" in response.headers


def test_secured_operations_are_found():
    assert len(SECURED) >= 24  # every route but login, registration, pages and operations
