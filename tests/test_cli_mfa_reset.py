"""`flask mfa-reset USERNAME`: every factor goes, the user is logged out everywhere, and it is logged."""
import pyotp

from support import bearer, query


def test_mfa_reset_removes_every_factor_and_revokes_tokens(app, client, make_user, caplog):
    alice = make_user("alice")
    token = client.post("/auth", json={"username": "alice", "password": alice["password"]}).get_json()
    headers = bearer(token["access_token"])
    secret = client.post("/mfa/totp", headers=headers).get_json()["secret"]
    assert client.post("/mfa/totp/confirm", headers=headers,
                       json={"code": pyotp.TOTP(secret).now()}).status_code == 200
    result = app.test_cli_runner().invoke(args=["mfa-reset", "alice", "--yes"])
    assert result.exit_code == 0, result.output
    assert result.output == "second factors of alice removed; their tokens are revoked\n"
    assert secret not in result.output and secret not in caplog.text
    assert any("mfa-reset of user" in r.getMessage() for r in caplog.records)
    for table in ("mfa_totp", "mfa_recovery_code", "webauthn_credential", "mfa_challenge"):
        assert query(app, f"SELECT COUNT(*) AS n FROM {table}")[0]["n"] == 0, table
    assert client.get("/rest-auth", headers=headers).status_code == 401
    again = client.post("/auth", json={"username": "alice", "password": alice["password"]})
    assert again.status_code == 200


def test_mfa_reset_of_an_unknown_user_fails(app):
    result = app.test_cli_runner().invoke(args=["mfa-reset", "nobody", "--yes"])
    assert result.exit_code == 1 and "no user 'nobody'" in result.output
