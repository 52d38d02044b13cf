"""The README's shell blocks, run as written against a live server and the real MariaDB.

Only what names this machine changes: the server URL (`BASE=`), the mysql
client's host and port and the database name `jwt_api` (the test's own
database), and the password a prompt would ask for (stdin). Every block is
found by the words that open it, so a README edit that drops one fails here.
"""
import json
import os
import re
import subprocess

import pytest

from support import ROOT, require_tool, server_config, start_live_server, stop_live_server

pytestmark = pytest.mark.live


def _blocks():
    return re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def _block(first_words):
    found = [block for block in _blocks() if block.startswith(first_words)]
    assert len(found) == 1, f"README has no single ```sh block starting with {first_words!r}"
    return found[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_live_server(tmp_path_factory.mktemp("readme"))
    yield server
    stop_live_server(server)


def _bash(script, **kwargs):
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, **kwargs)


def test_the_curl_walk_through(server):
    block = _block("BASE=http://127.0.0.1:5000\n")
    result = _bash(block.replace("BASE=http://127.0.0.1:5000", f"BASE={server.url}", 1))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The outputs the README shows, in its order.
    documented = re.search(r"^# (\{\"message\".*\})$", block, re.M).group(1)
    assert lines[0] == documented
    assert lines[1] == "HTTP/1.1 401 Unauthorized"
    # HTTP field names are case-insensitive; granian (hyper) writes them in lower case.
    assert any(line.lower().startswith("www-authenticate: jwt") for line in lines)
    bodies = [json.loads(line) for line in lines if line.startswith("{")]
    assert bodies[1]["status_code"] == 401
    assert [post["title"] for post in bodies[2]["posts"]] == ["Tokens, properly", "Hello from roy"]
    assert bodies[3]["title"] == "Hi" and bodies[3]["user"]["username"] == "roy"
    assert {"access_token", "refresh_token"} <= set(bodies[4])
    assert lines[-2] == "204"  # logout
    assert bodies[-1]["status_code"] == 401  # revoked


def _mysql_command(config):
    return f"mysql -h {config['DB_HOST']} -P {config['DB_PORT']} -u {config['DB_USER']}" + (
        f" -p{config['DB_PASSWORD']}" if config["DB_PASSWORD"] else "")


def test_the_mysql_cli_recipe(server):
    require_tool("mysql", "the README's mysql CLI recipe")
    block = _block("mysql -u root -e 'CREATE DATABASE")
    script = block.replace("mysql -u root", _mysql_command(server_config())).replace(
        "jwt_api", server.database)
    # Twice: every statement is idempotent or refuses nothing on a seeded database.
    first = _bash(script)
    assert first.returncode == 0, first.stderr
    import urllib.request
    request = urllib.request.Request(server.url + "/auth", method="POST",
                                     data=json.dumps({"username": "reader", "password": "roy"}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200 and "access_token" in json.loads(response.read())


def _dotenv_values(tmp_path):
    for name in ("Makefile", ".env.example"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    subprocess.run(["make", "-s", ".env"], cwd=tmp_path, check=True, capture_output=True, timeout=30)
    return dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines()
                if line and not line.startswith("#") and "=" in line)


def test_the_venv_flask_commands(server, tmp_path):
    """`.venv/bin/flask ...` with the .env `make run` writes (FLASK_APP=app from it, no --app)."""
    block = _block(".venv/bin/flask hash-password")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "DB_", "APP_ENV"))}
    env.update(_dotenv_values(tmp_path))
    env.update({k: str(v) for k, v in server_config(server.database).items()})
    env["PYTHON_DOTENV_DISABLED"] = "1"  # the values above are the .env; a developer's own stays out
    outputs = []
    for line in block.splitlines():
        command = line.split("#")[0].strip()
        result = _bash(command, env=env, input="carol-long-password\n")
        assert result.returncode == 0, (command, result.stderr)
        assert "Traceback" not in result.stderr
        outputs.append(result.stdout.strip())
    assert outputs[0].startswith("$argon2id$")
    assert outputs[1] == "created user carol"


@pytest.mark.parametrize("app_env, demo", [("development", True), ("production", False)])
def test_the_server_says_where_it_answers_and_in_development_how_to_log_in(tmp_path, app_env, demo):
    """`make run` ends with the server's start: the URL, the docs URL, and the demo logins in development."""
    server = start_live_server(tmp_path, APP_ENV=app_env)
    try:
        # Every line the server writes is one JSON object; the message is its "msg".
        lines = [json.loads(line)["msg"] for line in server.log().splitlines() if line.startswith("{")]
    finally:
        stop_live_server(server)
    assert f"serving {server.url}/  (API docs: {server.url}/docs)" in lines
    logins = ("demo logins (sql/seed.sql, development only): roy / roy, "
              "alice / alice-demo-password, admin / admin-demo-password")
    assert (logins in lines) is demo
