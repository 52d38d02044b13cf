"""A real SMTP server for the tests: aiosmtpd on a free loopback port, keeping what it receives."""
import email
import email.policy
import re
import threading
import time

from aiosmtpd.controller import Controller

from support import free_port

LINK = re.compile(r"/(reset-password|verify-email)#token=([A-Za-z0-9_-]+)")


class _Keeper:
    def __init__(self, on_message=None):
        self.messages = []
        self.lock = threading.Lock()
        self.on_message = on_message

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        entry = {"rcpt": list(envelope.rcpt_tos), "from": envelope.mail_from,
                 "message": message, "raw": envelope.original_content}
        with self.lock:
            self.messages.append(entry)
        if self.on_message is not None:
            self.on_message(entry)
        return "250 Message accepted"


class MailCatcher:
    """An SMTP server on 127.0.0.1:`port` (start()/stop()); `.messages` in arrival order."""

    def __init__(self, port=None, on_message=None):
        self.port = port or free_port()
        self.keeper = _Keeper(on_message)
        self.controller = None

    @property
    def messages(self):
        with self.keeper.lock:
            return list(self.keeper.messages)

    def start(self):
        self.controller = Controller(self.keeper, hostname="127.0.0.1", port=self.port,
                                     decode_data=False)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def wait_for(self, count, timeout=10.0):
        """The messages once at least `count` arrived; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages
            if len(messages) >= count:
                return messages
            time.sleep(0.05)
        raise AssertionError(f"expected {count} messages, got {len(self.messages)}")


def text_of(entry):
    """The plain-text part of a caught message."""
    return entry["message"].get_body(("plain",)).get_content()


def html_of(entry):
    return entry["message"].get_body(("html",)).get_content()


def token_in(entry, page="reset-password"):
    """The token of the link to `page` in the message's text part (AssertionError if none)."""
    for found_page, token in LINK.findall(text_of(entry)):
        if found_page == page:
            return token
    raise AssertionError(f"no /{page} link in:\n{text_of(entry)}")


def wait_for_message_to(catcher, address, count=1, timeout=10.0):
    """The `count`-th message to `address` once it arrived; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in catcher.messages if m["rcpt"] == [address]]
        if len(found) >= count:
            return found[count - 1]
        time.sleep(0.05)
    raise AssertionError(f"no message #{count} to {address}")
