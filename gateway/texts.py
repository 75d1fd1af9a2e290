"""Large texts: an extracted text over the inline limit is stored once and referenced.

The extraction stage's result carries the document's text. Up to INLINE_TEXT_LIMIT bytes of
UTF-8 it stays inline, as the contract shows (`{"text": "…", "stats": {…}}`). A longer text is
stored once, in `stage_texts`, and the result keeps a small form in its place, the other
fields unchanged:

    {"text_ref": "/api/jobs/{id}/text/", "text_length": 2000000,
     "text_preview": "<the first 200 characters>", "stats": {…}}

The small form is what the stage run stores, what the API shows and what the
`job.stage_completed` event carries: a job, a page of jobs and a stream entry stay small
whatever the document. The next stage gets the full text back as its input (`with_text`), and
`read_text` serves it at `text_ref`, whether stored apart or inline.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, bindparam, insert, select
from sqlalchemy.orm import Session

from gateway.errors import JobNotFoundError, TextNotFoundError
from gateway.models import JOBS, RUNS, TEXTS
from gateway.stages import STAGES

# The stage whose `text` may be stored apart: the one whose output is the document's text.
TEXT_STAGE = STAGES[0]
# Characters of a stored text that its result shows.
PREVIEW_LENGTH = 200
# What stands in a result for a text stored apart, in this order, where `text` stood.
REFERENCE_FIELDS = ("text_ref", "text_length", "text_preview")

_INSERT = insert(TEXTS)
# The job, its extraction result and its stored text, each present or not, in one statement.
_TEXT = (
    select(JOBS.c.id, RUNS.c.result, TEXTS.c.text)
    .select_from(JOBS)
    .outerjoin(RUNS, and_(RUNS.c.job_id == JOBS.c.id, RUNS.c.name == TEXT_STAGE))
    .outerjoin(TEXTS, and_(TEXTS.c.job_id == JOBS.c.id, TEXTS.c.stage == TEXT_STAGE))
    .where(JOBS.c.id == bindparam("job"))
)
_TENANT_TEXT = _TEXT.where(JOBS.c.tenant_id == bindparam("tenant"))


def text_ref(job_id: str) -> str:
    """Where the API serves the job's extracted text (the route of `gateway.api.jobs`)."""
    return f"/api/jobs/{job_id}/text/"


def exceeds(text: str, limit: int) -> bool:
    """Whether `text` is larger than `limit` bytes in UTF-8 (encoded only when in doubt)."""
    if len(text) > limit:  # every character takes at least one byte
        return True
    if 4 * len(text) <= limit:  # and at most four
        return False
    return len(text.encode("utf-8", "surrogatepass")) > limit


def reference(
    job_id: str, stage: str, result: dict[str, Any], limit: int
) -> tuple[dict[str, Any], str | None]:
    """The result to record for `stage`, and the text to store apart (None if it stays inline).

    Only the text stage's `text` over `limit` bytes goes apart; any other result is recorded
    as it is. Pure: the caller stores the text (`store`) once its stage is recorded.
    """
    text = result.get("text") if stage == TEXT_STAGE else None
    if not isinstance(text, str) or not exceeds(text, limit):
        return result, None
    recorded: dict[str, Any] = {}
    for key, value in result.items():
        if key == "text":
            recorded.update(
                text_ref=text_ref(job_id), text_length=len(text), text_preview=text[:PREVIEW_LENGTH]
            )
        elif key not in REFERENCE_FIELDS:
            recorded[key] = value
    return recorded, text


def store(session: Session, job_id: str, stage: str, text: str) -> None:
    """Insert the text of a stage apart, in the caller's transaction (which records the stage)."""
    session.connection().execute(_INSERT, {"job_id": job_id, "stage": stage, "text": text})


def with_text(result: dict[str, Any], text: str) -> dict[str, Any]:
    """The result as its stage returned it: the stored `text` back in place of the reference."""
    restored: dict[str, Any] = {}
    for key, value in result.items():
        if key == REFERENCE_FIELDS[0]:
            restored["text"] = text
        elif key not in REFERENCE_FIELDS:
            restored[key] = value
    return restored


def read_text(session: Session, job_id: str, tenant: str | None = None) -> str:
    """The job's full extracted text, stored apart or inline.

    JobNotFoundError if there is no such job (or the id is malformed, or the job is not of
    `tenant` when one is given: see `gateway.jobs`); TextNotFoundError
    while its extraction has not completed, and for good if it failed or was never run.
    """
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise JobNotFoundError() from None
    if tenant is None:
        row = session.connection().execute(_TEXT, {"job": job_id}).first()
    else:
        params = {"job": job_id, "tenant": tenant}
        row = session.connection().execute(_TENANT_TEXT, params).first()
    if row is None:
        raise JobNotFoundError()
    if row.text is not None:
        return str(row.text)
    inline = row.result.get("text") if isinstance(row.result, dict) else None
    if not isinstance(inline, str):
        raise TextNotFoundError()
    return inline
