"""Composing and delivering one message: templates in, SMTP (or the log) out.

Messages have a plain-text and an HTML part rendered from
templates/mail/<name>.txt and .html (Jinja escapes the HTML one). Headers are
built by the standard library's `email` package with the SMTP policy, which
refuses a header value holding CR or LF; addresses were already checked by
accounts/email_addresses.py, so nothing a user typed can add a header or a
recipient.

Delivery: MAIL_HOST set -> smtplib (MAIL_SECURITY none | starttls | tls,
optional login). With starttls and tls the server's certificate is verified
(the system's CAs, or MAIL_CA_FILE's; the host name always): a server that
is not trusted, or one that does not offer STARTTLS when asked, gets nothing,
neither the message nor the login, and the row is retried. MAIL_HOST empty (development and tests only; production
refuses it while ACCOUNT_EMAIL is on) -> the message is written to the log,
links included, so a developer running `make run` can follow them.
"""
import email.policy
import email.utils
import logging
import smtplib
import ssl
from email.message import EmailMessage

from flask import current_app, render_template

log = logging.getLogger(__name__)

SUBJECTS = {
    "password_reset": "Reset your password",
    "password_changed": "Your password was changed",
    "verify_email": "Verify your email address",
    "email_changed": "The email address of your account was changed",
    "recovery_code_used": "A recovery code of your account was used",
    "factor_removed": "A second factor of your account was turned off",
}


class TransientFailure(Exception):
    """The server could not take the message now (down, 4xx): try again later.

    `unreachable`: the server did not answer at all (the next message would fare no better).
    """

    def __init__(self, message, unreachable=False):
        super().__init__(message)
        self.unreachable = unreachable


class PermanentFailure(Exception):
    """The server refused the message for good (5xx): trying again will not help."""


def compose(to, template, **context):
    """An EmailMessage to `to` from templates/mail/<template>.txt and .html with `context`."""
    config = current_app.config
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = SUBJECTS[template]
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = email.utils.make_msgid(domain=_sender_domain(config["MAIL_FROM"]))
    context.setdefault("public_url", config["PUBLIC_URL"].rstrip("/"))
    message.set_content(render_template(f"mail/{template}.txt", **context))
    message.add_alternative(render_template(f"mail/{template}.html", **context), subtype="html")
    return message


def _sender_domain(sender):
    address = email.utils.parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"


def deliver(message):
    """Hand `message` to the SMTP server (or the log); raise TransientFailure or PermanentFailure."""
    config = current_app.config
    if not config["MAIL_HOST"]:
        # Only outside production (config refuses it there): the link must be reachable.
        log.warning("MAIL_HOST is not set; this message was not sent:\n%s", message.as_string())
        return
    try:
        with _connect(config) as smtp:
            if config["MAIL_USERNAME"]:
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
            smtp.send_message(message)
    except ssl.SSLCertVerificationError as exc:
        # Before any SMTP command crossed: fix the settings (or the server), the row waits.
        raise TransientFailure(f"TLS: the certificate of {config['MAIL_HOST']} is not trusted "
                               f"({exc.verify_message.rstrip('.')}); check MAIL_HOST and MAIL_CA_FILE",
                               unreachable=True) from None
    except smtplib.SMTPAuthenticationError as exc:
        # Our settings are wrong, not the message: keep it until they are fixed.
        raise TransientFailure(f"SMTP login refused ({exc.smtp_code}): check MAIL_USERNAME and "
                               f"MAIL_PASSWORD") from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise (PermanentFailure if all(c >= 500 for c in codes) else TransientFailure)(
            f"recipient refused: {codes}") from None
    except smtplib.SMTPResponseException as exc:
        kind = PermanentFailure if exc.smtp_code >= 500 else TransientFailure
        raise kind(f"SMTP {exc.smtp_code}") from None
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
        raise TransientFailure(f"{type(exc).__name__}: {exc}", unreachable=True) from None
    except smtplib.SMTPException as exc:
        raise TransientFailure(f"{type(exc).__name__}: {exc}") from None


def tls_context(config):
    """The context every TLS connection to the SMTP server uses: certificate and host name verified.

    Trusted: the CAs in MAIL_CA_FILE when set (a private CA), else the system's.
    """
    return ssl.create_default_context(cafile=config.get("MAIL_CA_FILE") or None)


def _connect(config):
    """An SMTP connection, inside TLS unless MAIL_SECURITY=none; nothing but EHLO is sent before it."""
    host, port, timeout = config["MAIL_HOST"], config["MAIL_PORT"], config["MAIL_TIMEOUT"]
    security = config["MAIL_SECURITY"]
    if security == "tls":
        return smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls_context(config))
    smtp = smtplib.SMTP(host, port, timeout=timeout)
    if security == "starttls":
        try:
            smtp.starttls(context=tls_context(config))
        except smtplib.SMTPNotSupportedError:
            smtp.close()
            # Never fall back to clear text: that is what an attacker stripping STARTTLS wants.
            raise TransientFailure(f"{host} does not offer STARTTLS (MAIL_SECURITY=starttls): "
                                   "nothing sent in clear", unreachable=True) from None
        except BaseException:
            smtp.close()
            raise
    return smtp
