"""Marshmallow schemas: what the API accepts (validated) and how a job is represented."""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from datetime import datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate
from werkzeug.datastructures import FileStorage

from events.model import isoformat
from gateway import jobs
from gateway.api.messages import clip
from gateway.config import DEFAULT_INLINE_TEXT_LIMIT
from gateway.cursor import MAX_CURSOR_LENGTH, decode_cursor
from gateway.errors import InvalidCursorError
from gateway.jobs import JobSnapshot, RunSnapshot
from gateway.models import Job, JobStatus, StageRun
from gateway.stages import STAGES, VALID_PIPELINES
from gateway.texts import PREVIEW_LENGTH

# Longest stage list looked at: a valid one has at most 3 stages; a few more still get a
# message naming what is wrong with each.
MAX_STAGES = 10

INVALID_COMBINATION = (
    "Invalid stage combination. Valid combinations are: "
    + ", ".join(str(stages) for stages in VALID_PIPELINES)
    + "."
)


def storable_text(value: str) -> None:
    """Refuse text PostgreSQL cannot store (NUL characters, lone surrogates) with a 400."""
    if "\x00" in value:
        raise ma.ValidationError("Must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ma.ValidationError("Must be valid Unicode text.") from None


# What storable_text accepts, as far as a JSON Schema pattern can say it.
NO_NUL_PATTERN = "^[^\\x00]*$"


def _text(**kwargs: Any) -> fields.String:
    length = validate.Length(min=1, max=kwargs.pop("max", None))
    kwargs["metadata"] = {**kwargs.get("metadata", {}), "pattern": NO_NUL_PATTERN}
    return fields.String(validate=[length, storable_text], **kwargs)


class BoundedList(fields.List[Any]):
    """A list of at most `max_items` items, refused before any item is looked at.

    marshmallow validates every item before the list's own validators run: without this,
    100,000 wrong items cost 100,000 messages before the length could refuse them.
    """

    def __init__(self, cls_or_instance: Any, *, max_items: int, **kwargs: Any) -> None:
        super().__init__(cls_or_instance, **kwargs)
        self.max_items = max_items
        self.metadata = {"maxItems": max_items, **self.metadata}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        if isinstance(value, list | tuple) and len(value) > self.max_items:
            raise ma.ValidationError(f"At most {self.max_items} items are allowed.")
        return super()._deserialize(value, attr, data, **kwargs)


class BoundedDict(fields.Dict):
    """A mapping of at most `max_items` entries, refused before any entry is looked at."""

    def __init__(self, *, max_items: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_items = max_items
        self.metadata = {"maxProperties": max_items, **self.metadata}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dict[Any, Any]:
        if isinstance(value, dict) and len(value) > self.max_items:
            raise ma.ValidationError(f"At most {self.max_items} entries are allowed.")
        return dict(super()._deserialize(value, attr, data, **kwargs))


class UTCDateTime(fields.DateTime):
    """ISO 8601 in UTC with a Z suffix, as in the events."""

    def _serialize(self, value: datetime | None, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else isoformat(value)


class PipelineConfigSchema(ma.Schema):
    """The stages to run: one of the ordered prefixes of extraction, analysis, enrichment."""

    stages = BoundedList(
        fields.String(metadata={"enum": list(STAGES)}),
        max_items=MAX_STAGES,
        required=True,
        metadata={"example": list(STAGES), "enum": [list(stages) for stages in VALID_PIPELINES]},
    )
    providers = BoundedDict(
        max_items=len(STAGES),
        keys=fields.String(validate=validate.OneOf(STAGES)),
        values=fields.String(validate=validate.Length(min=1, max=100)),
        metadata={
            "description": "Optional: the provider of some stages, by name; a stage left out "
            "runs the configured one (EXTRACTOR_PROVIDER, ANALYZER_PROVIDER, "
            "ENRICHER_PROVIDER). An unknown name gets a 400 that lists the valid ones. "
            "Built in: `default` (real) and `fast`, `slow` (simulated) for extraction; "
            "installed plug-ins add their own (docs/pipeline.md#providers).",
            "example": {"extraction": "default"},
        },
    )

    @ma.validates_schema
    def check_stages(self, data: dict[str, Any], **kwargs: Any) -> None:
        stages = data["stages"]
        unknown = [s for s in dict.fromkeys(stages) if s not in STAGES]
        duplicated = [s for s, n in Counter(stages).items() if n > 1 and s in STAGES]
        messages = [
            f"Unknown stage {clip(s, 40)!r}. Valid stages are: {', '.join(STAGES)}."
            for s in unknown
        ] + [f"Duplicated stage {s!r}." for s in duplicated]
        if not messages and stages not in VALID_PIPELINES:
            messages.append(INVALID_COMBINATION)
        if not messages:
            messages = jobs.provider_problems(stages, data.get("providers", {}))
        if messages:
            raise ma.ValidationError(messages)


class Base64Bytes(fields.Field[bytes]):
    """Bytes sent as standard base64 text (whitespace ignored); refused if not base64 or empty."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bytes:
        if not isinstance(value, str):
            raise ma.ValidationError("Not a valid string.")
        text = "".join(value.split())
        try:
            content = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ma.ValidationError("Not valid base64.") from None
        if not content:
            raise ma.ValidationError("The document is empty.")
        return content


class UploadedFile(fields.Field[jobs.DocumentFile]):
    """A file part of a multipart/form-data body, read into memory (the body limit bounds it)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> jobs.DocumentFile:
        if not isinstance(value, FileStorage):
            raise ma.ValidationError("Not a file: send it as a part of a multipart/form-data body.")
        content = value.read()
        if not content:
            raise ma.ValidationError("The file is empty.")
        return jobs.DocumentFile(
            content, value.mimetype or None, clip(value.filename, 255) if value.filename else None
        )


_ONE_DOCUMENT = "Give one of document_content, document_base64 or file, not several."


class JobCreateSchema(ma.Schema):
    """Body of POST /api/jobs/ (unknown fields are refused): a JSON object, or the same fields
    as multipart/form-data with the document as a `file` part.

    The document is one of `document_content` (a text), `document_base64` with its
    `content_type`, or `file` (multipart only).
    """

    class Meta:
        unknown = ma.RAISE

    document_name = _text(required=True, max=255, metadata={"example": "My Document"})
    document_type = _text(required=True, max=100, metadata={"example": "important"})
    document_content = _text(
        metadata={
            "description": "The document as text. Required unless `document_base64` or "
            "`file` gives it.",
            "example": "Hi, my name is Gabriela, I want to cancel my subscription.",
        },
    )
    document_base64 = Base64Bytes(
        metadata={
            "description": "The document's bytes in standard base64 (a PDF, a DOCX, an HTML "
            "page, RTF, text in any encoding), with `content_type`. Its real type is detected "
            "from the bytes; the declared one is kept as a hint.",
            "type": "string",
            "format": "byte",
        }
    )
    content_type = fields.String(
        validate=[validate.Length(min=1, max=255), storable_text],
        metadata={
            "description": "The declared media type of `document_base64` (required with it).",
            "example": "application/pdf",
        },
    )
    file = UploadedFile(
        metadata={
            "description": "multipart/form-data only: the document as a file part.",
            "type": "string",
            "format": "binary",
        }
    )
    pipeline_config = fields.Nested(PipelineConfigSchema, required=True)

    @ma.validates_schema(skip_on_field_errors=False, pass_original=True)
    def check_document(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        # What the client sent counts, valid or not: a field's own error says what is wrong.
        if not isinstance(original, dict):
            return
        given = [k for k in ("document_content", "document_base64", "file") if k in original]
        if not given:
            raise ma.ValidationError("Missing data for required field.", "document_content")
        if len(given) > 1:
            raise ma.ValidationError(_ONE_DOCUMENT, given[0])
        if "document_base64" in original and "content_type" not in original:
            raise ma.ValidationError("Required with document_base64.", "content_type")
        if "content_type" in original and "document_base64" not in original:
            raise ma.ValidationError("Only with document_base64.", "content_type")

    @ma.post_load
    def document(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Put an uploaded document, base64 or file, in `document_file`."""
        if "document_base64" in data:
            content = data.pop("document_base64")
            data["document_file"] = jobs.DocumentFile(content, data.pop("content_type"))
        elif "file" in data:
            data["document_file"] = data.pop("file")
        return data


class JobUploadSchema(ma.Schema):
    """POST /api/jobs/ as multipart/form-data: the document as a file part (documentation)."""

    document_name = fields.String(required=True, metadata={"example": "Invoice 42"})
    document_type = fields.String(required=True, metadata={"example": "invoice"})
    pipeline_config = fields.String(
        required=True,
        metadata={
            "description": "The pipeline_config object as JSON text.",
            "example": '{"stages": ["extraction", "analysis", "enrichment"]}',
        },
    )
    file = fields.String(
        required=True,
        metadata={"format": "binary", "description": "The document: PDF, DOCX, HTML, RTF, text."},
    )


# What an Idempotency-Key may be: printable ASCII, as a header value can carry it safely.
IDEMPOTENCY_KEY_PATTERN = "^[ -~]{1,255}$"


class IdempotencyHeaderSchema(ma.Schema):
    """The optional `Idempotency-Key` header of POST /api/jobs/ (other headers are ignored)."""

    class Meta:
        unknown = ma.EXCLUDE

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=validate.Regexp(
            IDEMPOTENCY_KEY_PATTERN, error="Must be 1 to 255 printable ASCII characters."
        ),
        metadata={
            "description": "A key of the client's choosing (e.g. a UUID), 1 to 255 printable "
            "ASCII characters. Retrying a create with the same key and body replays the first "
            "answer instead of creating a second job; see docs/api.md.",
            "example": "8e03978e-40d5-43e8-bc93-6894a57f9324",
        },
    )


def _valid_cursor(token: str) -> None:
    try:
        decode_cursor(token)
    except InvalidCursorError as exc:
        raise ma.ValidationError(exc.detail) from None


class JobListQuerySchema(ma.Schema):
    """Query string of GET /api/jobs/."""

    status = BoundedList(
        fields.String(validate=validate.OneOf([s.value for s in JobStatus])),
        max_items=len(JobStatus),
        load_default=list,
        metadata={"description": "Repeat to list jobs in any of several statuses."},
    )
    document_type = fields.String(
        validate=[validate.Length(max=100), storable_text], metadata={"pattern": NO_NUL_PATTERN}
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(
        validate=_valid_cursor,
        metadata={
            "description": "`next_cursor` of the previous page (unpadded URL-safe base64).",
            "pattern": "^[A-Za-z0-9_-]+$",
            "minLength": 1,
            "maxLength": MAX_CURSOR_LENGTH,
        },
    )


class AsStored(fields.Nested):
    """A stage's output, shown as stored; the nested schema documents it.

    Providers may return fields the schema does not name (plug-ins do): dumping through the
    schema would drop them.
    """

    # Nested renames Field's first parameter: no signature satisfies both for mypy.
    def _serialize(self, nested_obj: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return nested_obj


class ExtractionResultSchema(ma.Schema):
    """Output of the extraction stage: the text inline, or a reference to it when it is large."""

    class Meta:
        unknown = ma.INCLUDE

    text = fields.String(
        metadata={
            "description": "The extracted text, when it takes at most INLINE_TEXT_LIMIT bytes "
            f"of UTF-8 ({DEFAULT_INLINE_TEXT_LIMIT} by default); a larger text is referenced "
            "instead (`text_ref`, `text_length`, `text_preview`)."
        }
    )
    text_ref = fields.String(
        metadata={
            "description": "Where the whole text is served (text/plain; charset=utf-8), for "
            "a text over INLINE_TEXT_LIMIT bytes.",
            "example": "/api/jobs/7f0c2a4e-8d1b-4c55-9f0e-2a7c1b3d4e5f/text/",
        }
    )
    text_length = fields.Integer(
        metadata={"description": "Characters of the referenced text.", "example": 2000000}
    )
    text_preview = fields.String(
        metadata={"description": f"The first {PREVIEW_LENGTH} characters of the referenced text."}
    )
    stats = fields.Dict(
        metadata={
            "description": "Counts of the whole text: characters, words, sentences, lines.",
            "example": {"characters": 78, "words": 13, "sentences": 2, "lines": 1},
        }
    )
    truncated = fields.Boolean(
        metadata={"description": "Present (true) when only a prefix of the content was read."}
    )


class StageSchema(ma.Schema):
    """One stage of a job: its status and, once present, output, error, time and attempts."""

    status = fields.String(metadata={"example": "completed"})
    results: fields.Field[Any] = fields.Dict(
        metadata={"description": "The stage's output, once completed."}
    )
    error = fields.String(metadata={"description": "Why the stage failed."})
    timestamp = UTCDateTime(metadata={"description": "Last change of the stage (UTC)."})
    attempts = fields.Integer()


class ExtractionStageSchema(StageSchema):
    """The extraction stage of a job: its output is the document's text."""

    results = AsStored(
        ExtractionResultSchema, metadata={"description": "The stage's output, once completed."}
    )


_DEFAULT_ONLY = (
    " The shape of the default (rule-based) provider, see docs/results.md; the `simulated` "
    "stand-in returns the seed's shape, a plug-in its own."
)


class EntitySchema(ma.Schema):
    """One entity the analysis found, with its character offsets in the extracted text."""

    type = fields.String(
        metadata={
            "enum": ["EMAIL", "PHONE", "URL", "DATE", "MONEY", "IDENTIFIER", "IBAN", "PERSON"]
        }
    )
    text = fields.String(metadata={"example": "K-448210"})
    start = fields.Integer(
        metadata={"description": "Offset of the first character.", "example": 151}
    )
    end = fields.Integer(
        metadata={"description": "Offset after the last character.", "example": 159}
    )
    label = fields.String(
        metadata={
            "description": "For an identifier: the label it followed.",
            "example": "Kundennummer",
        }
    )


class AnalysisResultSchema(ma.Schema):
    """Output of the analysis stage."""

    class Meta:
        unknown = ma.INCLUDE

    language = fields.String(
        metadata={"description": "ISO 639-1 code the rules read the text in.", "example": "de"}
    )
    entities = fields.List(
        fields.Nested(EntitySchema),
        metadata={"description": "In text order, never overlapping." + _DEFAULT_ONLY},
    )
    category = fields.String(
        metadata={"enum": ["billing", "cancellation", "technical", "sales", "account", "other"]}
    )
    keywords = fields.List(fields.String(), metadata={"example": ["kündigung", "vertrag"]})
    truncated = fields.Boolean(
        metadata={"description": "Present (true) when only a prefix of the text was read."}
    )


class EnrichmentResultSchema(ma.Schema):
    """Output of the enrichment stage."""

    class Meta:
        unknown = ma.INCLUDE

    language = fields.String(metadata={"example": "de"})
    category = fields.String(metadata={"example": "cancellation"})
    normalized = fields.Dict(
        metadata={
            "description": "Machine-readable values by kind: `phones` (E.164 and region), "
            "`dates` (ISO 8601), `amounts` (decimal string and ISO 4217 currency), `ibans`, "
            "`emails`." + _DEFAULT_ONLY,
            "example": {
                "phones": [
                    {"text": "030 12345678", "e164": "+493012345678", "region": "DE", "valid": True}
                ],
                "dates": [{"text": "31. März 2024", "iso": "2024-03-31"}],
                "amounts": [{"text": "1.249,90 EUR", "value": "1249.90", "currency": "EUR"}],
            },
        }
    )
    pii = fields.Dict(
        metadata={
            "description": "Whether the text holds each kind of personal data.",
            "example": {"email": True, "phone": True, "iban": False, "person": True, "any": True},
        }
    )
    redacted_text = fields.String(
        metadata={
            "description": "The text with [EMAIL], [PHONE], [IBAN] and [PERSON] in place of "
            "what they stand for.",
            "example": "From: [PERSON] <[EMAIL]>",
        }
    )
    summary = fields.String(metadata={"description": "The two most central sentences, redacted."})
    word_count = fields.Integer()
    reading_time_seconds = fields.Integer()


class AnalysisStageSchema(StageSchema):
    """The analysis stage of a job: entities, category and keywords."""

    results = AsStored(
        AnalysisResultSchema, metadata={"description": "The stage's output, once completed."}
    )


class EnrichmentStageSchema(StageSchema):
    """The enrichment stage of a job: normalised values, PII flags, redacted text, summary."""

    results = AsStored(
        EnrichmentResultSchema, metadata={"description": "The stage's output, once completed."}
    )


class PipelineStagesSchema(ma.Schema):
    """The configured stages, in pipeline order (a stage not configured is absent)."""

    extraction = fields.Nested(ExtractionStageSchema)
    analysis = fields.Nested(AnalysisStageSchema)
    enrichment = fields.Nested(EnrichmentStageSchema)


class JobResultsSchema(ma.Schema):
    """Every configured stage, in pipeline order."""

    stages = fields.Nested(PipelineStagesSchema)


class JobErrorSchema(ma.Schema):
    """Why a failed job failed."""

    stage = fields.String(metadata={"example": "analysis"})
    message = fields.String(metadata={"example": "Provider timeout"})


class JobSchema(ma.Schema):
    """A job as the API returns it (the document content is not echoed)."""

    id = fields.String(metadata={"description": "Opaque job id (a UUID)."})
    document_name = fields.String()
    document_type = fields.String()
    status = fields.String(metadata={"enum": [s.value for s in JobStatus]})
    pipeline_config = fields.Nested(PipelineConfigSchema)
    results = fields.Nested(JobResultsSchema)
    errors = fields.Nested(JobErrorSchema, allow_none=True)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()

    @ma.pre_dump
    def represent(self, job: Job | JobSnapshot, **kwargs: Any) -> dict[str, Any]:
        """Lay a job out as the contract's representation."""
        return {
            "id": job.id,
            "document_name": job.document_name,
            "document_type": job.document_type,
            "status": job.status,
            "pipeline_config": {
                "stages": list(job.stages),
                **({"providers": job.providers} if job.providers else {}),
            },
            "results": {"stages": {run.name: _stage(run) for run in job.runs}},
            "errors": (
                {"stage": job.error_stage, "message": job.error_message}
                if job.error_stage is not None
                else None
            ),
            "created_at": job.created_at,
            "updated_at": job.updated_at,
        }


def _stage(run: StageRun | RunSnapshot) -> dict[str, Any]:
    stage: dict[str, Any] = {"status": run.status}
    if run.result is not None:
        stage["results"] = run.result
    if run.error is not None:
        stage["error"] = run.error
    if run.updated_at is not None:
        stage["timestamp"] = run.updated_at
    if run.attempts:
        stage["attempts"] = run.attempts
    return stage


class JobPageSchema(ma.Schema):
    """One page of GET /api/jobs/."""

    results = fields.List(fields.Nested(JobSchema))
    next_cursor = fields.String(allow_none=True)
