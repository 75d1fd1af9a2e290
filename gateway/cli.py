"""Commands of the `gateway` console script (a Flask CLI group over create_app)."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup

from gateway.db import upgrade_schema


@click.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema (Alembic)."""
    upgrade_schema(current_app.extensions["gateway"].settings.database_url)
    click.echo("database schema is up to date")


def init_app(app: Flask) -> None:
    """Register the commands on `app`."""
    app.cli.add_command(migrate_command)


def _create_app() -> Flask:
    from gateway import create_app

    return create_app()


main = FlaskGroup(
    create_app=_create_app, add_default_commands=True, help="Document Processing Gateway"
)
