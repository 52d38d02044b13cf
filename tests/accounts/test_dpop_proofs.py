"""accounts/dpop.py's proof checks as pure functions: every way a proof is refused."""
import base64
import hashlib
import json
import sys
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from accounts import dpop
from support import ROOT

sys.path.insert(0, str(ROOT / "docs"))  # the documented client
from dpop_client import DPoPKey  # noqa: E402

URL = "https://api.example.com/rest-auth"
NOW = 1_800_000_000
WINDOW = {"max_age": 60, "leeway": 5}


def verify(proof, method="GET", url=URL, now=NOW, **kwargs):
    return dpop.verify_proof(proof, method=method, url=url, now=now, **WINDOW, **kwargs)


def refused(proof, message, error=dpop.INVALID_PROOF, **kwargs):
    with pytest.raises(dpop.ProofError) as caught:
        verify(proof, **kwargs)
    assert message in caught.value.message
    assert caught.value.error == error
    return caught.value


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256", "PS256"])
def test_a_good_proof_gives_the_keys_thumbprint(alg):
    key = DPoPKey(alg)
    proof = verify(key.proof("GET", URL, iat=NOW, jti="j1"))
    assert proof == dpop.Proof(key.jkt, "j1", NOW)


def test_the_thumbprint_is_rfc_7638s_example():
    # RFC 7638 section 3.1's RSA key and its published thumbprint.
    jwk = {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29", "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
        "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
        "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")}
    assert dpop.jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_a_query_and_fragment_are_ignored_on_both_sides():
    key = DPoPKey()
    proof = key.proof("GET", URL + "?a=1#top", iat=NOW)
    assert verify(proof, url=URL + "?b=2").jkt == key.jkt


def test_scheme_host_and_default_port_compare_case_insensitively():
    proof = DPoPKey().proof("GET", "HTTPS://API.example.com:443/rest-auth", iat=NOW)
    verify(proof)


def test_another_method_is_refused():
    refused(DPoPKey().proof("POST", URL, iat=NOW), "htm")


@pytest.mark.parametrize("url", ["https://api.example.com/other", "http://api.example.com/rest-auth",
                                 "https://evil.example.com/rest-auth",
                                 "https://api.example.com:8443/rest-auth"])
def test_another_url_is_refused(url):
    refused(DPoPKey().proof("GET", url, iat=NOW), "htu")


def test_an_old_iat_is_refused():
    refused(DPoPKey().proof("GET", URL, iat=NOW - 66), "too old")


def test_a_future_iat_is_refused():
    refused(DPoPKey().proof("GET", URL, iat=NOW + 6), "future")


def test_iat_inside_the_window_and_leeway_is_accepted():
    verify(DPoPKey().proof("GET", URL, iat=NOW - 65))
    verify(DPoPKey().proof("GET", URL, iat=NOW + 5))


@pytest.mark.parametrize("iat", ["1800000000", True, None])
def test_a_non_numeric_iat_is_refused(iat):
    key = DPoPKey()
    claims = {"jti": "x", "htm": "GET", "htu": URL}
    if iat is not None:
        claims["iat"] = iat
    proof = jwt.encode(claims, key.private_key, algorithm="ES256",
                       headers={"typ": "dpop+jwt", "jwk": key.public_jwk})
    refused(proof, "iat")


def test_a_missing_or_huge_jti_is_refused():
    key = DPoPKey()
    refused(key.proof("GET", URL, iat=NOW, jti="x" * 129), "jti")
    proof = jwt.encode({"htm": "GET", "htu": URL, "iat": NOW}, key.private_key, algorithm="ES256",
                       headers={"typ": "dpop+jwt", "jwk": key.public_jwk})
    refused(proof, "jti")


def test_the_typ_must_be_dpop_jwt():
    refused(DPoPKey().proof("GET", URL, iat=NOW, headers={"typ": "JWT"}), "typ")


def test_alg_none_is_refused():
    key = DPoPKey()
    header = {"alg": "none", "typ": "dpop+jwt", "jwk": key.public_jwk}
    claims = {"jti": "x", "htm": "GET", "htu": URL, "iat": NOW}
    enc = lambda part: base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()  # noqa: E731
    refused(f"{enc(header)}.{enc(claims)}.", "signed with one of")


def test_hs256_is_refused_even_with_a_symmetric_jwk():
    secret = b"k" * 32
    jwk = {"kty": "oct", "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()}
    proof = jwt.encode({"jti": "x", "htm": "GET", "htu": URL, "iat": NOW}, secret, algorithm="HS256",
                       headers={"typ": "dpop+jwt", "jwk": jwk})
    refused(proof, "signed with one of")


def test_a_private_key_in_the_header_is_refused():
    key = DPoPKey()
    from jwt.algorithms import ECAlgorithm
    private_jwk = ECAlgorithm.to_jwk(key.private_key, as_dict=True)
    assert "d" in private_jwk
    refused(key.proof("GET", URL, iat=NOW, headers={"jwk": private_jwk}), "secret members")


def test_a_jwk_of_another_type_than_the_alg_is_refused():
    key = DPoPKey("RS256")
    other = DPoPKey("ES256")
    refused(key.proof("GET", URL, iat=NOW, headers={"jwk": other.public_jwk}), "needs a RSA key")


def test_a_signature_by_another_key_is_refused():
    key, other = DPoPKey(), DPoPKey()
    refused(key.proof("GET", URL, iat=NOW, headers={"jwk": other.public_jwk}), "signature")


def test_a_missing_jwk_is_refused():
    key = DPoPKey()
    proof = jwt.encode({"jti": "x", "htm": "GET", "htu": URL, "iat": NOW}, key.private_key,
                       algorithm="ES256", headers={"typ": "dpop+jwt"})
    refused(proof, "no public key")


def test_a_weak_rsa_key_is_refused():
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    from jwt.algorithms import RSAAlgorithm
    jwk = RSAAlgorithm.to_jwk(weak.public_key(), as_dict=True)
    proof = jwt.encode({"jti": "x", "htm": "GET", "htu": URL, "iat": NOW}, weak, algorithm="RS256",
                       headers={"typ": "dpop+jwt", "jwk": jwk})
    refused(proof, "2048")


def test_an_es256_key_off_p256_is_refused():
    other_curve = ec.generate_private_key(ec.SECP384R1())
    from jwt.algorithms import ECAlgorithm
    jwk = ECAlgorithm.to_jwk(other_curve.public_key(), as_dict=True)
    refused(DPoPKey().proof("GET", URL, iat=NOW, headers={"jwk": jwk}), "P-256")


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c", "x" * 5000, None, 42])
def test_garbage_is_refused(garbage):
    with pytest.raises(dpop.ProofError):
        verify(garbage)


def test_ath_must_be_the_access_tokens_hash():
    key = DPoPKey()
    verify(key.proof("GET", URL, iat=NOW, access_token="tok"), access_token="tok")
    refused(key.proof("GET", URL, iat=NOW, access_token="other"), "ath", access_token="tok")
    refused(key.proof("GET", URL, iat=NOW), "ath", access_token="tok")
    expected = base64.urlsafe_b64encode(hashlib.sha256(b"tok").digest()).rstrip(b"=").decode()
    assert dpop.access_token_hash("tok") == expected


def test_nonces_of_this_window_and_the_last_are_valid_and_no_others():
    secret, period = "s" * 40, 300
    nonce = dpop.make_nonce(secret, NOW, period)
    assert dpop.nonce_valid(nonce, secret, NOW, period)
    assert dpop.nonce_valid(nonce, secret, NOW + period, period)
    assert not dpop.nonce_valid(nonce, secret, NOW + 2 * period, period)
    assert not dpop.nonce_valid(nonce, "t" * 40, NOW, period)
    assert not dpop.nonce_valid("made-up", secret, NOW, period)


def test_a_required_nonce_missing_or_wrong_is_use_dpop_nonce():
    secret, period = "s" * 40, 300
    good = dpop.make_nonce(secret, NOW, period)
    check = lambda n: dpop.nonce_valid(n, secret, NOW, period)  # noqa: E731
    key = DPoPKey()
    verify(key.proof("GET", URL, iat=NOW, nonce=good), nonce_ok=check)
    refused(key.proof("GET", URL, iat=NOW), "DPoP-Nonce", error=dpop.USE_NONCE, nonce_ok=check)
    refused(key.proof("GET", URL, iat=NOW, nonce="stale"), "DPoP-Nonce", error=dpop.USE_NONCE, nonce_ok=check)


def test_replay_keys_differ_per_key_and_per_jti():
    a, b = dpop.Proof("jkt-a", "1", NOW), dpop.Proof("jkt-b", "1", NOW)
    assert dpop.replay_key(a) != dpop.replay_key(b)
    assert dpop.replay_key(a) == dpop.replay_key(dpop.Proof("jkt-a", "1", NOW + 1))
    assert len(dpop.replay_key(a)) == 32


def test_real_time_proofs_verify_against_the_clock():
    verify(DPoPKey().proof("GET", URL), now=time.time())
