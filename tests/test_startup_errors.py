"""The mistakes a newcomer makes on the way to a running server: each is one `error:` line saying
how to fix it, never a traceback. Run with the real commands `make run` runs (its recipe is checked).
"""
import os
import socket
import subprocess

import pytest

from support import ROOT, server_config

pytestmark = pytest.mark.live

FLASK = str(ROOT / ".venv" / "bin" / "flask")
PYTHON = str(ROOT / ".venv" / "bin" / "python")
STRONG = "k" * 48
MFA_KEY = "m" * 43 + "="  # production requires one (a well-formed Fernet key)


def _env(**settings):
    """The environment without any of our settings (nor a .env), plus `settings`."""
    documented = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#") and "=" in line}
    env = {k: v for k, v in os.environ.items() if k not in documented and not k.startswith("FLASK_")}
    env.update({"PYTHON_DOTENV_DISABLED": "1", "FLASK_APP": "app", "APP_ENV": "development",
                "SECRET_KEY": STRONG, "MFA_ENCRYPTION_KEY": MFA_KEY})
    env.update({k: str(v) for k, v in server_config("jwt_api_never_created").items()})
    env.update(settings)
    return env


def _run(command, **settings):
    return subprocess.run(command, cwd=ROOT, env=_env(**settings), capture_output=True, text=True,
                          timeout=60)


def _the_error(result):
    """The one line of a failed command that starts with `error:`; no traceback anywhere."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_make_run_runs_bootstrap_then_the_server():
    dry = subprocess.run(["make", "-n", "-o", ".env", "-o", ".venv/.deps", "run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    commands = [line for line in dry.stdout.splitlines() if line.startswith(".venv/bin/")]
    assert commands == [".venv/bin/flask --app app bootstrap", ".venv/bin/python -m serving"]


@pytest.mark.parametrize("settings, expected", [
    ({"APP_ENV": "production", "SECRET_KEY": "short"},
     "error: SECRET_KEY is shorter than 32 bytes; generate one with: python -c"),
    ({"DB_PORT": "abc"}, "error: DB_PORT must be an integer, got 'abc'"),
    ({"APP_ENV": "prod"}, "error: APP_ENV must be one of: development, test, production (got 'prod')"),
    ({"SERVER_WORKERS": "zero"}, "error: SERVER_WORKERS must be an integer, got 'zero'"),
])
@pytest.mark.parametrize("command", [[FLASK, "bootstrap"], [PYTHON, "-m", "serving"], [PYTHON, "app.py"]])
def test_bad_settings_stop_bootstrap_and_the_server_in_one_line(command, settings, expected):
    assert _the_error(_run(command, **settings)).startswith(expected)


def test_a_gunicorn_setting_left_in_the_environment_is_named_with_its_new_name():
    line = _the_error(_run([PYTHON, "-m", "serving"], GUNICORN_BIND="0.0.0.0:5000"))
    assert line == ("error: GUNICORN_BIND is no longer read (the server is granian, not gunicorn): "
                    "rename it SERVER_BIND")


def test_wrong_database_credentials_are_not_an_unreachable_server():
    line = _the_error(_run([FLASK, "bootstrap"], DB_PASSWORD="surely-not-the-password"))
    config = server_config()
    assert line.startswith(f"error: the MySQL server at {config['DB_HOST']}:{config['DB_PORT']} "
                           f"refused the credentials of DB_USER='{config['DB_USER']}' (1045 ")
    assert line.endswith("set DB_USER and DB_PASSWORD in .env to an account of that server "
                         "(for the docker compose database: MYSQL_USER and MYSQL_PASSWORD).")
    assert "cannot reach" not in line


def test_an_unreachable_server_says_how_to_start_one():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    line = _the_error(_run([FLASK, "bootstrap"], DB_PORT=str(port), DB_CONNECT_TIMEOUT="1"))
    assert line.startswith(f"error: cannot reach MySQL at 127.0.0.1:{port} (")
    assert "docker compose up -d db" in line and "refused the credentials" not in line


@pytest.mark.parametrize("command", [[PYTHON, "-m", "serving"], [PYTHON, "app.py"]])
def test_a_busy_port_names_server_bind_once(command):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run(command, SERVER_BIND=f"127.0.0.1:{port}")
    line = _the_error(result)
    assert line == (f"error: 127.0.0.1:{port} is in use (Address already in use); stop the server "
                    f"listening there, or set SERVER_BIND to another address, "
                    f"e.g. SERVER_BIND=127.0.0.1:{port + 1}")
    assert "Connection in use" not in result.stderr and "Retrying" not in result.stderr


def test_python_app_py_serves_on_server_bind(tmp_path):
    """The tutorials' `python app.py` answers where the server would: SERVER_BIND, not a fixed 5000."""
    import time
    import urllib.request
    from support import free_port, stop_process
    port = free_port()
    log = tmp_path / "dev-server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([PYTHON, "app.py"], cwd=ROOT, env=_env(SERVER_BIND=f"127.0.0.1:{port}"),
                                   stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
    finally:
        stop_process(process)


@pytest.mark.parametrize("command", [[PYTHON, "-m", "serving"], [PYTHON, "app.py"]])
@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.1:http", "unix:"])
def test_a_bind_that_cannot_be_served_is_explained(command, bind):
    line = _the_error(_run(command, SERVER_BIND=bind))
    assert line == (f"error: SERVER_BIND={bind!r} is neither HOST:PORT (127.0.0.1:5000) "
                    f"nor unix:PATH (unix:/run/jwt-api.sock)")


def test_python_app_py_sends_a_unix_socket_to_the_server():
    line = _the_error(_run([PYTHON, "app.py"], SERVER_BIND="unix:/tmp/jwt-api.sock"))
    assert line == "error: `python app.py` serves HOST:PORT only; use `python -m serving` for a unix socket"


def test_a_production_first_start_says_how_to_make_the_admin_with_the_flask_that_ran():
    """`make run` with APP_ENV=production: no demo data, and the command to copy is the venv's."""
    from support import drop_database
    name = f"test_first_start_{os.getpid()}"
    try:
        result = _run([FLASK, "bootstrap"], APP_ENV="production", DB_NAME=name)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            "database ready (schema loaded; no demo data under APP_ENV=production)",
            f"no users yet: create an admin with `{FLASK} --app app create-user --admin NAME`",
        ]
    finally:
        drop_database(name)
