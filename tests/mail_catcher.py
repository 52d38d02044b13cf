"""A real SMTP server for the tests: aiosmtpd on a free loopback port, keeping what it receives.

Optionally with TLS (STARTTLS required, or implicit TLS) under a certificate
from a throw-away CertificateAuthority, and with AUTH: every login attempt is
kept with whether it arrived inside TLS.
"""
import datetime
import email
import email.policy
import ipaddress
import re
import ssl
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from support import free_port

LINK = re.compile(r"/(reset-password|verify-email)#token=([A-Za-z0-9_-]+)")


def _encrypted(server):
    """Whether this SMTP session runs inside TLS (STARTTLS done, or implicit TLS)."""
    return server.transport is not None and server.transport.get_extra_info("ssl_object") is not None


class _Keeper:
    def __init__(self, on_message=None, credentials=None):
        self.messages = []
        self.logins = []
        self.lock = threading.Lock()
        self.on_message = on_message
        self.credentials = credentials

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        """aiosmtpd's authenticator: accepts `credentials`, keeps every attempt with its TLS state."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        with self.lock:
            self.logins.append({"login": login, "password": password, "tls": _encrypted(server)})
        return AuthResult(success=(login, password) == self.credentials)

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        entry = {"rcpt": list(envelope.rcpt_tos), "from": envelope.mail_from,
                 "message": message, "raw": envelope.original_content,
                 "tls": _encrypted(server), "authenticated": bool(session.authenticated)}
        with self.lock:
            self.messages.append(entry)
        if self.on_message is not None:
            self.on_message(entry)
        return "250 Message accepted"


class MailCatcher:
    """An SMTP server on 127.0.0.1:`port` (start()/stop()); `.messages` in arrival order.

    security: "none", "starttls" (offered and required before MAIL) or "tls"
    (implicit TLS), with `certificate` (an ssl server context, e.g. from
    CertificateAuthority.server_context()). credentials=(login, password):
    AUTH offered and required; auth_require_tls=False also offers it in clear
    (a careless server: only the client can keep the password inside TLS).
    """

    def __init__(self, port=None, on_message=None, security="none", certificate=None,
                 credentials=None, auth_require_tls=True):
        assert (security == "none") == (certificate is None), "TLS needs a certificate, and only TLS"
        self.port = port or free_port()
        self.keeper = _Keeper(on_message, credentials)
        self.security = security
        self.certificate = certificate
        self.credentials = credentials
        self.auth_require_tls = auth_require_tls
        self.controller = None

    @property
    def messages(self):
        with self.keeper.lock:
            return list(self.keeper.messages)

    @property
    def logins(self):
        """Every AUTH attempt: {"login", "password", "tls"}."""
        with self.keeper.lock:
            return list(self.keeper.logins)

    def clear(self):
        with self.keeper.lock:
            self.keeper.messages.clear()
            self.keeper.logins.clear()

    def start(self):
        options = {}
        if self.security == "starttls":
            options.update(tls_context=self.certificate, require_starttls=True)
        elif self.security == "tls":
            options.update(ssl_context=self.certificate)
        if self.credentials is not None:
            # aiosmtpd's auth_require_tls only knows STARTTLS; implicit TLS is TLS from the first byte.
            options.update(authenticator=self.keeper.authenticate, auth_required=True,
                           auth_require_tls=self.auth_require_tls and self.security != "tls")
        self.controller = Controller(self.keeper, hostname="127.0.0.1", port=self.port,
                                     decode_data=False, **options)
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


class CertificateAuthority:
    """A throw-away CA (EC P-256, one day) for TLS tests; `ca_file` is its certificate as PEM."""

    def __init__(self, directory, name="Mail test CA"):
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        public = self.key.public_key()
        self.certificate = (
            _builder(subject, subject, public)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.key, hashes.SHA256()))
        self.ca_file = directory / f"{id(self)}-ca.pem"
        self.ca_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def server_context(self, names=("localhost", "127.0.0.1")):
        """An ssl server context with a certificate for `names` (DNS names or IP addresses)."""
        key = ec.generate_private_key(ec.SECP256R1())
        alternative = [x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n)
                       for n in names]
        certificate = (
            _builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]),
                     self.certificate.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256()))
        stem = self.directory / f"{id(key)}-server"
        chain, key_file = stem.with_suffix(".pem"), stem.with_suffix(".key")
        chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(chain, key_file)
        return context


def _builder(subject, issuer, public_key):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)))


def _is_ip(name):
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
