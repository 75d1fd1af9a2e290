"""Settings: the one configuration object, read from the environment once."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import limits

from gateway.errors import ConfigError
from gateway.stages import STAGES

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"
# Where `make run` says which URLs it chose, for the commands of other shells (gateway.runfile).
DEFAULT_RUN_FILE = INSTANCE_DIR / "run.json"
MIB = 1024 * 1024
# Bytes of UTF-8 up to which an extracted text is inlined in its job (INLINE_TEXT_LIMIT).
DEFAULT_INLINE_TEXT_LIMIT = 65_536
# The field naming each stage's provider, in pipeline order.
PROVIDER_FIELDS = dict(
    zip(STAGES, ("extractor_provider", "analyzer_provider", "enricher_provider"), strict=True)
)


def _normalise_database_url(url: str) -> str:
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; operators pass plain URLs.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def _rate(value: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise ValueError("must be between 0 and 1")
    return rate


def _non_negative(cast: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        number = cast(value)
        if number < 0:
            raise ValueError("must not be negative")
        return number

    return parse


def _positive(cast: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        number = cast(value)
        if number <= 0:
            raise ValueError("must be positive")
        return number

    return parse


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError("must be true or false")
    return lowered in ("1", "true", "yes", "on")


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


def _credentials(value: str) -> str:
    for pair in value.split(","):
        user, sep, password = pair.partition(":")
        if not (user and sep and password):
            raise ValueError("must be user:password (several separated by commas)")
    return value


def is_loopback(address: str) -> bool:
    """Whether `address` (a host name or IP address to bind) is reachable from this host only."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _languages(value: str) -> str:
    codes = dict.fromkeys(code.strip().lower() for code in value.split(",") if code.strip())
    if not codes or not all(len(code) == 2 and code.isalpha() for code in codes):
        raise ValueError("must be ISO 639-1 codes separated by commas, e.g. en,de,fr,es")
    return ",".join(codes)


def _rate_limits(value: str) -> str:
    try:
        limits.parse_many(value)
    except ValueError:
        raise ValueError("must be limits like 20/second or 100/minute;2000/hour") from None
    return value


def _module_names(value: str) -> str:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not all(all(part.isidentifier() for part in name.split(".")) for name in names):
        raise ValueError("must be dotted module names separated by commas")
    return ",".join(names)


def _env(
    name: str,
    parse: Callable[[str], Any] = str,
    *,
    default: Any,
    doc: str,
    section: str | None = None,
) -> Any:
    """A dataclass field filled from environment variable `name`, coerced by `parse`.

    `doc` is its line in docs/configuration.md and .env.example (`make docs` writes both);
    `section` starts a new group there, in field order.
    """
    metadata = {"env": name, "parse": parse, "doc": doc, "section": section}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Every knob of the gateway; `from_env` builds it, tests pass their own."""

    database_url: str = _env(
        "DATABASE_URL",
        _normalise_database_url,
        default=f"sqlite:///{INSTANCE_DIR / 'gateway.sqlite3'}",
        doc="SQLAlchemy URL; PostgreSQL in production. A plain `postgresql://` (or `postgres://`) "
        "URL works as given (it is mapped to the installed psycopg2 driver). Compose builds it "
        "from `POSTGRES_*`.",
        section="Where things are",
    )
    redis_url: str = _env(
        "REDIS_URL",
        default="",
        doc="Celery broker and event streams, e.g. `redis://127.0.0.1:6379/0`. Under `make run`, "
        "unset means a Redis the launcher starts itself; compose uses its `redis` service. A "
        "`gateway` command run beside `make run` takes it from `RUN_FILE`; with neither, "
        "processes refuse to start rather than guess a server.",
    )
    embedded_redis_dir: str = _env(
        "EMBEDDED_REDIS_DIR",
        default=str(INSTANCE_DIR / "redis"),
        doc="Data and log of the Redis that `make run` starts when `REDIS_URL` is unset.",
    )
    run_file: str = _env(
        "RUN_FILE",
        default=str(DEFAULT_RUN_FILE),
        doc="Where `make run` writes the URLs it chose (API, Redis, database, Flower) while it "
        "runs, readable by its user only; the `gateway` commands of another shell read each "
        "of them that is not set from there (`GATEWAY_URL`, `REDIS_URL`, `DATABASE_URL`, "
        "`EVENTS_STREAM`).",
    )
    port: int = _env(
        "PORT",
        _positive(int),
        default=8000,
        doc="API port of `make run`, or the host port compose publishes the API on.",
        section="Servers",
    )
    flower_port: int = _env(
        "FLOWER_PORT",
        _positive(int),
        default=5555,
        doc="Flower port of `make run`, or the host port compose publishes Flower on.",
    )
    bind_address: str = _env(
        "BIND_ADDRESS",
        default="127.0.0.1",
        doc="Address the API listens on under `make run` (Flower listens on 127.0.0.1 only).",
    )
    api_workers: int = _env(
        "API_WORKERS", _positive(int), default=2, doc="gunicorn worker processes of the API."
    )
    api_threads: int = _env(
        "API_THREADS", _positive(int), default=4, doc="gunicorn threads per API process."
    )
    flower_basic_auth: str = _env(
        "FLOWER_BASIC_AUTH",
        _credentials,
        default="",
        doc="Flower's login, `user:password` (several separated by commas). Compose requires "
        "it; `make run` without it makes one for the run (user `admin`) and prints it once.",
    )
    max_content_length: int = _env(
        "MAX_CONTENT_LENGTH",
        _positive(int),
        default=10 * 1024 * 1024,
        doc="Request body limit in bytes (10 MiB); a larger body gets 413.",
    )
    inline_text_limit: int = _env(
        "INLINE_TEXT_LIMIT",
        _positive(int),
        default=DEFAULT_INLINE_TEXT_LIMIT,
        doc="Bytes of UTF-8 up to which a stage's output text is inlined in its result and "
        "event; a longer one is stored once and referenced, so that jobs, lists and events "
        "stay small (docs/limits.md).",
    )
    access_log: bool = _env(
        "ACCESS_LOG",
        _boolean,
        default=False,
        doc="Whether `make run` prints one line per HTTP request.",
    )
    log_level: str = _env(
        "LOG_LEVEL",
        _choice("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
        doc="`DEBUG`, `INFO`, `WARNING` or `ERROR`.",
    )
    log_format: str = _env(
        "LOG_FORMAT",
        _choice("text", "json"),
        default="text",
        doc="`text`: readable lines; `json`: one JSON object per line. Either way each line "
        "about a job carries its `job_id` (see [operations](operations.md#logs)).",
    )
    auth_mode: str = _env(
        "AUTH_MODE",
        _choice("keys", "off"),
        default="keys",
        doc="`keys`: every job route asks for `Authorization: Bearer <key>` and a tenant sees "
        "only its own jobs; `off`: no authentication, every job visible (docs/security.md). "
        "`make run` sets `off` unless it is set, and prints a banner.",
        section="Authentication",
    )
    auth_off_force: bool = _env(
        "AUTH_OFF_FORCE",
        _boolean,
        default=False,
        doc="Allow `AUTH_MODE=off` on a `BIND_ADDRESS` other than loopback (a proxy in front "
        "authenticates); without it start-up stops.",
    )
    api_key_secret: str = _env(
        "API_KEY_SECRET",
        default="",
        doc="Server secret API keys are hashed with (HMAC-SHA-256), e.g. `openssl rand -hex "
        "32`. Required with `AUTH_MODE=keys` (compose requires it); changing it invalidates "
        "every key.",
    )
    idempotency_ttl: float = _env(
        "IDEMPOTENCY_TTL",
        _positive(float),
        default=86_400.0,
        doc="Seconds an `Idempotency-Key` of `POST /api/jobs/` is remembered (24 h): a retry "
        "within it replays the first answer; after it the key is free again.",
        section="Idempotency and rate limits",
    )
    rate_limit_enabled: bool = _env(
        "RATE_LIMIT_ENABLED",
        _boolean,
        default=True,
        doc="Whether the job routes and `/api/providers/` count requests per API key (per client address with "
        "`AUTH_MODE=off`) and answer 429 over the limits below. Counted in Redis; while Redis "
        "is unreachable every request is let through (docs/security.md).",
    )
    rate_limit: str = _env(
        "RATE_LIMIT",
        _rate_limits,
        default="100/second",
        doc="Requests one caller may make on those routes, all together: `N/second`, "
        "`N/minute`, `N/hour` or `N/day`, several separated by `;` (all must hold).",
    )
    rate_limit_create: str = _env(
        "RATE_LIMIT_CREATE",
        _rate_limits,
        default="20/second",
        doc="Creates (`POST /api/jobs/`) one caller may make, on top of `RATE_LIMIT`; same "
        "notation.",
    )
    extractor_provider: str = _env(
        "EXTRACTOR_PROVIDER",
        default="default",
        doc="Extraction provider: `default` reads real documents (PDF, DOCX, HTML, RTF, text); "
        "`fast` and `slow` are the simulated ones (~0.1 s and ~2 s), which the tests and "
        "`make bench` select. A job may choose its own (`pipeline_config.providers`).",
        section="Pipeline",
    )
    analyzer_provider: str = _env(
        "ANALYZER_PROVIDER",
        default="default",
        doc="Analysis provider: `default` (offline rules: entities, category, keywords; "
        "docs/results.md) or `simulated` (the stand-in with simulated latency and failures).",
    )
    enricher_provider: str = _env(
        "ENRICHER_PROVIDER",
        default="default",
        doc="Enrichment provider: `default` (normalised values, PII flags, redacted text, "
        "summary; docs/results.md) or `simulated` (the stand-in).",
    )
    extra_provider_modules: str = _env(
        "EXTRA_PROVIDER_MODULES",
        _module_names,
        default="",
        doc="Comma-separated modules imported at start-up whose `@register` calls add "
        "provider choices (plug-ins).",
    )
    provider_latency_scale: float = _env(
        "PROVIDER_LATENCY_SCALE",
        _non_negative(float),
        default=1.0,
        doc="Multiplies the simulated provider latency; 0 means no sleep.",
    )
    extraction_failure_rate: float = _env(
        "EXTRACTION_FAILURE_RATE",
        _rate,
        default=0.0,
        doc="Share (0 to 1) of simulated extraction calls that fail.",
    )
    analysis_failure_rate: float = _env(
        "ANALYSIS_FAILURE_RATE",
        _rate,
        default=0.0,
        doc="Share (0 to 1) of simulated analysis calls that fail.",
    )
    enrichment_failure_rate: float = _env(
        "ENRICHMENT_FAILURE_RATE",
        _rate,
        default=0.0,
        doc="Share (0 to 1) of simulated enrichment calls that fail.",
    )
    stage_max_retries: int = _env(
        "STAGE_MAX_RETRIES",
        _non_negative(int),
        default=3,
        doc="Provider failures retried per stage; the next one fails the stage. A rerun after "
        "a worker died, a duplicate delivery or a database outage uses none up.",
    )
    retry_backoff_base: float = _env(
        "RETRY_BACKOFF_BASE",
        _non_negative(float),
        default=1.0,
        doc="Seconds; retry n waits a random time in [0, min(RETRY_BACKOFF_MAX, BASE x 2^n)].",
    )
    retry_backoff_max: float = _env(
        "RETRY_BACKOFF_MAX",
        _non_negative(float),
        default=30.0,
        doc="Seconds a retry waits at most.",
    )
    stage_time_limit: float = _env(
        "STAGE_TIME_LIMIT",
        _positive(float),
        default=30.0,
        doc="Seconds a provider call may take before it counts as a timeout (retried).",
    )
    broker_visibility_timeout: int = _env(
        "BROKER_VISIBILITY_TIMEOUT",
        _positive(int),
        default=300,
        doc="Seconds after which a stage taken by a worker that died is delivered again. Must "
        "exceed `RETRY_BACKOFF_MAX` + the longest stage run: `STAGE_TIME_LIMIT`, or with "
        "`WORKER_POOL=prefork` its hard time limit, 2 x `STAGE_TIME_LIMIT` + 10.",
    )
    worker_pool: str = _env(
        "WORKER_POOL",
        _choice("threads", "prefork", "solo"),
        default="threads",
        doc="Celery pool: `threads`, `prefork` or `solo`.",
    )
    worker_concurrency: int = _env(
        "WORKER_CONCURRENCY",
        _positive(int),
        default=32,
        doc="Stages one worker process runs at once.",
    )
    worker_processes: int = _env(
        "WORKER_PROCESSES",
        _non_negative(int),
        default=0,
        doc="Worker processes `make run` starts; 0 means one per CPU core.",
    )
    database_pool_size: int = _env(
        "DATABASE_POOL_SIZE",
        _positive(int),
        default=20,
        doc="Database connections each process keeps at most (opened as needed).",
    )
    database_pool_timeout: float = _env(
        "DATABASE_POOL_TIMEOUT",
        _positive(float),
        default=5.0,
        doc="Seconds a request waits for a free database connection before it gets 503.",
    )
    max_queued_stages: int = _env(
        "MAX_QUEUED_STAGES",
        _positive(int),
        default=2000,
        doc="Backpressure: `POST /api/jobs/` answers 503 with `Retry-After` while more stage "
        "messages than this wait in the queues.",
    )
    task_events: bool = _env(
        "TASK_EVENTS",
        _boolean,
        default=False,
        doc="Whether workers send Celery task events (received, started, succeeded, ...), which "
        "Flower's task views need; Flower is started to ask for them too. Off, Flower still shows "
        "the workers, and each stage costs a few Redis publishes less.",
    )
    task_sent_events: bool = _env(
        "TASK_SENT_EVENTS",
        _boolean,
        default=False,
        doc="Whether every stage message sent raises a Celery task-sent event (Flower then "
        "lists queued stages; off, it shows stages once a worker received them).",
    )
    languages: str = _env(
        "LANGUAGES",
        _languages,
        default="en,de,fr,es,it,nl,pt",
        doc="Languages a document may be told to be in (ISO 639-1, comma-separated); the "
        "extraction's `language` is one of them, or null for a text without words.",
        section="Documents",
    )
    max_document_bytes: int = _env(
        "MAX_DOCUMENT_BYTES",
        _positive(int),
        default=10 * MIB,
        doc="Bytes a document of any type may have (10 MiB); an uploaded file (multipart) "
        "larger is refused with 413 while it is read, a larger base64 one fails its "
        "extraction. The per-type limits below apply too.",
    )
    max_pdf_bytes: int = _env(
        "MAX_PDF_BYTES",
        _positive(int),
        default=10 * MIB,
        doc="Bytes a PDF may have (10 MiB).",
    )
    max_docx_bytes: int = _env(
        "MAX_DOCX_BYTES",
        _positive(int),
        default=10 * MIB,
        doc="Bytes a DOCX may have (10 MiB).",
    )
    max_html_bytes: int = _env(
        "MAX_HTML_BYTES",
        _positive(int),
        default=5 * MIB,
        doc="Bytes an HTML document may have (5 MiB).",
    )
    max_rtf_bytes: int = _env(
        "MAX_RTF_BYTES",
        _positive(int),
        default=5 * MIB,
        doc="Bytes an RTF document may have (5 MiB).",
    )
    max_text_bytes: int = _env(
        "MAX_TEXT_BYTES",
        _positive(int),
        default=10 * MIB,
        doc="Bytes a plain text or Markdown document may have (10 "
        "MiB), uploaded or sent as `document_content`.",
    )
    max_pdf_pages: int = _env(
        "MAX_PDF_PAGES",
        _positive(int),
        default=2000,
        doc="Pages a PDF may have; one with more fails its extraction.",
    )
    max_pages_processed: int = _env(
        "MAX_PAGES_PROCESSED",
        _positive(int),
        default=200,
        doc="Pages of a PDF whose text is extracted; beyond them the result says "
        "`pages_processed` (and `pages`, the count).",
    )
    max_inflated_bytes: int = _env(
        "MAX_INFLATED_BYTES",
        _positive(int),
        default=100 * MIB,
        doc="Bytes the compressed parts of a document may inflate to "
        "(100 MiB): a DOCX's XML, each stream of a PDF.",
    )
    max_compression_ratio: int = _env(
        "MAX_COMPRESSION_RATIO",
        _positive(int),
        default=100,
        doc="How many times its compressed size a DOCX's XML, or a PDF stream (times the "
        "PDF's size), may inflate to: a zip or flate bomb fails at once.",
    )
    extraction_cpu_seconds: int = _env(
        "EXTRACTION_CPU_SECONDS",
        _positive(int),
        default=10,
        doc="CPU seconds the sandboxed parser of one document may use (RLIMIT_CPU).",
    )
    extraction_memory_mb: int = _env(
        "EXTRACTION_MEMORY_MB",
        _positive(int),
        default=768,
        doc="MiB of address space the sandboxed parser of one document may use (RLIMIT_AS).",
    )
    extraction_wall_seconds: float = _env(
        "EXTRACTION_WALL_SECONDS",
        _positive(float),
        default=20.0,
        doc="Seconds the sandboxed parser of one document may run (at most `STAGE_TIME_LIMIT`) "
        "before it is killed.",
    )
    events_stream: str = _env(
        "EVENTS_STREAM",
        default="job_events",
        doc="Name of the events stream.",
        section="Events, relay and consumer",
    )
    events_stream_maxlen: int = _env(
        "EVENTS_STREAM_MAXLEN",
        _positive(int),
        default=100_000,
        doc="Approximate length the events stream is trimmed to (`XADD MAXLEN ~`).",
    )
    outbox_retention: float = _env(
        "OUTBOX_RETENTION",
        _non_negative(float),
        default=604_800.0,
        doc="Seconds a published outbox row is kept, as an audit trail (7 days); 0 keeps "
        "them for ever.",
    )
    relay_interval: float = _env(
        "RELAY_INTERVAL", _positive(float), default=0.5, doc="Seconds between relay passes."
    )
    dispatch_grace: float = _env(
        "DISPATCH_GRACE",
        _non_negative(float),
        default=5.0,
        doc="Seconds the relay leaves a just-stored job or event to the process that stored "
        "it, before it sends the job or appends the event itself.",
    )
    stalled_job_timeout: float = _env(
        "STALLED_JOB_TIMEOUT",
        _positive(float),
        default=600.0,
        doc="Seconds a processing job (or a pending one whose chain was claimed) may sit "
        "untouched before the relay resends its unfinished stages. Must exceed "
        "`BROKER_VISIBILITY_TIMEOUT` + the longest stage run; never 0, as the sweep is the "
        "last resort of a stuck job.",
    )
    lost_stage_timeout: float = _env(
        "LOST_STAGE_TIMEOUT",
        _positive(float),
        default=15.0,
        doc="Seconds an active job may sit idle while the message of its next stage is neither "
        "queued nor held by a worker before the relay resends its unfinished stages. The Redis "
        "transport pops a message before it records it as held, so one popped by a worker that "
        "dies (or loses Redis) in between would otherwise wait for `STALLED_JOB_TIMEOUT` "
        "(docs/resilience.md).",
    )
    consumer_group: str = _env(
        "CONSUMER_GROUP", default="downstream", doc="Consumer group of `gateway consume`."
    )
    consumer_name: str = _env(
        "CONSUMER_NAME", default="consumer-1", doc="Consumer name within the group."
    )
    consumer_claim_idle: float = _env(
        "CONSUMER_CLAIM_IDLE",
        _positive(float),
        default=60.0,
        doc="Seconds an entry may stay unacknowledged before another consumer reclaims it.",
    )
    consumer_max_deliveries: int = _env(
        "CONSUMER_MAX_DELIVERIES",
        _positive(int),
        default=5,
        doc="Deliveries after which an entry goes to the dead-letter stream.",
    )
    dead_letter_stream: str = _env(
        "DEAD_LETTER_STREAM", default="job_events:dead", doc="Name of the dead-letter stream."
    )
    dead_letter_maxlen: int = _env(
        "DEAD_LETTER_MAXLEN",
        _positive(int),
        default=10_000,
        doc="Approximate length the dead-letter stream is trimmed to (`XADD MAXLEN ~`), so "
        "that a flood of bad entries cannot fill Redis' memory; the newest letters are kept.",
    )
    redis_timeout: float = _env(
        "REDIS_TIMEOUT",
        _positive(float),
        default=1.0,
        doc="Seconds a Redis connect or command may take before it counts as an outage.",
    )
    metrics_token: str = _env(
        "METRICS_TOKEN",
        default="",
        doc="Bearer token the API's `/metrics` asks for. Empty: `/metrics` answers loopback "
        "clients only (see [operations](operations.md#metrics)).",
        section="Metrics",
    )
    metrics_port: int = _env(
        "METRICS_PORT",
        _non_negative(int),
        default=0,
        doc="Port of the Prometheus exporter a worker or the relay serves; 0: none (under "
        "`make run` the API's `/metrics` shows every process).",
    )
    metrics_bind_address: str = _env(
        "METRICS_BIND_ADDRESS",
        default="127.0.0.1",
        doc="Address the worker's or the relay's exporter listens on.",
    )
    sse_max_streams: int = _env(
        "SSE_MAX_STREAMS",
        _positive(int),
        default=2,
        doc="Live event streams (`GET /api/jobs/{id}/events/`) one API process serves at once; "
        "one more gets 503. Each holds a gunicorn thread while open: keep it below "
        "`API_THREADS`.",
        section="Live job page",
    )
    sse_heartbeat: float = _env(
        "SSE_HEARTBEAT",
        _positive(float),
        default=15.0,
        doc="Seconds of quiet after which an open event stream sends a heartbeat comment.",
    )
    sse_max_duration: float = _env(
        "SSE_MAX_DURATION",
        _positive(float),
        default=300.0,
        doc="Seconds after which the server ends an event stream; the browser reconnects "
        "with `Last-Event-ID` and continues where it was.",
    )

    def __post_init__(self) -> None:
        if (
            self.auth_mode == "off"
            and not is_loopback(self.bind_address)
            and not self.auth_off_force
        ):
            raise ConfigError(
                f"AUTH_MODE=off is refused with BIND_ADDRESS={self.bind_address}: anyone who can "
                f"reach it would see every job. Use AUTH_MODE=keys, bind to 127.0.0.1, or set "
                f"AUTH_OFF_FORCE=true if a proxy in front authenticates"
            )
        # A stage message stays unacknowledged while it waits for its retry countdown and then
        # while it runs; if the visibility timeout expires meanwhile, it is delivered a second
        # time. Keep the longest such stretch below it.
        vt, backoff, run = (
            self.broker_visibility_timeout,
            self.retry_backoff_max,
            self.longest_stage_run,
        )
        if vt <= backoff + run:
            raise ConfigError(
                f"BROKER_VISIBILITY_TIMEOUT={vt} must exceed RETRY_BACKOFF_MAX + the longest "
                f"stage run ({backoff:g} + {run:g} = {backoff + run:g} s with "
                f"WORKER_POOL={self.worker_pool}; a stage runs up to STAGE_TIME_LIMIT, or up to "
                f"its hard time limit 2 x STAGE_TIME_LIMIT + 10 with WORKER_POOL=prefork)"
            )

        # A job whose stage message waits out the visibility timeout, then runs as long as a
        # stage can, is healthy: resending it sooner would only run it twice.
        stalled, floor = self.stalled_job_timeout, vt + run
        if stalled <= floor:
            raise ConfigError(
                f"STALLED_JOB_TIMEOUT={stalled} must exceed BROKER_VISIBILITY_TIMEOUT + the "
                f"longest stage run ({vt} + {run:g} = {floor:g} s with "
                f"WORKER_POOL={self.worker_pool}); it cannot be 0: without the sweep a stuck "
                f"job would stay processing for ever"
            )

    @property
    def hard_time_limit(self) -> float:
        """Seconds after which the prefork pool kills a stage (Celery's task_time_limit).

        A backstop: providers honour STAGE_TIME_LIMIT themselves. The other pools cannot kill
        a running task.
        """
        return self.stage_time_limit * 2 + 10

    @property
    def longest_stage_run(self) -> float:
        """Seconds one stage can run at most: the hard limit on prefork, else the provider's own."""
        return self.hard_time_limit if self.worker_pool == "prefork" else self.stage_time_limit

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `environ` (default: os.environ); raise ConfigError naming a bad variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f.metadata["env"]
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = f.metadata["parse"](raw.strip())
            except ValueError as exc:
                raise ConfigError(f"{name}={raw!r} is invalid: {exc}") from None
        values.update(overrides)
        return cls(**values)

    @staticmethod
    def is_set(name: str, environ: Mapping[str, str] | None = None) -> bool:
        """Whether variable `name` has a value (`make run` starts its own Redis when REDIS_URL has none)."""
        environ = os.environ if environ is None else environ
        return bool(environ.get(name, "").strip())

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes` applied (tests use it)."""
        return dataclasses.replace(self, **changes)

    @property
    def worker_process_count(self) -> int:
        """How many worker processes `make run` starts."""
        return self.worker_processes or os.cpu_count() or 1

    @property
    def failure_rates(self) -> dict[str, float]:
        """Injected provider failure share per stage (field `<stage>_failure_rate`)."""
        return {stage: getattr(self, f"{stage}_failure_rate") for stage in STAGES}

    @property
    def provider_modules(self) -> list[str]:
        """The plug-in provider modules to import, in order."""
        return [name for name in self.extra_provider_modules.split(",") if name]

    @property
    def language_codes(self) -> tuple[str, ...]:
        """LANGUAGES as a tuple of ISO 639-1 codes."""
        return tuple(self.languages.split(","))

    @property
    def document_limits(self) -> dict[str, Any]:
        """The limits a document must keep to be extracted, as the fields of
        providers.documents.limits.DocumentLimits (built by gateway.services: the command-line
        client imports this module, and none of the providers)."""
        return dict(
            max_document_bytes=self.max_document_bytes,
            max_pdf_bytes=self.max_pdf_bytes,
            max_docx_bytes=self.max_docx_bytes,
            max_html_bytes=self.max_html_bytes,
            max_rtf_bytes=self.max_rtf_bytes,
            max_text_bytes=self.max_text_bytes,
            max_pages=self.max_pdf_pages,
            max_pages_processed=self.max_pages_processed,
            max_inflated_bytes=self.max_inflated_bytes,
            max_compression_ratio=self.max_compression_ratio,
            cpu_seconds=self.extraction_cpu_seconds,
            memory_bytes=self.extraction_memory_mb * MIB,
            wall_seconds=self.extraction_wall_seconds,
        )

    @property
    def providers(self) -> dict[str, str]:
        """Configured provider name per stage."""
        return {stage: getattr(self, name) for stage, name in PROVIDER_FIELDS.items()}
