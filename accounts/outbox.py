"""OWNS `mail_outbox`: mail waiting to be sent, written in the transaction of the change.

A row says what to send (a `kind` and a JSON payload), never a token or a
rendered body: the sender (accounts/mail_sender.py) mints tokens and renders
at delivery. States: queued -> sending (claimed, with a lease) -> sent,
skipped (nothing to send, e.g. an unknown account) or failed (refused for
good). A claim whose lease runs out (the sender died) is due again: delivery
is at-least-once, and the window is the time between the SMTP server
accepting a message and the row being marked (docs/security.md).
"""
import json
import uuid
from dataclasses import dataclass

import db

QUEUED, SENDING, SENT, SKIPPED, FAILED = "queued", "sending", "sent", "skipped", "failed"

INSERT = "INSERT INTO mail_outbox (kind, payload, created, next_attempt_at) VALUES (%s, %s, NOW(), NOW())"
# Due: queued and its time has come, or claimed by a sender whose lease ran out.
# SKIP LOCKED: concurrent senders (one per server worker) take disjoint rows.
DUE = """
    SELECT id FROM mail_outbox
    WHERE (state = 'queued' AND next_attempt_at <= NOW())
       OR (state = 'sending' AND lease_until < NOW())
    ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"""
CLAIM = """
    UPDATE mail_outbox
    SET state = 'sending', claim = %s, lease_until = NOW() + INTERVAL %s SECOND,
        attempts = attempts + 1
    WHERE id = %s"""
CLAIMED = "SELECT id, kind, payload, attempts, created FROM mail_outbox WHERE claim = %s ORDER BY id"
# Every transition out of `sending` names the claim, so a sender whose lease
# ran out (and whose row another sender took) changes nothing.
FINISH = """
    UPDATE mail_outbox
    SET state = %s, payload = NULL, claim = NULL, lease_until = NULL,
        last_error = %s, done_at = NOW()
    WHERE id = %s AND claim = %s"""
RETRY = """
    UPDATE mail_outbox
    SET state = 'queued', claim = NULL, lease_until = NULL,
        next_attempt_at = NOW() + INTERVAL %s SECOND, last_error = %s
    WHERE id = %s AND claim = %s"""
PURGE_DONE = "DELETE FROM mail_outbox WHERE done_at < NOW() - INTERVAL %s SECOND LIMIT %s"
NEXT_DUE = """
    SELECT TIMESTAMPDIFF(SECOND, NOW(), MIN(next_attempt_at)) AS wait
    FROM mail_outbox WHERE state = 'queued'"""
ERROR_MAX = 255


@dataclass(frozen=True)
class Item:
    """A claimed row: what to send, how many attempts so far (this one included), and its claim."""

    id: int
    kind: str
    payload: dict
    attempts: int
    created: object
    claim: str


def enqueue(kind, payload):
    """Queue a message of `kind` with `payload` (a JSON-able dict); runs in the caller's transaction."""
    db.execute(INSERT, (kind, json.dumps(payload, separators=(",", ":"))))


def claim(batch, lease):
    """Claim up to `batch` due rows for `lease` seconds; return them as Items (oldest first)."""
    token = uuid.uuid4().hex
    with db.transaction():
        ids = [row["id"] for row in db.many(DUE, (batch,))]
        for row_id in ids:
            db.execute(CLAIM, (token, lease, row_id))
    if not ids:
        return []
    return [Item(r["id"], r["kind"], json.loads(r["payload"] or "{}"), r["attempts"],
                 r["created"], token)
            for r in db.many(CLAIMED, (token,))]


def finish(item, state, error=None):
    """Mark `item` done (SENT, SKIPPED or FAILED) and wipe its payload; False if the claim was lost."""
    return db.execute(FINISH, (state, _cut(error), item.id, item.claim)).rowcount == 1


def retry(item, delay, error):
    """Put `item` back in the queue, due in `delay` seconds; False if the claim was lost."""
    return db.execute(RETRY, (int(delay), _cut(error), item.id, item.claim)).rowcount == 1


def seconds_to_next():
    """Seconds until the next queued row is due (0 if one is due now), or None when none is queued."""
    row = db.one(NEXT_DUE)
    wait = None if row is None else row["wait"]
    return None if wait is None else max(0, wait)


def purge_done(keep_seconds, batch=1000):
    """Delete up to `batch` rows finished more than `keep_seconds` ago; return how many."""
    return db.execute(PURGE_DONE, (keep_seconds, batch)).rowcount


def _cut(error):
    return None if error is None else str(error)[:ERROR_MAX]


AGE = "SELECT TIMESTAMPDIFF(SECOND, created, NOW()) AS age FROM mail_outbox WHERE id = %s"


def age(item):
    """Seconds since `item` was queued."""
    row = db.one(AGE, (item.id,))
    return 0 if row is None else row["age"]
