"""Opaque keyset cursors for the job list: (created_at, id) of the last row served."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime

from gateway.errors import InvalidCursorError


def encode_cursor(created_at: datetime, job_id: str) -> str:
    """A URL-safe token pointing just after this row."""
    raw = json.dumps([created_at.isoformat(), job_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, str]:
    """The (created_at, id) a token points after; InvalidCursorError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created_at, job_id = json.loads(raw)
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None or not isinstance(job_id, str):
            raise ValueError(token)
        # Values the database cannot compare (NUL in the id, dates out of range) are not ours.
        job_id = str(uuid.UUID(job_id))
        moment = moment.astimezone(UTC)
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursorError("Invalid cursor.") from None
    return moment, job_id
