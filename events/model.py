"""The event envelope and its Redis Stream fields."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JOB_CREATED = "job.created"
STAGE_STARTED = "job.stage_started"
STAGE_RETRYING = "job.stage_retrying"
STAGE_COMPLETED = "job.stage_completed"
JOB_COMPLETED = "job.completed"
JOB_FAILED = "job.failed"
JOB_CANCELLED = "job.cancelled"
JOB_RETRIED = "job.retried"

EVENT_TYPES = (
    JOB_CREATED,
    STAGE_STARTED,
    STAGE_RETRYING,
    STAGE_COMPLETED,
    JOB_COMPLETED,
    JOB_FAILED,
    JOB_CANCELLED,
    JOB_RETRIED,
)
TERMINAL_TYPES = (JOB_COMPLETED, JOB_FAILED, JOB_CANCELLED)


def isoformat(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z suffix, e.g. 2026-04-27T13:32:50.123456Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    """One lifecycle event; `event_id` lets consumers drop duplicate deliveries."""

    event_type: str
    job_id: str
    payload: dict[str, Any]
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The tenant owning the job; None for a job created with authentication off.
    tenant_id: str | None = None

    def to_fields(self) -> dict[str, str]:
        """The flat string fields of a stream entry."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "job_id": self.job_id,
            "timestamp": isoformat(self.timestamp),
            "payload": json.dumps(self.payload, separators=(",", ":"), sort_keys=True),
            "tenant_id": self.tenant_id or "",
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Event:
        """Parse a stream entry; raises ValueError/KeyError on a malformed one."""
        payload = json.loads(fields["payload"])
        if not isinstance(payload, dict):
            raise ValueError("payload is not a JSON object")
        return cls(
            event_type=fields["event_type"],
            job_id=fields["job_id"],
            payload=payload,
            event_id=fields["event_id"],
            timestamp=datetime.fromisoformat(fields["timestamp"].replace("Z", "+00:00")),
            tenant_id=fields.get("tenant_id") or None,  # absent from entries of older versions
        )
