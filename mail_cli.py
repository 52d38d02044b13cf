"""Operator commands for account email and security events: `flask --app app <command>`."""
import time

import click
from flask.cli import with_appcontext

import db
from accounts import events, mail_sender
from cli import needs_database


@click.command("purge-events")
@with_appcontext
@click.option("--older-than", "days", type=click.IntRange(min=1), required=True,
              help="Delete security events older than this many days.")
@needs_database
def purge_events_command(days):
    """Delete security events older than DAYS days (in batches); print how many."""
    deleted = events.purge(days)
    click.echo(f"deleted {deleted} security events older than {days} days")


@click.command("deliver-mail")
@with_appcontext
@click.option("--watch", is_flag=True, help="Keep delivering (for MAIL_SENDER=false deployments).")
@needs_database
def deliver_mail_command(watch):
    """Deliver the outbox's due messages once (or, with --watch, until stopped)."""
    while True:
        try:
            count = mail_sender.deliver_due()
            while count:
                click.echo(f"processed {count} outbox rows")
                count = mail_sender.deliver_due()
        except db.DatabaseUnavailable:
            if not watch:
                raise  # needs_database says what to do
            click.echo("database unavailable; retrying", err=True)
        finally:
            db.close_db()
        if not watch:
            return
        time.sleep(mail_sender.IDLE_WAIT)


COMMANDS = [purge_events_command, deliver_mail_command]


def init_app(app):
    """Register these commands on the app's CLI."""
    for command in COMMANDS:
        app.cli.add_command(command)
