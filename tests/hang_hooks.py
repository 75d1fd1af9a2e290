"""Fault injection for prefork worker processes, loaded through EXTRA_PROVIDER_MODULES like a
plug-in: a pool process hangs where it publishes a job's analysis stage (right after the
extraction's result was committed), as a publish stuck on a Redis that never answers does,
until the pool's hard time limit kills it. The worker's main process publishes normally.
"""

from __future__ import annotations

import time
from typing import Any

from celery import signals

HANG_BEFORE_SENDING = "gateway.analysis"
_in_pool_process = False


@signals.worker_process_init.connect
def mark_pool_process(**_: Any) -> None:
    global _in_pool_process
    _in_pool_process = True


@signals.before_task_publish.connect
def hang_before_sending_the_next_stage(sender: Any = None, **_: Any) -> None:
    """In a pool process, never return from publishing the analysis stage."""
    if _in_pool_process and sender == HANG_BEFORE_SENDING:
        time.sleep(3600)
