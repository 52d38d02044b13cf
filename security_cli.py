"""Operator commands for keys and revocation state: `flask --app app keys ...`, `purge-tokens`.

No command ever prints key material or a secret: only key ids, algorithms,
roles and file paths.
"""
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

import db
from accounts import keys, revocation, tokens

keys_group = AppGroup("keys", help="Generate, rotate and list the token signing keys.")


def _fail(message):
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@keys_group.command("generate")
@click.option("--alg", type=click.Choice(keys.ASYMMETRIC), default=None,
              help="Key type: RS256, ES256 or EdDSA (default: JWT_ALGORITHM, else ES256).")
@click.option("--out", "out_dir", default="keys", show_default=True,
              help="Folder for the new PEM private key (created, mode 0600 file).")
def generate_command(alg, out_dir):
    """Write a new private key to OUT/<kid>.pem and say how to configure it."""
    configured = current_app.config["JWT_ALGORITHM"]
    alg = alg or (configured if configured in keys.ASYMMETRIC else "ES256")
    private = keys.generate(alg)
    kid = keys.thumbprint(private.public_key())
    path = Path(out_dir) / f"{kid}.pem"
    keys.write_file(path, keys.private_pem(private), 0o600)
    click.echo(f"wrote {alg} private key {path} (kid {kid})")
    click.echo(f"to sign with it set: JWT_ALGORITHM={alg} JWT_PRIVATE_KEY_FILE={path}")


@keys_group.command("rotate")
def rotate_command():
    """Make a new signing key; the current one moves to JWT_VERIFY_KEYS_DIR (verify-only)."""
    config = current_app.config
    alg = config["JWT_ALGORITHM"]
    if alg not in keys.ASYMMETRIC:
        _fail("HS256 secrets rotate by configuration: add the current SECRET_KEY to "
              "SECRET_KEY_PREVIOUS and set a new SECRET_KEY (make secret), then restart")
    verify_dir = config["JWT_VERIFY_KEYS_DIR"]
    if not verify_dir:
        _fail("set JWT_VERIFY_KEYS_DIR: the old key must stay there to verify the tokens it signed")
    key_file = config["JWT_PRIVATE_KEY_FILE"]
    old = keys.signing_key(key_file, alg)
    retired = Path(verify_dir) / f"{old.kid}.pem"
    keys.write_file(retired, keys.public_pem(old.verify_key), 0o644)
    private = keys.generate(alg)
    keys.write_file(key_file, keys.private_pem(private), 0o600)
    click.echo(f"new signing key {keys.thumbprint(private.public_key())} ({alg}) in {key_file}")
    click.echo(f"old key {old.kid} is verify-only in {retired}")
    click.echo("restart or reload the server (gunicorn: kill -HUP) to sign with the new key; "
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
    """Delete expired revocations and expired sessions (safe to run any time, e.g. daily)."""
    try:
        revoked, families = revocation.purge_all()
    except db.DatabaseUnavailable as exc:
        _fail(f"cannot reach the database ({exc})")
    click.echo(f"purged {revoked} expired revoked tokens and {families} expired sessions")


COMMANDS = [keys_group, purge_tokens_command]
