"""The Postman collection: newman runs it green against a live gunicorn on freshly seeded data.

The collection registers, renames and deletes accounts, so newman gets a
server and database of its own (not the shared live_server).
"""
import json
import re
import subprocess

import pytest

from support import ROOT, require_tool, start_live_server, stop_live_server
from rest import openapi as spec

POSTMAN = ROOT / "postman"
COLLECTION = POSTMAN / "jwt-api.postman_collection.json"
ENVIRONMENT = POSTMAN / "local.postman_environment.json"
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
METHODS = {"get", "put", "post", "delete", "patch"}


def _requests(items):
    for item in items:
        if "item" in item:
            yield from _requests(item["item"])
        else:
            yield item


@pytest.fixture(scope="module")
def collection():
    return json.loads(COLLECTION.read_text())


def _covered(collection):
    """{(METHOD, path pattern)} the collection calls; {{var}} segments match any value."""
    covered = set()
    for item in _requests(collection["item"]):
        request = item["request"]
        path = "/" + "/".join(request["url"]["path"])
        covered.add((request["method"], path))
    return covered


def _matches(template, path):
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    concrete = re.sub(r"\{\{[^}]+\}\}", "1", path)
    return re.fullmatch(pattern, concrete) is not None


def test_collection_calls_every_documented_operation(collection):
    document = spec.load_spec()
    covered = _covered(collection)
    missing = [
        f"{method.upper()} {template}"
        for template, item in document["paths"].items()
        for method in item if method in METHODS
        if not any(m == method.upper() and _matches(template, p) for m, p in covered)
    ]
    assert not missing, f"operations with no request in the Postman collection: {missing}"


def test_every_request_has_tests(collection):
    for item in _requests(collection["item"]):
        scripts = [e for e in item.get("event", []) if e["listen"] == "test"]
        text = "\n".join(line for e in scripts for line in e["script"]["exec"])
        assert "pm.test(" in text, item["name"]
        assert "pm.response" in text, item["name"]


def test_core_flow_comes_first(collection):
    first = list(_requests(collection["item"][0]["item"]))
    assert [(i["request"]["method"], "/" + "/".join(i["request"]["url"]["path"])) for i in first[:3]] == [
        ("POST", "/auth"), ("GET", "/rest-auth"), ("GET", "/rest-auth")]
    headers = {h["key"]: h["value"] for h in first[1]["request"]["header"]}
    assert headers == {"Authorization": "JWT {{token}}"}
    assert not any(h["key"] == "Authorization" for h in first[2]["request"]["header"])


def test_environment_has_no_secret_but_the_demo_ones():
    environment = json.loads(ENVIRONMENT.read_text())
    values = {v["key"]: v["value"] for v in environment["values"]}
    assert values == {"baseUrl": "http://127.0.0.1:5000", "username": "roy", "password": "roy"}


@pytest.fixture(scope="module")
def newman_server(tmp_path_factory):
    server = start_live_server(tmp_path_factory.mktemp("newman"))
    yield server
    stop_live_server(server)


@pytest.mark.live
def test_newman_runs_the_collection_green(newman_server, tmp_path):
    newman = require_tool(str(NEWMAN), "running the Postman collection (npm ci)")
    report = tmp_path / "newman.json"
    result = subprocess.run(
        [newman, "run", str(COLLECTION), "--environment", str(ENVIRONMENT),
         "--env-var", f"baseUrl={newman_server.url}", "--bail", "--color", "off",
         "--reporters", "cli,json", "--reporter-json-export", str(report),
         "--timeout-request", "15000"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    run = json.loads(report.read_text())["run"]
    assert run["stats"]["assertions"]["failed"] == 0
    assert run["stats"]["requests"]["total"] == len(list(_requests(json.loads(COLLECTION.read_text())["item"])))
    assert run["stats"]["assertions"]["total"] >= 160
