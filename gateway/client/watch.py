"""Follow a job until it finishes: a live progress bar per stage in a terminal, a line per
change elsewhere. It polls GET /api/jobs/{id}/, so it needs nothing but the API."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID
from rich.progress_bar import ProgressBar
from rich.text import Text

from gateway.client.api import Api, ApiError, Unreachable
from gateway.client.render import FINISHED, STYLES, error_line, plain, stages, status

INTERVAL = 0.5  # seconds between two reads of the job


class Display(Protocol):
    """Shows each state of the job it is given, and a passing trouble."""

    def show(self, job: dict[str, Any]) -> None: ...

    def note(self, message: str) -> None: ...


def describe(stage: dict[str, Any]) -> Text:
    """What a stage is doing, in a few words."""
    state = str(stage.get("status"))
    attempts = int(stage.get("attempts") or 0)
    if state == "started":
        words = f"running, attempt {attempts}"
    elif state == "completed":
        words = "completed" + (f" after {attempts} attempts" if attempts > 1 else "")
    elif state == "failed":
        words = f"failed after {attempts} attempts: {stage.get('error', '')}"
    else:
        words = state
    return Text(plain(words).plain, style=STYLES.get(state, ""))


class Lines:
    """One line per change of a stage (status or attempt) or of the job: for pipes and logs."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.seen: dict[str, tuple[Any, ...]] = {}

    def show(self, job: dict[str, Any]) -> None:
        for name, stage in stages(job):
            key = (stage.get("status"), stage.get("attempts"))
            if self.seen.get(name) != key:
                self.seen[name] = key
                self.console.print(plain(f"{name}: ") + describe(stage))
        if self.seen.get("") != (job.get("status"),):
            self.seen[""] = (job.get("status"),)
            self.console.print(Text("job: ") + status(str(job.get("status"))))

    def note(self, message: str) -> None:
        self.console.print(plain(message), style="yellow")


class StateColumn(ProgressColumn):
    """The stage's state, as `describe` wrote it (plain text, never markup)."""

    def render(self, task: Task) -> Text:
        state = task.fields.get("state")
        return state if isinstance(state, Text) else Text("")


class StageBar(BarColumn):
    """Empty while the stage is pending, pulsing while it runs, full once it completed."""

    def render(self, task: Task) -> ProgressBar:
        bar = super().render(task)
        bar.pulse = bool(task.fields.get("running"))
        return bar


class RunTimeColumn(ProgressColumn):
    """How long this watch saw the stage run (blank if it never saw it running)."""

    def render(self, task: Task) -> Text:
        since, took = task.fields.get("since"), task.fields.get("took")
        seconds = took if took is not None else None if since is None else time.monotonic() - since
        return Text("" if seconds is None else f"{seconds:5.1f} s", style="progress.elapsed")


class Bars:
    """A live progress bar per stage (rich.progress), redrawn in place."""

    def __init__(self, console: Console, job: dict[str, Any]) -> None:
        width = max([len(name) for name, _ in stages(job)] or [0])
        self.progress = Progress(
            f"{{task.description:<{width}}}",
            StageBar(bar_width=30),
            RunTimeColumn(),
            StateColumn(),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {}
        for name, _ in stages(job):
            self.tasks[name] = self.progress.add_task(name, total=1, state=Text(""))

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def show(self, job: dict[str, Any]) -> None:
        for name, stage in stages(job):
            task_id = self.tasks.get(name)
            if task_id is None:
                continue
            fields = self.progress.tasks[task_id].fields
            if stage.get("status") == "started":
                if not fields.get("running"):  # again after a retry or a redelivery: anew
                    self.progress.update(task_id, completed=0, running=True, since=time.monotonic(), took=None)  # fmt: skip
            else:
                if fields.get("running"):
                    self.progress.update(task_id, running=False, took=time.monotonic() - fields["since"])  # fmt: skip
                done = 1 if stage.get("status") == "completed" else 0
                self.progress.update(task_id, completed=done)
            self.progress.update(task_id, state=describe(stage))

    def note(self, message: str) -> None:
        self.progress.console.print(plain(message), style="yellow")


def follow(api: Api, job_id: str, display: Display, interval: float = INTERVAL) -> dict[str, Any]:
    """Show the job until it is completed, failed or cancelled; return it as it ended.

    The first read's error is raised; later ones (the API restarting, a 503) are noted and the
    job is read again at the next interval.
    """
    job = api.job(job_id)
    trouble = ""
    while True:
        display.show(job)
        if job.get("status") in FINISHED:
            return job
        time.sleep(interval)
        try:
            job = api.job(job_id)
            trouble = ""
        except (Unreachable, ApiError) as error:
            if isinstance(error, ApiError) and error.status < 500:
                raise
            if str(error) != trouble:
                trouble = str(error)
                display.note(f"{trouble.splitlines()[0]}; still trying")


def ending(job: dict[str, Any]) -> Text:
    """The last line: how the job ended."""
    state = str(job.get("status"))
    words = f"job {job.get('id')} {state}"
    if state == "failed":
        words += f" at {error_line(job)}"
    return Text(plain(words).plain, style=STYLES.get(state, "bold"))
