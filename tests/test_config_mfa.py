"""The second-factor settings: production needs MFA_ENCRYPTION_KEY; keys and PUBLIC_URL are checked."""
import re

import pytest

import app as app_module
import config

STRONG = "s" * 48
MFA_KEY = "m" * 43 + "="


def test_production_refuses_to_start_without_an_mfa_key_in_one_line():
    with pytest.raises(config.ConfigError) as caught:
        app_module.create_app(env={"APP_ENV": "production", "SECRET_KEY": STRONG})
    message = str(caught.value)
    assert message.startswith("MFA_ENCRYPTION_KEY is not set (it encrypts TOTP secrets); generate one with:")
    assert "\n" not in message


def test_production_starts_with_an_mfa_key():
    application = app_module.create_app(env={"APP_ENV": "production", "SECRET_KEY": STRONG,
                                             "MFA_ENCRYPTION_KEY": MFA_KEY})
    assert application.config["MFA_ENCRYPTION_KEY"] == MFA_KEY


@pytest.mark.parametrize("env, message", [
    ({"MFA_ENCRYPTION_KEY": "not-a-key"}, "MFA_ENCRYPTION_KEY is not a Fernet key"),
    ({"MFA_ENCRYPTION_KEY_PREVIOUS": f"{MFA_KEY},short"}, "MFA_ENCRYPTION_KEY_PREVIOUS is not a Fernet key"),
    ({"PUBLIC_URL": "localhost:5000"}, "PUBLIC_URL must be scheme://host[:port]"),
    ({"PUBLIC_URL": "https://example.com/app"}, "PUBLIC_URL must be scheme://host[:port]"),
])
def test_malformed_mfa_settings_are_refused_everywhere(env, message):
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.validate(config.from_env(dict({"APP_ENV": "development"}, **env)))


def test_defaults_outside_production():
    values = config.from_env({})
    assert values["PUBLIC_URL"] == "http://localhost:5000" and values["STEP_UP_SECONDS"] == 600
    assert values["MFA_TOKEN_TTL"] == 300 and values["MFA_ISSUER"] == "JWT API"
    config.validate(dict(values, APP_ENV="development"))


def test_a_rotated_key_still_decrypts(make_app, make_user):
    """Secrets written under the old key are read after the key moved to MFA_ENCRYPTION_KEY_PREVIOUS."""
    import pyotp
    from cryptography.fernet import Fernet

    import db
    from accounts import totp
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    alice = make_user("alice")
    with make_app(MFA_ENCRYPTION_KEY=old).app_context():
        secret = totp.begin(alice["id"], "alice").secret
        db.close_db()
    with make_app(MFA_ENCRYPTION_KEY=new, MFA_ENCRYPTION_KEY_PREVIOUS=[old]).app_context():
        totp.confirm(alice["id"], pyotp.TOTP(secret).now())
        assert totp.is_on(alice["id"])
        db.close_db()
