"""openapi.yaml: a valid OpenAPI 3.1 document listing exactly the routes Flask knows."""
import re

import pytest
from openapi_spec_validator import validate

from rest import openapi as spec

IGNORED_METHODS = {"HEAD", "OPTIONS"}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
ERROR_STATUSES = re.compile(r"^[45]\d\d$")


@pytest.fixture(scope="module")
def document():
    return spec.load_spec()


def _openapi_path(rule):
    # Flask's /users/<id:uid>/posts is OpenAPI's /users/{uid}/posts.
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def flask_operations(app):
    """{(METHOD, openapi path)} for every route except static files."""
    return {
        (method, _openapi_path(rule.rule))
        for rule in app.url_map.iter_rules() if rule.endpoint != "static"
        for method in rule.methods - IGNORED_METHODS
    }


def spec_operations(document):
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item if method in METHODS
    }


def _operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def test_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_flask_route_is_documented(app, document):
    missing = flask_operations(app) - spec_operations(document)
    assert not missing, f"routes missing from openapi.yaml: {sorted(missing)}"


def test_every_documented_operation_exists(app, document):
    extra = spec_operations(document) - flask_operations(app)
    assert not extra, f"openapi.yaml documents routes Flask does not have: {sorted(extra)}"


def test_security_schemes(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["JWT"] == {**schemes["JWT"], "type": "apiKey", "in": "header", "name": "Authorization"}
    assert schemes["Bearer"]["type"] == "http" and schemes["Bearer"]["scheme"] == "bearer"
    assert schemes["x-access-tokens"] == {
        **schemes["x-access-tokens"], "type": "apiKey", "in": "header", "name": "x-access-tokens"}


def test_every_error_response_uses_the_error_schema(document):
    resolved = document["components"]["responses"]
    for label, operation in _operations(document):
        for status, response in operation["responses"].items():
            if not ERROR_STATUSES.match(status):
                continue
            if "$ref" in response:
                response = resolved[response["$ref"].rsplit("/", 1)[1]]
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, f"{label} {status}"


def test_protected_operations_declare_401_and_every_scheme(document):
    for label, operation in _operations(document):
        security = operation.get("security", [])
        if not security or {} in security:
            continue
        assert security == [{"JWT": []}, {"Bearer": []}, {"x-access-tokens": []}], label
        assert "401" in operation["responses"], label


def test_operations_have_unique_ids_and_a_summary(document):
    ids = [operation["operationId"] for _, operation in _operations(document)]
    assert len(ids) == len(set(ids))
    assert all(operation.get("summary") for _, operation in _operations(document))


def test_served_at_openapi_json(client, document):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == document
