"""The container's start, without a Docker engine: the image's CMD as a non-root user on a read-only tree.

What `docker compose up` would run, as closely as a machine without Docker
allows: the files the Dockerfile's `COPY . .` puts in the image (the tree
minus .dockerignore), owned by root and not writable, the Dockerfile's ENV and
WORKDIR, the api service's environment from docker-compose.yml on top of the
.env that `make .env` writes, and the Dockerfile's CMD run by an unprivileged
user. Only what names the other containers is pointed at this machine: the
db and redis host names, the test server's credentials and a free port. It
must answer /healthz and /readyz, create the first admin the documented way
(`flask create-user --admin`, as in `docker compose exec api ...`), who then
logs in, and write nothing into the tree.
"""
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from support import ROOT, create_database, drop_database, server_config, free_port

pytestmark = pytest.mark.live

NOBODY = 65534


def _dockerfile():
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def _dockerfile_env(instructions):
    env = {}
    for name, args in instructions:
        if name == "ENV":
            env.update(pair.split("=", 1) for pair in args.split())
    return env


def _image_files():
    """The paths `COPY . .` puts into the image: the tree, minus .dockerignore's patterns."""
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()

    def ignored(path):
        verdict = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pattern = pattern.lstrip("!")
            parts = path.split("/")
            hit = any(fnmatch.fnmatch("/".join(parts[:n]), pattern) for n in range(1, len(parts) + 1)) \
                or fnmatch.fnmatch(parts[-1], pattern)
            if hit:
                verdict = not negate
        return verdict

    return [path for path in listed if (ROOT / path).is_file() and not ignored(path)]


def _env_file(tmp):
    """The .env `make .env` writes, read the way compose's env_file reads it."""
    for name in ("Makefile", ".env.example"):
        shutil.copy(ROOT / name, tmp / name)
    subprocess.run(["make", "-s", ".env"], cwd=tmp, check=True, capture_output=True, timeout=30)
    values = {}
    for line in (tmp / ".env").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def _interpolate(value, variables):
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message}."""
    def one(match):
        name, op, rest = match.group(1), match.group(2), match.group(3)
        found = variables.get(name, "")
        if op == ":?" and not found:
            pytest.fail(f"compose would refuse to start: {rest}")
        return found or (rest if op == ":-" else "")
    return re.sub(r"\$\{([A-Z_]+)(?:(:[-?])([^}]*))?\}", one, str(value))


@pytest.fixture
def image_tree():
    """A root-owned, read-only copy of the image's /app (removed afterwards)."""
    app_dir = Path(tempfile.mkdtemp(prefix="jwt-api-image-"))
    os.chmod(app_dir, 0o755)
    for path in _image_files():
        target = app_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, target)
    for folder, dirs, files in os.walk(app_dir):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o555)
    os.chmod(app_dir, 0o555)
    yield app_dir
    for folder, dirs, _ in os.walk(app_dir):
        os.chmod(folder, 0o755)
    shutil.rmtree(app_dir)


def _snapshot(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _reachable_by_anyone(path):
    """True if every folder above `path` lets other users through (o+x)."""
    return all(folder.stat().st_mode & 0o001 for folder in Path(path).parents)


def _as_nobody(command):
    """`command` run as uid/gid 65534 with no groups and no capability to write anything of root's.

    When the venv's interpreter lives where other users cannot go (a Python
    installed in root's home folder), the user keeps CAP_DAC_READ_SEARCH alone: it may
    read any file, as the image's user reads its own installed Python, but
    still write none.
    """
    setpriv = shutil.which("setpriv") or pytest.skip("setpriv (util-linux) is needed")
    drop = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    if not _reachable_by_anyone(os.path.realpath(sys.executable)):
        drop += ["--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search"]
    else:
        drop += ["--inh-caps=-all"]
    return drop + command


def _wait(url, process, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except OSError:
            time.sleep(0.2)
    return None, None


def test_the_image_command_starts_as_nobody_on_a_read_only_tree(image_tree, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("switching to an unprivileged user needs root")
    instructions = _dockerfile()
    command = json.loads(dict(instructions)["CMD"])
    assert command == ["python", "-m", "serving"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["api"]
    assert compose["env_file"] == ".env" and compose["read_only"] is True

    dotenv = _env_file(tmp_path)
    env = {"PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin", "HOME": "/nonexistent"}
    env.update(_dockerfile_env(instructions))
    env.update(dotenv)
    env.update({key: _interpolate(value, dotenv) for key, value in compose["environment"].items()})
    # Only what names the other containers changes: db, redis, the credentials, the port.
    assert env["DB_HOST"] == "db" and env["APP_ENV"] == "production"
    database = create_database(prefix="test_image")
    server = server_config(database)
    port = free_port()
    env.update({"DB_HOST": server["DB_HOST"], "DB_PORT": str(server["DB_PORT"]),
                "DB_USER": server["DB_USER"], "DB_PASSWORD": server["DB_PASSWORD"],
                "DB_NAME": database, "SERVER_BIND": f"127.0.0.1:{port}", "SERVER_WORKERS": "2"})
    for name in ("RATELIMIT_STORAGE_URI", "REDIS_URL"):
        env[name] = env[name].replace("redis://redis:", "redis://127.0.0.1:")

    before = _snapshot(image_tree)
    log = tmp_path / "server.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(_as_nobody(command), cwd=image_tree, env=env,
                                   stdout=stderr, stderr=stderr)
    try:
        status, body = _wait(f"http://127.0.0.1:{port}/healthz", process)
        assert (status, body) == (200, {"status": "ok"}), log.read_text()[-3000:]
        status, body = _wait(f"http://127.0.0.1:{port}/readyz", process)
        assert (status, body) == (200, {"status": "ready"}), log.read_text()[-3000:]
        # The first admin, the documented way: `docker compose exec api flask create-user --admin NAME`.
        created = subprocess.run(_as_nobody(["flask", "create-user", "--admin", "boss"]), cwd=image_tree,
                                 env=env, input="a-long-boss-password\n", capture_output=True,
                                 text=True, timeout=60)
        assert created.returncode == 0 and created.stdout == "created admin user boss\n", created.stderr
        login = urllib.request.Request(f"http://127.0.0.1:{port}/auth", method="POST",
                                       data=json.dumps({"username": "boss",
                                                        "password": "a-long-boss-password"}).encode(),
                                       headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(login, timeout=10) as response:
            assert "access_token" in json.loads(response.read())
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        drop_database(database)
    text = log.read_text()
    assert "Traceback" not in text and "Read-only" not in text and "Permission denied" not in text, text
    assert _snapshot(image_tree) == before  # nothing written into /app (no *.db, no __pycache__)
