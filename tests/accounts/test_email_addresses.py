"""accounts/email_addresses.py: the one rule for addresses, and what it refuses rather than repairs."""
import pytest

from accounts import email_addresses
from accounts.errors import RuleBroken


@pytest.mark.parametrize("given, stored", [
    ("alice@example.com", "alice@example.com"),
    ("Alice.Smith+tag@Example.COM", "Alice.Smith+tag@example.com"),   # local part kept, domain lowered
    ("  bob@mail.example.org ", "bob@mail.example.org"),               # a paste's spaces
    ("o'hara@example.ie", "o'hara@example.ie"),
])
def test_accepted_addresses_and_their_stored_form(given, stored):
    assert email_addresses.normalise(given) == stored


@pytest.mark.parametrize("given", [
    "alice@example.com\r\nBcc: eve@example.net", "alice@example.com\n", "\nalice@example.com",
    "alice\r@example.com", "alice@exam\x00ple.com", "Alice <alice@example.com>", "alice@example.com>",
    "alice@example.com, eve@example.net", "alice@example.com;eve@example.net", "\"a b\"@example.com",
    "alice@@example.com", "alice", "@example.com", "alice@", "alice@localhost", "alice@-example.com",
    "alice@example..com", ".alice@example.com", "alice.@example.com", "al..ice@example.com",
    "älice@example.com", "alice@exämple.com", "a" * 65 + "@example.com", "a@" + "b" * 250 + ".com", "",
])
def test_refused_addresses_name_the_field(given):
    with pytest.raises(RuleBroken) as caught:
        email_addresses.normalise(given, field="email")
    assert caught.value.field == "email" and "'email'" in caught.value.message


def test_masked_keeps_the_domain_and_one_letter():
    assert email_addresses.masked("alice@example.com") == "a***@example.com"
