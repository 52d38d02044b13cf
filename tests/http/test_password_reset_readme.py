"""The README's "Forgot password" walk-through, run as written against gunicorn and a real SMTP server.

Only what a reader does by hand changes: the server URL (`BASE=`), and the
two tokens they copy from the messages (here read from what aiosmtpd
received, by a shell function that waits for them).
"""
import json
import re
import subprocess

import pytest

from mail_catcher import LINK, MailCatcher, text_of
from support import ROOT, start_live_server, stop_live_server

pytestmark = [pytest.mark.live, pytest.mark.smtp]
OPENING = "# Forgot password, with the demo user alice\n"


def _block():
    found = [b for b in re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
             if b.startswith(OPENING)]
    assert len(found) == 1, "README has no single ```sh block starting with the forgot-password line"
    return found[0]


def test_the_forgot_password_walk_through(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.mkdir()

    def keep_token(entry):
        for page, token in LINK.findall(text_of(entry)):
            (tokens / page).write_text(token)
    catcher = MailCatcher(on_message=keep_token).start()
    server = start_live_server(tmp_path, MAIL_HOST="127.0.0.1", MAIL_PORT=catcher.port, MAIL_SECURITY="none")
    try:
        wait = (f'wait_token() {{ for _ in $(seq 200); do [ -s "{tokens}/$1" ] && {{ cat "{tokens}/$1"; '
                'return; }; sleep 0.05; done; return 1; }\n')
        # The README's tokens sit inside single-quoted JSON: close the quote around the substitution.
        script = (_block().replace("BASE=http://127.0.0.1:5000", f"BASE={server.url}", 1)
                  .replace("<the token of the verification link>", "'\"$(wait_token verify-email)\"'")
                  .replace("<the token of the reset link>", "'\"$(wait_token reset-password)\"'"))
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", wait + script], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr + result.stdout
        lines = result.stdout.splitlines()
        user = json.loads(lines[0])
        assert user["username"] == "alice" and user["email"] == "alice@example.com"
        assert user["email_verified"] is False
        documented = re.search(r'^# (\{"message".*\})$', _block(), re.M).group(1)
        assert lines[1:] == ["204", documented, "204", "401"]
        subjects = [m["message"]["Subject"] for m in catcher.wait_for(3)]
        assert subjects == ["Verify your email address", "Reset your password", "Your password was changed"]
    finally:
        stop_live_server(server)
        catcher.stop()
