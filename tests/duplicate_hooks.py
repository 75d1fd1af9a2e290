"""Fault injection for worker processes, loaded through EXTRA_PROVIDER_MODULES like a plug-in.

Every stage message a worker that imports this module publishes (the next stage of a chain, a
retry, a resent rest of a chain) is published a second time, identical: same task id, same
arguments, same rest of the chain, as a broker that delivers each message twice would. Only a
process that loads the module is affected.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import current_app, signals

DUPLICATE_HEADER = "duplicate_of"


@signals.after_task_publish.connect
def publish_every_stage_message_twice(
    sender: Any = None, body: Any = None, headers: Any = None, **_: Any
) -> None:
    """Send the message just published once more (its copy is not copied again)."""
    headers = headers or {}
    if not str(sender).startswith("gateway.") or headers.get(DUPLICATE_HEADER):
        return
    args, kwargs, embed = body
    eta = headers.get("eta")
    current_app.send_task(
        sender,
        args=args,
        kwargs=kwargs,
        task_id=headers["id"],
        chain=embed.get("chain"),
        eta=datetime.fromisoformat(eta) if eta else None,
        retries=headers.get("retries") or 0,
        headers={DUPLICATE_HEADER: headers["id"]},
    )
