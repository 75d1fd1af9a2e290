"""gunicorn's settings for the API: `gunicorn --config=python:gateway.serving wsgi:app`.

The worker class is gthread: a live event stream (gateway/api/live.py) holds one thread while
it is open, and the other threads keep serving requests (SSE_MAX_STREAMS < API_THREADS).
A sync worker would be held whole by one stream.
"""

from __future__ import annotations

import gc
import signal
from types import FrameType
from typing import Any

worker_class = "gthread"


def post_worker_init(worker: Any) -> None:
    """On SIGTERM, end the open event streams before gunicorn's graceful shutdown waits on them.

    gunicorn has no hook for SIGTERM in a worker: its own handler is wrapped instead.
    """
    from gateway.api.live import live_streams

    stop = worker.handle_exit

    def handle_exit(signum: int, frame: FrameType | None) -> None:
        live_streams(worker.wsgi).close()
        stop(signum, frame)

    signal.signal(signal.SIGTERM, handle_exit)
    # What start-up made lives until exit: out of every collection, the one at exit included,
    # which otherwise takes seconds of a stop timeout on a loaded host.
    gc.freeze()
