"""Operator commands for account email and security events: `flask --app app <command>`."""
import sys
import time

import click
from flask.cli import with_appcontext

import db
from accounts import events, mail_sender


@click.command("purge-events")
@with_appcontext
@click.option("--older-than", "days", type=click.IntRange(min=1), required=True,
              help="Delete security events older than this many days.")
def purge_events_command(days):
    """Delete security events older than DAYS days (in batches); print how many."""
    try:
        deleted = events.purge(days)
    except db.DatabaseUnavailable as exc:
        click.echo(f"error: database unavailable ({exc})", err=True)
        sys.exit(1)
    click.echo(f"deleted {deleted} security events older than {days} days")


@click.command("deliver-mail")
@with_appcontext
@click.option("--watch", is_flag=True, help="Keep delivering (for MAIL_SENDER=false deployments).")
def deliver_mail_command(watch):
    """Deliver the outbox's due messages once (or, with --watch, until stopped)."""
    while True:
        try:
            count = mail_sender.deliver_due()
            while count:
                click.echo(f"processed {count} outbox rows")
                count = mail_sender.deliver_due()
        except db.DatabaseUnavailable as exc:
            click.echo(f"error: database unavailable ({exc})", err=True)
            if not watch:
                sys.exit(1)
        if not watch:
            return
        time.sleep(mail_sender.IDLE_WAIT)


COMMANDS = [purge_events_command, deliver_mail_command]


def init_app(app):
    """Register these commands on the app's CLI."""
    for command in COMMANDS:
        app.cli.add_command(command)
