"""Parse a document in a child process with CPU-time, memory and wall-time limits.

A parser fed a hostile file (a stream that inflates to gigabytes, a pathological structure)
may run away. In a child process it can only exhaust its own limits: RLIMIT_CPU ends it with
SIGXCPU/SIGKILL, RLIMIT_AS turns a runaway allocation into MemoryError, and the parent kills it
after the wall time. The worker thread that waits for it stays responsive, and every failure
becomes a DocumentError naming the limit.

The child is a fresh interpreter (`python -m providers.documents.sandbox`), never a fork of
a worker whose other threads may hold locks. It reads the document on stdin and the limits as
JSON in its argument, and writes one JSON object on stdout: `{"result": …}` or `{"error": …}`.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
from typing import Any

from providers.base import DocumentError
from providers.documents.limits import DocumentLimits, size


def parse_sandboxed(data: bytes, limits: DocumentLimits, timeout: float) -> dict[str, Any]:
    """What `parse.parse` returns for `data`, computed in a child within the limits.

    The wall time is the lesser of EXTRACTION_WALL_SECONDS and `timeout` (the stage's own).
    """
    wall = min(limits.wall_seconds, timeout)
    command = [sys.executable, "-m", "providers.documents.sandbox", json.dumps(limits.as_dict())]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=wall, check=False)
    except subprocess.TimeoutExpired:
        # subprocess.run killed the child before raising.
        raise DocumentError(
            f"Extraction took longer than {wall:g} s (EXTRACTION_WALL_SECONDS or "
            f"STAGE_TIME_LIMIT) and was stopped."
        ) from None
    if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL) and not done.stdout:
        raise DocumentError(
            f"Extraction used more than {limits.cpu_seconds} s of CPU "
            f"(EXTRACTION_CPU_SECONDS) and was stopped."
        )
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise DocumentError(
            f"Extraction failed (exit status {done.returncode}): {detail[0][:300]}"
        ) from None
    if "error" in answer:
        raise DocumentError(str(answer["error"]))
    result: dict[str, Any] = answer["result"]
    return result


def _limit_self(limits: DocumentLimits) -> None:
    cpu = max(1, int(limits.cpu_seconds))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))


def main() -> None:
    """The child: limit itself, parse stdin, answer on stdout."""
    limits = DocumentLimits.from_dict(json.loads(sys.argv[1]))
    data = sys.stdin.buffer.read()
    _limit_self(limits)  # after the imports and the read: those are ours, not the document's
    from providers.documents.parse import parse

    try:
        answer: dict[str, Any] = {"result": parse(data, limits)}
    except DocumentError as exc:
        answer = {"error": str(exc)}
    except MemoryError:
        answer = {
            "error": f"Extraction needed more than {size(limits.memory_bytes)} of memory "
            f"(EXTRACTION_MEMORY_MB) and was stopped."
        }
    except RecursionError:
        answer = {"error": "The document is nested too deeply to be read."}
    sys.stdout.buffer.write(json.dumps(answer).encode("ascii"))


if __name__ == "__main__":
    main()
