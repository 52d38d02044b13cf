"""README "Tokens for scripts and gateways": its shell blocks and its Python DPoP client, run as
written against a gunicorn of their own (only the server URL changes)."""
import json
import re
import subprocess
import sys

import pytest

from support import ROOT, start_live_server, stop_live_server

pytestmark = pytest.mark.live
README_BASE = "http://127.0.0.1:5000"


def _section():
    text = (ROOT / "README.md").read_text()
    return text.split("## Tokens for scripts and gateways", 1)[1].split("\n## ", 1)[0]


def _block(language, first_line):
    found = [block for block in re.findall(rf"```{language}\n(.*?)```", _section(), re.S)
             if block.startswith(first_line)]
    assert len(found) == 1, f"no single ```{language} block starting with {first_line!r}"
    return found[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_live_server(tmp_path_factory.mktemp("readme-tokens"))
    yield server
    stop_live_server(server)


def _bash(script, server):
    script = script.replace(f"BASE={README_BASE}", f"BASE={server.url}", 1)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _documented(block):
    """The outputs the block's comments promise, in order: `# 200` after a command, or a `# {...}` line."""
    promised = []
    for line in block.splitlines():
        if line.startswith("# {"):
            promised.append(line[2:])
        elif "#" in line and not line.startswith("#"):
            promised.append(line.split("#", 1)[1].split(":")[0].split(",")[0].strip())
    return promised


def test_the_personal_token_walk_through(server):
    block = _block("sh", "# a personal access token for a script")
    lines = _bash(block, server)
    assert lines[0] == "jwtapi_pat_" and lines[1] == "200"
    assert lines[2] == _documented(block)[2]  # the 403 body, exactly as printed
    assert lines[3] == "403"
    [listed] = json.loads(lines[4])["tokens"]
    assert listed["scopes"] == ["posts:read"] and "token" not in listed


def test_the_gateway_walk_through(server):
    block = _block("sh", "# a gateway's view")
    lines = _bash(block, server)
    assert lines == ["roy", "200", '{"active":false}', f"{server.url}/revoke"]
    assert _documented(block)[:3] == ["roy", "200", '{"active":false}']


def test_the_python_dpop_client(server):
    code = _block("python", "import sys")
    assert f'BASE = "{README_BASE}"' in code
    code = code.replace(f'BASE = "{README_BASE}"', f'BASE = "{server.url}"')
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["DPoP", "{'id': 1, 'username': 'roy'}"]
