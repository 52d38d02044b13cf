"""Operator commands for keys and revocation state: `flask --app app keys ...`, `purge-tokens`, `mfa-reset`.

No command ever prints key material or a secret: only key ids, algorithms,
roles and file paths.
"""
import logging
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

import db
from accounts import dpop, keys, mfa, personal_tokens, revocation, tokens, users

log = logging.getLogger(__name__)

keys_group = AppGroup("keys", help="Generate, rotate and list the token signing keys.")


def _fail(message):
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


SIGNING_FILE = "signing.pem"


def _write(path, data, mode):
    """keys.write_file, or exit 1 with one line naming the path and the reason."""
    try:
        keys.write_file(path, data, mode)
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror}; choose a folder you can write")


@keys_group.command("generate")
@click.option("--alg", type=click.Choice(keys.ASYMMETRIC), default=None,
              help="Key type: RS256, ES256 or EdDSA (default: JWT_ALGORITHM, else ES256).")
@click.option("--out", "out_dir", default="keys", show_default=True,
              help="Folder for the new PEM private key, OUT/signing.pem (created; the file has mode 0600).")
def generate_command(alg, out_dir):
    """Write a new private key to OUT/signing.pem and say how to configure it.

    The file is named by its role, not by its kid: `keys rotate` replaces
    its content, and the key it retires goes to JWT_VERIFY_KEYS_DIR/<kid>.pem.
    """
    configured = current_app.config["JWT_ALGORITHM"]
    alg = alg or (configured if configured in keys.ASYMMETRIC else "ES256")
    path = Path(out_dir) / SIGNING_FILE
    if path.exists():
        _fail(f"{path} exists; rotate it with `flask keys rotate`, or choose another --out")
    private = keys.generate(alg)
    kid = keys.thumbprint(private.public_key())
    _write(path, keys.private_pem(private), 0o600)
    click.echo(f"wrote {alg} private key {path} (kid {kid})")
    click.echo(f"to sign with it set: JWT_ALGORITHM={alg} JWT_PRIVATE_KEY_FILE={path} "
               f"JWT_VERIFY_KEYS_DIR={out_dir}")


@keys_group.command("rotate")
def rotate_command():
    """Make a new signing key; the current one's public half moves to JWT_VERIFY_KEYS_DIR/<kid>.pem.

    JWT_PRIVATE_KEY_FILE keeps its path and gets the new key: a file named
    after a kid always holds that kid's key, so a key file named after the
    current kid is refused (it would soon hold another key).
    """
    config = current_app.config
    alg = config["JWT_ALGORITHM"]
    if alg not in keys.ASYMMETRIC:
        _fail("HS256 secrets rotate by configuration: add the current SECRET_KEY to "
              "SECRET_KEY_PREVIOUS and set a new SECRET_KEY (make secret), then restart")
    verify_dir = config["JWT_VERIFY_KEYS_DIR"]
    if not verify_dir:
        _fail("set JWT_VERIFY_KEYS_DIR: the old key must stay there to verify the tokens it signed")
    key_file = Path(config["JWT_PRIVATE_KEY_FILE"])
    old = keys.signing_key(key_file, alg)
    if key_file.stem == old.kid:
        _fail(f"JWT_PRIVATE_KEY_FILE {key_file} is named after its key id, and rotating would put "
              f"another key under that name: rename it once (mv {key_file} "
              f"{key_file.with_name(SIGNING_FILE)}), set JWT_PRIVATE_KEY_FILE to the new name, "
              "reload, then rotate")
    retired = Path(verify_dir) / f"{old.kid}.pem"
    _write(retired, keys.public_pem(old.verify_key), 0o644)
    private = keys.generate(alg)
    _write(key_file, keys.private_pem(private), 0o600)
    click.echo(f"new signing key {keys.thumbprint(private.public_key())} ({alg}) in {key_file}")
    click.echo(f"old key {old.kid} is verify-only in {retired}")
    click.echo("reload the workers to sign with the new key (kill -HUP <server master pid>; "
               "nobody is logged out); "
               f"delete {retired} after JWT_REFRESH_TTL ({config['JWT_REFRESH_TTL']} s) to retire it")


@keys_group.command("list")
def list_command():
    """List the keys of the running configuration: kid, algorithm, role, source."""
    config = current_app.config
    ring = tokens.ring()
    sources = {key.kid: source
               for key, source in keys.entries(config, config["SECRET_KEY"] or "-")}
    click.echo("kid\talg\trole\tsource")
    for key in ring.keys():
        role = "signing" if key is ring.signing else "verify-only"
        source = sources.get(key.kid, "random (SECRET_KEY is not set)")
        click.echo(f"{key.kid}\t{key.alg}\t{role}\t{source}")


@click.command("purge-tokens")
@with_appcontext
def purge_tokens_command():
    """Delete expired revocations, sessions, dead personal tokens and DPoP proof ids (any time, e.g. daily)."""
    try:
        revoked, families = revocation.purge_all()
        personal, proofs = personal_tokens.purge_all(), dpop.purge_replays()
    except db.DatabaseUnavailable as exc:
        _fail(f"cannot reach the database ({exc})")
    click.echo(f"purged {revoked} expired revoked tokens and {families} expired sessions")
    click.echo(f"purged {personal} dead personal access tokens and {proofs} expired DPoP proof ids")


@click.command("mfa-reset")
@with_appcontext
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def mfa_reset_command(username, yes):
    """Remove USERNAME's second factors (app, passkeys, recovery codes) and log them out everywhere.

    For a user who lost their device and their recovery codes: they log in
    with their password alone afterwards and should set up a factor again.
    """
    try:
        row = users.get_by_name(username)
        if row is None:
            _fail(f"no user {username!r}")
        if not yes and not click.confirm(f"Remove every second factor of {username}?"):
            _fail("nothing changed")
        with db.transaction():  # both or neither
            mfa.reset(row["id"])
            users.revoke_everything(row["id"])
    except db.DatabaseUnavailable as exc:
        _fail(f"cannot reach the database ({exc})")
    # The security event: who was reset, never anything secret.
    log.warning("security event: mfa-reset of user %s (%s) by an operator", row["id"], username)
    click.echo(f"second factors of {username} removed; their tokens are revoked")


COMMANDS = [keys_group, purge_tokens_command, mfa_reset_command]
