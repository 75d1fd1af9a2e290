"""Fault injection for worker processes, loaded through EXTRA_PROVIDER_MODULES like a plug-in.

A worker that imports this module dies (SIGKILL, as a crashed machine) at the moment it is
about to publish a job's analysis stage: right after the extraction's result was committed, and
before the next stage is on the broker. Only a process that loads the module is affected.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from celery import signals

DIE_BEFORE_SENDING = "gateway.analysis"


@signals.before_task_publish.connect
def die_before_sending_the_next_stage(sender: Any = None, **_: Any) -> None:
    """SIGKILL this process instead of publishing the analysis stage."""
    if sender == DIE_BEFORE_SENDING:
        os.kill(os.getpid(), signal.SIGKILL)
