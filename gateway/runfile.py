"""instance/run.json: where the running `make run` is, for the commands of another shell.

The launcher writes the environment it chose (API, Redis, database and Flower URLs, the
events stream) once it is known, readable by its user only, and removes the file when it
stops. The `gateway` commands take from it each of these variables that is not set, so a
second terminal needs no port copied from the log, and never guesses a default Redis: on a
machine with a Redis of its own, a guess would silently read the wrong server. A file left
behind by a launcher that was killed (its process is gone) is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from gateway.config import DEFAULT_RUN_FILE

VARIABLES = ("GATEWAY_URL", "REDIS_URL", "DATABASE_URL", "EVENTS_STREAM", "FLOWER_URL")
NO_REDIS_URL = (
    "REDIS_URL is not set, and no `make run` is running here to take it from (RUN_FILE, "
    "default instance/run.json): set REDIS_URL=redis://HOST:PORT/DB, or start `make run`"
)


def location(environ: Mapping[str, str]) -> Path:
    """The run file: RUN_FILE, else instance/run.json."""
    return Path(environ.get("RUN_FILE", "").strip() or DEFAULT_RUN_FILE)


def write(path: Path, values: Mapping[str, str]) -> None:
    """Replace `path` atomically with `values` (of VARIABLES) and this process's id, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"pid": os.getpid(), "environment": {k: values[k] for k in VARIABLES if k in values}}
    # mkstemp creates the file 0600: the URLs may carry passwords (Flower's, a database's).
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".run-", suffix=".json")
    with os.fdopen(fd, "w") as file:
        json.dump(content, file, indent=2)
    os.replace(temporary, path)


def _content(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def read(path: Path) -> dict[str, str]:
    """The variables the running launcher wrote to `path`; empty if there is none running."""
    content = _content(path)
    environment = content.get("environment")
    if not _alive(content.get("pid")) or not isinstance(environment, dict):
        return {}
    return {k: str(v) for k, v in environment.items() if k in VARIABLES and v}


def fill(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ`, plus the run file's value of each variable it does not set."""
    filled = dict(environ)
    for name, value in read(location(environ)).items():
        if not filled.get(name, "").strip():
            filled[name] = value
    return filled


@contextlib.contextmanager
def published(path: Path, values: Mapping[str, str]) -> Iterator[None]:
    """Write the run file for the duration of the block, then remove it if it is still ours."""
    write(path, values)
    try:
        yield
    finally:
        if _content(path).get("pid") == os.getpid():
            path.unlink(missing_ok=True)
