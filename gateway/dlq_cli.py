"""`gateway dlq`: list, replay and purge the dead-letter stream (`events.deadletter`)."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from rich.console import Console
from rich.table import Table

from events import deadletter
from events.display import printable
from gateway.services import get_services

_stream_option = click.option("--stream", help="Dead-letter stream [DEAD_LETTER_STREAM].")
_group_option = click.option("--group", help="Only the letters this consumer group gave up on.")


@click.group("dlq", cls=AppGroup)
def dlq_command() -> None:
    """Inspect and recover events a consumer gave up on."""


def _stream(stream: str | None) -> str:
    return stream or get_services().settings.dead_letter_stream


def _chosen(
    stream: str, ids: tuple[str, ...], every: bool, group: str | None
) -> list[deadletter.Letter]:
    if bool(ids) == every:
        raise click.UsageError("give letter ids, or --all")
    found = deadletter.letters(get_services().redis, stream, group)
    if every:
        return found
    by_id = {letter.id: letter for letter in found}
    missing = [entry_id for entry_id in ids if entry_id not in by_id]
    if missing:
        raise click.ClickException(f"no such letter in {stream}: {', '.join(missing)}")
    return [by_id[entry_id] for entry_id in ids]


@dlq_command.command("list")
@_stream_option
@_group_option
def list_command(stream: str | None, group: str | None) -> None:
    """Show each letter: its event, the group that gave up, deliveries and the error."""
    stream = _stream(stream)
    found = deadletter.letters(get_services().redis, stream, group)
    table = Table(title=f"{stream}: {len(found)} letter(s)", title_justify="left")
    for column in ("letter id", "job", "event", "group", "deliveries", "error"):
        table.add_column(column, overflow="fold")
    for letter in found:
        table.add_row(
            *(
                printable(value)
                for value in (
                    letter.id,
                    letter.get("job_id"),
                    letter.get("event_type"),
                    letter.get("group"),
                    letter.get("deliveries"),
                    letter.get("reason"),
                )
            )
        )
    # A pipe gets whole lines, not a table folded to 80 columns.
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)


@dlq_command.command("replay")
@click.argument("ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every letter (of --group, if given).")
@_stream_option
@_group_option
def replay_command(
    ids: tuple[str, ...], every: bool, stream: str | None, group: str | None
) -> None:
    """Append letters back onto their stream, where every group reads them again."""
    stream = _stream(stream)
    chosen = _chosen(stream, ids, every, group)
    stray = [letter.id for letter in chosen if not letter.get("original_stream")]
    if stray:
        raise click.ClickException(f"no original_stream, cannot replay: {', '.join(stray)}")
    appended = deadletter.replay(get_services().redis, stream, chosen)
    for letter, new_id in zip(chosen, appended, strict=True):
        click.echo(f"replayed {letter.id} onto {letter.get('original_stream')} as {new_id}")
    click.echo(f"{len(appended)} letter(s) replayed")


@dlq_command.command("purge")
@click.argument("ids", nargs=-1)
@click.option("--yes", is_flag=True, help="Do not ask before deleting every letter.")
@_stream_option
def purge_command(ids: tuple[str, ...], yes: bool, stream: str | None) -> None:
    """Delete the given letters, or every letter."""
    stream = _stream(stream)
    if ids:
        count = deadletter.purge(get_services().redis, stream, _chosen(stream, ids, False, None))
    else:
        if not yes:
            click.confirm(f"Delete every letter of {stream}?", abort=True)
        count = deadletter.purge(get_services().redis, stream)
    click.echo(f"{count} letter(s) deleted")
