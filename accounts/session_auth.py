"""How and when a session's user authenticated: the `session_auth` table.

One row per session (refresh family): `amr` (RFC 8176 method references,
e.g. ["pwd", "otp"]) and `auth_time` (epoch seconds). Every access token of the
session carries both; a refresh copies them from here, never from the
client, so a refresh can neither upgrade amr nor freshen auth_time. Only a
re-authentication (POST /auth/reauth) moves auth_time forward.
"""
import time

import db
from accounts import sessions

INSERT = "INSERT INTO session_auth (family_id, amr, auth_time) VALUES (%s, %s, %s)"
SELECT = "SELECT amr, auth_time FROM session_auth WHERE family_id = %s"
REAUTH = "UPDATE session_auth SET amr = %s, auth_time = %s WHERE family_id = %s"


def record(family_id: str, amr: list[str], auth_time: int | None = None) -> dict:
    """Store how session `family_id` began; return its claims {"amr", "auth_time"}."""
    auth_time = int(time.time()) if auth_time is None else auth_time
    db.execute(INSERT, (family_id, " ".join(amr), auth_time))
    return {"amr": list(amr), "auth_time": auth_time}


def begin(user_id: int, user_agent: str | None, ip: str | None,
          amr: list[str]) -> tuple[sessions.Family, dict]:
    """Start a session authenticated by `amr` now: the family and its claims, written as one transaction."""
    with db.transaction():
        family = sessions.start(user_id, user_agent, ip)
        return family, record(family.id, amr)


def claims(family_id: str) -> dict | None:
    """The session's {"amr", "auth_time"}, or None for a session from before this table."""
    row = db.one(SELECT, (family_id,))
    if row is None:
        return None
    return {"amr": row["amr"].split(), "auth_time": row["auth_time"]}


def reauthenticated(family_id: str, method: str) -> dict:
    """The user just proved themselves again with `method`: auth_time is now.

    amr becomes the session's methods plus `method` (so a password session
    re-authenticated with a code reads ["pwd", "otp"]). Returns the new claims;
    a session without a row (issued before this table) gets one.
    """
    now = int(time.time())
    current = claims(family_id)
    amr = (current or {"amr": []})["amr"]
    if method not in amr:
        amr = amr + [method]
    if current is None:
        return record(family_id, amr, now)
    db.execute(REAUTH, (" ".join(amr), now, family_id))
    return {"amr": amr, "auth_time": now}
