"""How a job and a page of jobs look in a terminal (rich); every client-given string is shown
as plain, escaped text, never as markup."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from events.display import printable, summarise

FINISHED = ("completed", "failed", "cancelled")
STYLES = {
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
    "skipped": "dim",
    "started": "cyan",
    "processing": "cyan",
    "pending": "dim",
}


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr); a pipe gets whole lines, not tables folded to 80 columns."""
    found = Console(stderr=stderr)
    return found if found.is_terminal else Console(stderr=stderr, width=200)


def plain(value: object) -> Text:
    """`value` as text with no markup, control characters escaped."""
    return Text(printable("" if value is None else str(value)))


def status(value: str) -> Text:
    """A job or stage status, coloured."""
    return Text(printable(value), style=STYLES.get(value, ""))


def stages(job: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(stage, its state) in pipeline order."""
    found = job.get("results", {}).get("stages", {})
    order = job.get("pipeline_config", {}).get("stages") or list(found)
    return [(name, found.get(name, {"status": "pending"})) for name in order]


def outcome(stage: dict[str, Any], width: int = 50) -> str:
    """A stage's result in one line (its error if it failed)."""
    if stage.get("error"):
        return str(stage["error"])
    results = stage.get("results")
    return summarise(results, width) if isinstance(results, dict) else ""


def error_line(job: dict[str, Any]) -> str:
    """`stage: message` of a failed job, else ''."""
    errors = job.get("errors")
    if not isinstance(errors, dict):
        return ""
    return f"{errors.get('stage')}: {errors.get('message')}"


def job_view(job: dict[str, Any]) -> RenderableType:
    """A job: its fields, then one row per stage."""
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column()
    fields.add_row("job", plain(job.get("id")))
    fields.add_row("document", plain(f"{job.get('document_name')} ({job.get('document_type')})"))
    fields.add_row("status", status(str(job.get("status"))))
    if error := error_line(job):
        fields.add_row("error", Text(printable(error), style="red"))
    fields.add_row("created", plain(job.get("created_at")))
    fields.add_row("updated", plain(job.get("updated_at")))
    table = Table(box=None, padding=(0, 2), pad_edge=False)
    for column in ("stage", "status", "attempts", "at", "result"):
        table.add_column(column, overflow="fold")
    for name, stage in stages(job):
        table.add_row(
            plain(name),
            status(str(stage.get("status"))),
            plain(stage.get("attempts", "")),
            plain(stage.get("timestamp", "")),
            plain(outcome(stage)),
        )
    return Group(fields, Text(""), table)


def jobs_table(jobs: list[dict[str, Any]]) -> Table:
    """A page of jobs, one row each."""
    table = Table(box=None, padding=(0, 2), pad_edge=False)
    for column in ("id", "status", "stages", "type", "name", "created"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        done = sum(1 for _, stage in stages(job) if stage.get("status") == "completed")
        table.add_row(
            plain(job.get("id")),
            status(str(job.get("status"))),
            plain(f"{done}/{len(stages(job))}"),
            plain(job.get("document_type")),
            plain(job.get("document_name")),
            plain(job.get("created_at")),
        )
    return table
