"""The client's commands of the `gateway` script: submit, status, list, cancel, retry, watch,
and events tail. They find the API at GATEWAY_URL, else at the running `make run`'s address
(its run file), else at make run's default, and send GATEWAY_API_KEY when it is set.

Exit status: 0 done (the job completed, when waiting for it), 1 the API or Redis said no or
did not answer (the problem's detail is printed), 2 a usage error, 3 the job failed,
4 the job was cancelled.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from gateway import runfile
from gateway.client import render, watch
from gateway.client.api import Api, ApiError, ClientError, document

STAGES = ("extraction", "analysis", "enrichment")
STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
EXIT_FAILED = 3
EXIT_CANCELLED = 4
DEFAULT_STREAM = "job_events"

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(command: F) -> F:
    """Turn the client's errors into click's: one `Error: …` line on stderr, exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ApiError as error:
            hint = ""
            if error.status == 401 and not os.environ.get("GATEWAY_API_KEY"):
                hint = "\n(this API asks for a key: set GATEWAY_API_KEY)"
            raise click.ClickException(error.message + hint) from None
        except ClientError as error:
            raise click.ClickException(str(error)) from None

    return wrapper  # type: ignore[return-value]


def _api() -> Api:
    return Api.from_environ(os.environ)


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))


def _exit_for(job: dict[str, Any]) -> None:
    codes = {"failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}
    code = codes.get(str(job.get("status")), 0)
    if code:
        sys.exit(code)


def _follow(api: Api, job_id: str, console: Any, interval: float) -> dict[str, Any]:
    """Follow the job to its end on `console` (bars in a terminal); return it."""
    job = api.job(job_id)
    name = f"{job.get('document_name')} ({job.get('document_type')})"
    console.print(render.plain(f"job {job_id}: {name}"))
    if console.is_terminal:
        with watch.Bars(console, job) as bars:
            job = watch.follow(api, job_id, bars, interval)
    else:
        job = watch.follow(api, job_id, watch.Lines(console), interval)
    console.print(watch.ending(job))
    return job


_interval = click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=watch.INTERVAL,
    show_default=True,
    help="Seconds between two reads of the job.",
)
_json = click.option("--json", "as_json", is_flag=True, help="Print the job as the API returns it.")


@click.command("submit")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--stages",
    default=",".join(STAGES),
    show_default=True,
    help="Comma-separated stages, an ordered prefix of the pipeline.",
)
@click.option("--name", help="document_name  [default: the file's name, or stdin]")
@click.option("--type", "document_type", help="document_type  [default: the file's extension, or text]")  # fmt: skip
@click.option("--wait", is_flag=True, help="Follow the job until it finishes, as watch does, and exit as it does.")  # fmt: skip
@_interval
@_json
@reports_errors
def submit_command(
    file: IO[bytes],
    stages: str,
    name: str | None,
    document_type: str | None,
    wait: bool,
    interval: float,
    as_json: bool,
) -> None:
    """Create a job from FILE (- reads stdin) and print its id. Plain text goes as
    document_content, any other file as document_base64 (the API detects its type)."""
    path = Path(file.name) if file.name not in ("<stdin>", "-") else None
    body: dict[str, Any] = {
        "document_name": name or (path.name if path else "stdin"),
        "document_type": document_type or (path.suffix.lstrip(".") if path else "") or "text",
        "pipeline_config": {"stages": [s.strip() for s in stages.split(",") if s.strip()]},
        **document(file.read(), path),
    }
    api = _api()
    job = api.create_job(body)
    if as_json and not wait:
        _print_json(job)
        return
    click.echo(job["id"])
    if not wait:
        stage_list = ", ".join(job.get("pipeline_config", {}).get("stages", []))
        click.echo(f"job {job['id']} {job['status']}: {stage_list}", err=True)
        return
    job = _follow(api, job["id"], render.console(stderr=True), interval)
    if as_json:
        _print_json(job)
    _exit_for(job)


@click.command("status")
@click.argument("job_id")
@_json
@reports_errors
def status_command(job_id: str, as_json: bool) -> None:
    """Show a job: its status, and each stage's status, attempts and result or error."""
    job = _api().job(job_id)
    if as_json:
        _print_json(job)
    else:
        render.console().print(render.job_view(job))


@click.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only jobs in this status (repeatable).")  # fmt: skip
@click.option("--type", "document_type", help="Only jobs of this document_type.")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True, help="Jobs per page.")  # fmt: skip
@click.option("--cursor", help="Start at this page (the next_cursor a previous page gave).")
@click.option("--all", "every", is_flag=True, help="Every page, not only the first.")
@click.option("--json", "as_json", is_flag=True, help="One job per line, as the API returns it.")
@reports_errors
def list_command(
    statuses: tuple[str, ...],
    document_type: str | None,
    limit: int,
    cursor: str | None,
    every: bool,
    as_json: bool,
) -> None:
    """List jobs, newest first, a page at a time."""
    api, console = _api(), render.console()
    while True:
        page = api.jobs(status=list(statuses), document_type=document_type, limit=limit, cursor=cursor)  # fmt: skip
        if as_json:
            for job in page["results"]:
                _print_json(job)
        elif page["results"] or not cursor:
            console.print(render.jobs_table(page["results"]))
        cursor = page.get("next_cursor")
        if not cursor:
            return
        if not every:
            click.echo(f"more: gateway list --cursor {cursor} (same filters), or --all", err=True)
            return


@click.command("cancel")
@click.argument("job_id")
@_json
@reports_errors
def cancel_command(job_id: str, as_json: bool) -> None:
    """Cancel a pending or processing job."""
    job = _api().act(job_id, "cancel")
    if as_json:
        _print_json(job)
    else:
        click.echo(f"job {job['id']} {job['status']}")


@click.command("retry")
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Follow the job until it finishes, as watch does, and exit as it does.")  # fmt: skip
@_interval
@_json
@reports_errors
def retry_command(job_id: str, wait: bool, interval: float, as_json: bool) -> None:
    """Resume a failed job from the stage that failed; completed stages are kept."""
    api = _api()
    job = api.act(job_id, "retry")
    if wait:
        job = _follow(api, job_id, render.console(stderr=as_json), interval)
    if as_json:
        _print_json(job)
    elif not wait:
        rest = [name for name, stage in render.stages(job) if stage.get("status") != "completed"]
        click.echo(f"job {job['id']} {job['status']} again, from {', '.join(rest) or '-'}")
    _exit_for(job)


@click.command("watch")
@click.argument("job_id")
@_interval
@reports_errors
def watch_command(job_id: str, interval: float) -> None:
    """Follow a job until it finishes, with a progress bar per stage; exit 3 if it failed,
    4 if it was cancelled."""
    job = _follow(_api(), job_id, render.console(), interval)
    _exit_for(job)


@click.group("events")
def events_group() -> None:
    """The events stream, read directly from Redis."""


@events_group.command("tail")
@click.option("--job", "job_id", help="Only this job's events.")
@click.option("--tenant", help="Only this tenant's events.")
@click.option("--stream", help="Stream to read  [default: EVENTS_STREAM, make run's, or job_events]")  # fmt: skip
@click.option("--from-start", is_flag=True, help="Print the entries already in the stream first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry, its fields as stored.")  # fmt: skip
@reports_errors
def tail_command(
    job_id: str | None, tenant: str | None, stream: str | None, from_start: bool, as_json: bool
) -> None:
    """Follow the events stream as readable lines until Ctrl-C. Redis is REDIS_URL, else the
    running `make run`'s (its run file)."""
    import redis  # here: the other commands need neither it nor its import time

    from gateway.client import tail

    environ = runfile.fill(os.environ)
    url = environ.get("REDIS_URL", "").strip()
    if not url:
        raise ClientError(runfile.NO_REDIS_URL)
    stream = stream or environ.get("EVENTS_STREAM", "").strip() or DEFAULT_STREAM
    console = render.console()
    out = render.console(stderr=True)

    def show(entry_id: str, fields: dict[str, str]) -> None:
        if as_json:
            click.echo(tail.as_json(entry_id, fields))
        else:
            console.print(tail.line(entry_id, fields))

    client = redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=tail.BLOCK_MS / 1000 + 5,
        socket_connect_timeout=5,
    )
    follower = tail.Tail(client, stream, show, lambda m: out.print(render.plain(m), style="yellow"), job_id, tenant)  # fmt: skip
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        follower.run(from_start)
    except KeyboardInterrupt:
        pass  # the way to stop following
    finally:
        client.close()


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


COMMANDS = (
    submit_command,
    status_command,
    list_command,
    cancel_command,
    retry_command,
    watch_command,
    events_group,
)
