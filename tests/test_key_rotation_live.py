"""Key rotation as docs/security.md tells it, against a real gunicorn: generate, rotate, kill -HUP.

After the HUP, new tokens are signed by the new key and the JWKS lists it,
while tokens signed before (access and refresh) keep working: nobody is
logged out. Every key file named after a kid holds that kid's key.
"""
import base64
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from support import ROOT, SECRET, server_config, start_live_server, stop_live_server
from accounts import keys

pytestmark = pytest.mark.live


def _header(token):
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _call(url, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _flask(args, env):
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "flask"), "--app", "app", *args], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result.stdout


def _cli_env(database, **settings):
    documented = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#") and "=" in line}
    env = {k: v for k, v in os.environ.items() if k not in documented}
    env.update({"APP_ENV": "test", "SECRET_KEY": SECRET, "PYTHON_DOTENV_DISABLED": "1"})
    env.update({k: str(v) for k, v in server_config(database).items()})
    env.update(settings)
    return env


def _kids_in_jwks(base):
    status, body = _call(base + "/.well-known/jwks.json")
    assert status == 200
    return [key["kid"] for key in body["keys"]]


def test_rotate_and_hup_sign_with_the_new_key_without_logging_anyone_out(tmp_path):
    folder = tmp_path / "keys"
    generated = _flask(["keys", "generate", "--alg", "ES256", "--out", str(folder)], _cli_env("unused"))
    old_kid = keys.thumbprint(keys.load_pem(folder / "signing.pem")[1])
    assert f"(kid {old_kid})" in generated
    settings = {"JWT_ALGORITHM": "ES256", "JWT_PRIVATE_KEY_FILE": str(folder / "signing.pem"),
                "JWT_VERIFY_KEYS_DIR": str(folder)}
    server = start_live_server(tmp_path, **settings)
    try:
        status, before = _call(server.url + "/auth", {"username": "roy", "password": "roy"})
        assert status == 200 and _header(before["access_token"])["kid"] == old_kid
        assert _kids_in_jwks(server.url) == [old_kid]

        rotated = _flask(["keys", "rotate"], _cli_env(server.database, **settings))
        new_kid = keys.thumbprint(keys.load_pem(folder / "signing.pem")[1])
        assert new_kid != old_kid and f"new signing key {new_kid}" in rotated
        assert "kill -HUP" in rotated

        os.kill(server.process.pid, signal.SIGHUP)
        # The master forks new workers, then stops the old ones: wait until
        # ten answers in a row come from new workers.
        deadline, streak = time.monotonic() + 30, 0
        while streak < 10:
            assert time.monotonic() < deadline, server.log()[-3000:]
            streak = streak + 1 if _kids_in_jwks(server.url) == [new_kid, old_kid] else 0
            time.sleep(0.05 if streak else 0.2)

        status, after = _call(server.url + "/auth", {"username": "roy", "password": "roy"})
        assert status == 200 and _header(after["access_token"])["kid"] == new_kid
        # Nobody is logged out: the old access token and the old refresh token still work.
        status, me = _call(server.url + "/rest-auth", token=before["access_token"])
        assert status == 200 and me["user"]["username"] == "roy"
        status, refreshed = _call(server.url + "/refresh", {"refresh_token": before["refresh_token"]})
        assert status == 200 and _header(refreshed["access_token"])["kid"] == new_kid
        assert server.process.poll() is None
    finally:
        stop_live_server(server)

    # File names never lie: signing.pem by role, every other file by the kid it holds.
    names = sorted(path.name for path in folder.glob("*.pem"))
    assert names == sorted(["signing.pem", f"{old_kid}.pem"])
    assert keys.thumbprint(keys.load_pem(folder / f"{old_kid}.pem")[1]) == old_kid
    assert keys.load_pem(folder / f"{old_kid}.pem")[0] is None  # only the public half is kept


def test_a_broken_key_file_at_hup_keeps_the_workers_signing_with_the_old_key(tmp_path):
    folder = tmp_path / "keys"
    _flask(["keys", "generate", "--alg", "EdDSA", "--out", str(folder)], _cli_env("unused"))
    kid = keys.thumbprint(keys.load_pem(folder / "signing.pem")[1])
    server = start_live_server(tmp_path, JWT_ALGORITHM="EdDSA",
                               JWT_PRIVATE_KEY_FILE=str(folder / "signing.pem"),
                               JWT_VERIFY_KEYS_DIR=str(folder))
    try:
        (folder / "signing.pem").write_bytes(b"not a key")
        os.kill(server.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while "keys not reloaded" not in server.log():
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.2)
        status, body = _call(server.url + "/auth", {"username": "roy", "password": "roy"})
        assert status == 200 and _header(body["access_token"])["kid"] == kid
        assert server.process.poll() is None
    finally:
        stop_live_server(server)
