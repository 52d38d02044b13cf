"""README's "Second factors" curl session, run as written against a live gunicorn (roy, seeded).

The shell block is taken from README.md itself, so the documented commands
cannot drift from what the service does. Only BASE and the recovery-codes
file are pointed at this run's server and temporary folder.
"""
import json
import os
import re
import subprocess

import pytest

from support import ROOT, require_tool, start_live_server, stop_live_server

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """A server of its own: the session turns TOTP on for roy, whom other live tests log in as."""
    server = start_live_server(tmp_path_factory.mktemp("readme-mfa"))
    yield server
    stop_live_server(server)


def readme_block(heading):
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_readme_totp_session_works(own_server, tmp_path):
    curl = require_tool("curl", "the README's curl examples")
    script = readme_block("## Second factors")
    script = script.replace("BASE=http://127.0.0.1:5000", f"BASE={own_server.url}")
    script = script.replace("/tmp/recovery.json", str(tmp_path / "recovery.json"))
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.path.dirname(curl)}:{os.environ['PATH']}")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    tokens = result.stdout.split()
    assert len(tokens) == 2 and all(t.count(".") == 2 for t in tokens), result.stdout
    assert len(json.loads((tmp_path / "recovery.json").read_text())["recovery_codes"]) == 10
