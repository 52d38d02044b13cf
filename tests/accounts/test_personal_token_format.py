"""accounts/personal_tokens.py's token format: prefix, 256 random bits, CRC32 checksum."""
import pytest

from accounts import errors
from accounts import personal_tokens as pat


def test_a_token_has_the_prefix_the_length_and_a_valid_checksum():
    token = pat.new_token()
    assert token.startswith("jwtapi_pat_")
    assert len(token) == pat.LENGTH == 11 + 43 + 6
    assert pat.well_formed(token)


def test_tokens_carry_at_least_256_random_bits_and_differ():
    import math
    assert pat.RANDOM_CHARS * math.log2(62) >= 256
    assert len({pat.new_token() for _ in range(1000)}) == 1000


@pytest.mark.parametrize("position", [11, 30, 53, 54, 59])
def test_one_flipped_character_fails_the_checksum(position):
    token = pat.new_token()
    flipped = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1:]
    assert not pat.well_formed(flipped)


@pytest.mark.parametrize("bad", ["", "jwtapi_pat_", "jwtapi_pat_x", None, 42,
                                 "eyJhbGciOiJIUzI1NiJ9.e30.x"])
def test_other_strings_are_not_well_formed(bad):
    assert not pat.well_formed(bad)


def test_a_token_truncated_or_extended_is_not_well_formed():
    token = pat.new_token()
    assert not pat.well_formed(token[:-1])
    assert not pat.well_formed(token + "0")


def test_a_non_base62_character_is_refused_even_with_a_matching_length():
    token = pat.new_token()
    assert not pat.well_formed(token[:20] + "-" + token[21:])


def test_only_the_hash_is_stored_and_it_is_sha256():
    import hashlib
    token = pat.new_token()
    assert pat.token_hash(token) == hashlib.sha256(token.encode()).digest()


def test_scopes_are_checked_deduplicated_and_sorted():
    assert pat.checked_scopes(["posts:write", "posts:read", "posts:read"], False) == ("posts:read", "posts:write")
    with pytest.raises(errors.RuleBroken):
        pat.checked_scopes(["posts:delete"], False)
    with pytest.raises(errors.RuleBroken):
        pat.checked_scopes([], False)
    with pytest.raises(errors.RuleBroken):
        pat.checked_scopes("posts:read", False)
    with pytest.raises(errors.RuleBroken):
        pat.checked_scopes([{"x": 1}], False)


def test_only_an_admin_may_grant_introspect():
    with pytest.raises(errors.Forbidden):
        pat.checked_scopes(["introspect"], False)
    assert pat.checked_scopes(["introspect"], True) == ("introspect",)
