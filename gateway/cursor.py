"""Opaque keyset cursors for the job list: (created_at, id) of the last row served."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from datetime import UTC, datetime

from gateway.errors import InvalidCursorError

# What encode_cursor issues: unpadded URL-safe base64 of about 100 characters. Anything else
# is refused before it is decoded, so a hostile token costs nothing to turn down.
MAX_CURSOR_LENGTH = 200
CURSOR_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_CURSOR_LENGTH}}}")


def encode_cursor(created_at: datetime, job_id: str) -> str:
    """A URL-safe token pointing just after this row."""
    raw = json.dumps([created_at.isoformat(), job_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, str]:
    """The (created_at, id) a token points after; InvalidCursorError for any other string."""
    try:
        if not CURSOR_PATTERN.fullmatch(token):
            raise ValueError("not a token of ours")
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = json.loads(raw)
        if not (isinstance(decoded, list) and len(decoded) == 2):
            raise ValueError("not a pair")
        created_at, job_id = decoded
        if not (isinstance(created_at, str) and isinstance(job_id, str)):
            raise ValueError("not a pair of strings")
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            raise ValueError("no time zone")
        # Values the database cannot compare (NUL in the id, dates out of range) are not ours.
        job_id = str(uuid.UUID(job_id))
        moment = moment.astimezone(UTC)
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error):
        raise InvalidCursorError("Invalid cursor.") from None
    return moment, job_id
