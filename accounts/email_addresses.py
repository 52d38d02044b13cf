"""Email addresses: the one rule for what the service accepts and how it is stored.

Deliberately narrower than RFC 5322: an ASCII `local@domain` with no spaces,
quotes, angle brackets, commas, semicolons or control characters (CR and LF
above all), so an address can never carry a second header or a second
recipient into a message. The domain is stored lower-case; the local part as
given (some servers distinguish it; the unique index compares without case).
"""
import re

from accounts.errors import RuleBroken

MAX_LENGTH = 254  # RFC 5321's path limit, and the column's size
# local: dot-atom of the printable ASCII a mailbox may use without quoting.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
# domain: at least two labels, letters/digits/hyphens, no leading or trailing hyphen.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"({_LOCAL})@({_LABEL}(?:\.{_LABEL})+)")


def normalise(value, field="email"):
    """The stored form of the address `value` (a str); RuleBroken naming `field` otherwise.

    Leading and trailing spaces are dropped (a paste artefact); anything else
    outside the rule, including CR, LF and NUL anywhere, is refused rather
    than repaired.
    """
    address = value.strip(" ")
    if len(address) > MAX_LENGTH:
        raise RuleBroken(f"'{field}' must be at most {MAX_LENGTH} characters.", field=field)
    match = _ADDRESS.fullmatch(address)
    if match is None or len(match.group(1)) > 64:
        raise RuleBroken(f"'{field}' is not an email address (name@example.com, ASCII only).",
                         field=field)
    return f"{match.group(1)}@{match.group(2).lower()}"


def masked(address):
    """`address` with most of its local part hidden (a notice to the old address names the new)."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"
