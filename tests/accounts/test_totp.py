"""accounts/totp.py and accounts/recovery_codes.py against the real database, no HTTP."""
import base64
import time

import pyotp
import pytest

import db
from accounts import mfa, recovery_codes, totp
from accounts.errors import Conflict, NotFound, RuleBroken, Throttled, TokenError
from support import clear_of_a_totp_step_edge


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app
        db.close_db()


@pytest.fixture
def alice(make_user):
    return make_user("alice")


def code_at(secret, step):
    return pyotp.TOTP(secret).generate_otp(step)


def now_step():
    return int(time.time()) // 30


def enrolled(user_id):
    """Enroll and confirm TOTP; return the secret and the step the confirming code used."""
    clear_of_a_totp_step_edge()
    secret = totp.begin(user_id, "alice").secret
    step = now_step() - 1  # the oldest step still accepted: later steps stay usable in the test
    totp.confirm(user_id, code_at(secret, step))
    return secret, step


def test_enrollment_answers_a_secret_an_otpauth_uri_and_an_svg_qr(ctx, alice):
    enrollment = totp.begin(alice["id"], "alice")
    assert len(base64.b32decode(enrollment.secret)) == 20
    assert enrollment.otpauth_uri.startswith("otpauth://totp/JWT%20API:alice?secret=" + enrollment.secret)
    assert "issuer=JWT%20API" in enrollment.otpauth_uri
    assert enrollment.qr_svg.startswith("<svg") and "<path" in enrollment.qr_svg
    assert not totp.is_on(alice["id"])


def test_the_secret_is_encrypted_at_rest(ctx, alice):
    enrollment = totp.begin(alice["id"], "alice")
    stored = db.one("SELECT secret FROM mfa_totp WHERE user_id = %s", (alice["id"],))["secret"]
    assert enrollment.secret not in stored and stored.startswith("gAAAAA")  # a Fernet token


def test_confirm_turns_totp_on_and_a_wrong_code_does_not(ctx, alice):
    secret = totp.begin(alice["id"], "alice").secret
    wrong = f"{(int(code_at(secret, now_step())) + 1) % 1000000:06d}"
    with pytest.raises(RuleBroken) as caught:
        totp.confirm(alice["id"], wrong)
    assert caught.value.field == "code" and not totp.is_on(alice["id"])
    totp.confirm(alice["id"], code_at(secret, now_step()))
    assert totp.is_on(alice["id"])
    with pytest.raises(Conflict):
        totp.begin(alice["id"], "alice")
    with pytest.raises(Conflict):
        totp.confirm(alice["id"], code_at(secret, now_step() + 1))


def test_confirm_without_enrollment_is_not_found(ctx, alice):
    with pytest.raises(NotFound):
        totp.confirm(alice["id"], "123456")


def test_a_code_is_accepted_once_and_older_steps_never_again(ctx, alice):
    secret, confirmed_step = enrolled(alice["id"])
    assert not totp.verify(alice["id"], code_at(secret, confirmed_step)), "the confirming code was replayed"
    assert totp.verify(alice["id"], code_at(secret, now_step()))
    assert not totp.verify(alice["id"], code_at(secret, now_step())), "a replay was accepted"


def test_one_step_of_skew_either_side_and_no_more(ctx, alice):
    secret, _ = enrolled(alice["id"])
    assert not totp.verify(alice["id"], code_at(secret, now_step() + 2))
    assert not totp.verify(alice["id"], code_at(secret, now_step() - 2))
    assert totp.verify(alice["id"], code_at(secret, now_step() + 1))
    # The next step was used: the current one is now older, so it is refused too.
    assert not totp.verify(alice["id"], code_at(secret, now_step()))


@pytest.mark.parametrize("code", [None, 123456, "12345", "1234567", "12345a", "１２３４５６", ""])
def test_malformed_codes_are_refused_without_error(ctx, alice, code):
    enrolled(alice["id"])
    assert not totp.verify(alice["id"], code)


def test_recovery_codes_are_ten_single_use_and_stored_as_hashes(ctx, alice):
    codes = recovery_codes.regenerate(alice["id"])
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = {r["code_hash"] for r in db.many(
        "SELECT code_hash FROM mfa_recovery_code WHERE user_id = %s", (alice["id"],))}
    assert len(stored) == 10 and not stored & set(codes)
    assert recovery_codes.use(alice["id"], codes[0].upper().replace("-", " "))  # any layout
    assert not recovery_codes.use(alice["id"], codes[0]), "a recovery code was used twice"
    assert recovery_codes.remaining(alice["id"]) == 9


def test_regenerating_kills_the_old_codes(ctx, alice):
    old = recovery_codes.regenerate(alice["id"])
    new = recovery_codes.regenerate(alice["id"])
    assert not recovery_codes.use(alice["id"], old[1])
    assert recovery_codes.use(alice["id"], new[1])


def test_a_recovery_code_is_another_users_never(ctx, alice, make_user):
    bob = make_user("bob")
    codes = recovery_codes.regenerate(alice["id"])
    assert not recovery_codes.use(bob["id"], codes[0])


def test_an_mfa_token_is_single_use_and_allows_five_tries(ctx, alice):
    token = mfa.start(alice["id"])
    for _ in range(mfa.MAX_ATTEMPTS):
        mfa.claim(token)
    with pytest.raises(TokenError):
        mfa.claim(token)
    token = mfa.start(alice["id"])
    challenge = mfa.claim(token)
    assert challenge.user_id == alice["id"] and challenge.first_amr == "pwd"
    mfa.complete(challenge)
    with pytest.raises(TokenError):
        mfa.claim(token)
    with pytest.raises(TokenError):
        mfa.complete(challenge)


def test_an_expired_mfa_token_is_refused(ctx, alice):
    token = mfa.start(alice["id"])
    db.execute("UPDATE mfa_challenge SET expires_at = NOW() - INTERVAL 1 SECOND")
    with pytest.raises(TokenError):
        mfa.claim(token)


def test_failed_codes_grow_a_delay_per_account(make_app, alice):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_FREE_FAILURES=3)
    with app.app_context():
        for _ in range(3):
            assert mfa.verify_code(alice["id"], code="000000") is None
        with pytest.raises(Throttled) as caught:
            mfa.verify_code(alice["id"], code="000000")
        assert 1 <= caught.value.retry_after <= 2
        db.close_db()


def test_racing_requests_with_one_code_have_exactly_one_winner(app, alice):
    import threading
    with app.app_context():
        secret, _ = enrolled(alice["id"])
        db.close_db()
    code = code_at(secret, now_step())
    results, start = [], threading.Barrier(8)

    def attempt():
        with app.app_context():
            start.wait()
            results.append(totp.verify(alice["id"], code))
            db.close_db()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_a_recovery_code_use_is_logged_as_a_security_event(ctx, alice, caplog):
    enrolled(alice["id"])
    codes = recovery_codes.regenerate(alice["id"])
    with caplog.at_level("WARNING", logger="accounts.mfa"):
        assert mfa.check_code(alice["id"], recovery_code=codes[0]) == "rc"
    assert f"recovery code used by user {alice['id']} (9 left)" in caplog.text
    assert codes[0] not in caplog.text
