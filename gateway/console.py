"""The `gateway` console script: the API client's commands, and the app's.

The client's (submit, status, list, cancel, retry, watch, events tail; gateway.client) talk to a
running system and never build the app, nor import Flask. Any other name is looked up among
the app's commands (migrate, relay, consume, dlq, keys, probe; gateway.cli, plus Flask's run,
shell and routes) as Flask's own command group does, inside `create_app()`, whose settings
take REDIS_URL, DATABASE_URL and EVENTS_STREAM from the running `make run` (gateway.runfile)
when they are not set.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from gateway import runfile
from gateway.client.commands import COMMANDS
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from flask import Flask
    from flask.cli import FlaskGroup


def _create_app() -> Flask:
    from gateway import create_app
    from gateway.config import Settings

    try:
        return create_app(Settings.from_env(runfile.fill(os.environ)))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _app_commands(ctx: click.Context) -> FlaskGroup:
    """Flask's command group over `_create_app`, its app found through `ctx`."""
    from flask.cli import FlaskGroup, ScriptInfo

    if not isinstance(ctx.obj, ScriptInfo):
        ctx.obj = ScriptInfo(create_app=_create_app)
    return FlaskGroup(create_app=_create_app, add_default_commands=True, load_dotenv=False)


class Gateway(click.Group):
    """The client's commands, then the app's: the app is built only for one of these."""

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or _app_commands(ctx).get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        group = _app_commands(ctx)
        try:
            ctx.obj.load_app()
        except click.ClickException as exc:  # say why, and list what works without the app
            click.secho(f"Error: {exc.format_message()}\n", err=True, fg="red")
            return sorted(names | set(click.Group.list_commands(group, ctx)))
        return sorted(names | set(group.list_commands(ctx)))


main = Gateway(
    help="Document Processing Gateway: the API client's commands, and the system's.",
    commands=COMMANDS,
)
