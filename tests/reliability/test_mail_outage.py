"""The SMTP server down, then back, under gunicorn: the workers' sender threads deliver each message once.

Nothing listens on the mail port while POST /password/forgot is answered
(202 at once: the request only queues). The sender threads retry with
backoff; once aiosmtpd starts on that port, each message arrives, exactly
once, without any restart or second command.
"""
import json
import time
import urllib.request

import pytest

import db
from mail_catcher import MailCatcher, token_in
from support import free_port, server_config, start_live_server, stop_live_server

pytestmark = [pytest.mark.live, pytest.mark.smtp, pytest.mark.slow]


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_mail_queued_while_smtp_is_down_is_delivered_once_when_it_returns(tmp_path):
    port = free_port()
    server = start_live_server(tmp_path, MAIL_HOST="127.0.0.1", MAIL_PORT=port, MAIL_SECURITY="none",
                               MAIL_TIMEOUT=2, MAIL_RETRY_MAX=2)
    catcher = None
    try:
        config = server_config(server.database)
        db.run_script(config, "INSERT INTO user_email (user_id, email)"
                              " SELECT id, 'roy@example.test' FROM user WHERE username = 'roy'")
        started = time.monotonic()
        assert post(server.url + "/password/forgot", {"username": "roy"}) == 202
        assert time.monotonic() - started < 2  # the request does not wait for the mail server
        time.sleep(3)  # a few failed attempts
        catcher = MailCatcher(port).start()
        [message] = catcher.wait_for(1, timeout=20)
        assert message["rcpt"] == ["roy@example.test"] and token_in(message)
        time.sleep(4)  # two more retry periods: nothing is sent again
        assert len(catcher.messages) == 1
        [row] = db.server_execute(config, f"SELECT state, attempts FROM `{server.database}`.mail_outbox")
        assert row["state"] == "sent" and row["attempts"] >= 2
    finally:
        if catcher is not None:
            catcher.stop()
        stop_live_server(server)
