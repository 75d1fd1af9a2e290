"""List cost against table size: GET /api/jobs/ (gateway.jobs.list_jobs) at 1k and 1M jobs.

Creates one PostgreSQL database per size, migrates each with Alembic, fills them with
INSERT ... SELECT generate_series, times each query shape (first page and a deep page via
cursor, with and without filters) on both sizes in alternation, prints the medians and the
1M/1k ratio, then EXPLAIN (ANALYZE, BUFFERS) of the statements list_jobs really sends, and
checks that no plan scans or sorts the table. Exits 1 if a plan does. The databases are
dropped at the end.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from gateway import jobs
from gateway.config import Settings
from gateway.cursor import encode_cursor
from gateway.db import Database, upgrade_schema

LIMIT = 50
STRICT_FROM = 100_000
TYPES = ("invoice", "letter", "contract", "receipt", "report", "memo", "form", "email", "cv", "id")

# Row i (1 = newest) of the synthetic table. Three rows share each second, so the id
# tie-break is exercised; statuses and types are spread over the whole time range.
FILL = """
WITH new AS (
  INSERT INTO jobs (id, document_name, document_type, document_content, stages, status,
                    error_stage, error_message, dispatched_at, created_at, updated_at)
  SELECT gen_random_uuid()::text, 'Document ' || i, d.type, 'Hi, my name is Gabriela. Doc ' || i,
         d.stages::json, d.status,
         CASE WHEN d.status = 'failed' THEN 'extraction' END,
         CASE WHEN d.status = 'failed' THEN 'Provider timeout' END,
         d.created_at, d.created_at, d.created_at
  FROM generate_series(:first, :last) AS i
  CROSS JOIN LATERAL (SELECT
      (CAST(:types AS text[]))[1 + (i::bigint * 7919 % 10007) % 10] AS type,
      (ARRAY['["extraction"]', '["extraction", "analysis"]',
             '["extraction", "analysis", "enrichment"]'])[1 + i % 3] AS stages,
      CASE WHEN (i * 37) % 100 < 2 THEN 'pending'
           WHEN (i * 37) % 100 < 6 THEN 'processing'
           WHEN (i * 37) % 100 < 14 THEN 'failed'
           WHEN (i * 37) % 100 < 20 THEN 'cancelled'
           ELSE 'completed' END AS status,
      TIMESTAMPTZ '2026-01-01 00:00:00+00' - make_interval(secs => i / 3) AS created_at
  ) AS d
  RETURNING id, stages, status, updated_at
)
INSERT INTO stage_runs (job_id, position, name, status, task_id, attempts, result, updated_at)
SELECT new.id, p, (ARRAY['extraction', 'analysis', 'enrichment'])[p + 1],
       CASE WHEN new.status = 'completed' THEN 'completed' ELSE 'skipped' END,
       gen_random_uuid()::text, 1,
       CASE WHEN new.status = 'completed' THEN '{"text": "x"}'::json END, new.updated_at
FROM new CROSS JOIN LATERAL generate_series(0, json_array_length(new.stages) - 1) AS p
"""


class Timing(NamedTuple):
    """Median and minimum milliseconds of one query shape, and the rows of its page."""

    median: float
    best: float
    rows: int


def shapes(deep_cursor: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every query shape the API serves, as list_jobs keyword arguments."""
    filters: list[tuple[str, dict[str, Any]]] = [
        ("no filter", {}),
        ("status=completed", {"statuses": ["completed"]}),
        ("status=pending (2%)", {"statuses": ["pending"]}),
        ("document_type=memo", {"document_type": "memo"}),
        ("type=absent (no rows)", {"document_type": "absent"}),
        ("type=memo & status=failed", {"document_type": "memo", "statuses": ["failed"]}),
        ("status=pending|failed", {"statuses": ["pending", "failed"]}),
        (
            "type=memo & pending|failed",
            {"document_type": "memo", "statuses": ["pending", "failed"]},
        ),
    ]
    for name, kwargs in filters:
        yield f"{name}, first page", kwargs
        yield f"{name}, deep page", {**kwargs, "cursor": deep_cursor}


def fill(database: Database, first: int, last: int, chunk: int = 200_000) -> None:
    """Add jobs number `first`..`last` (and their stage runs) in chunks, then ANALYZE."""
    for start in range(first, last + 1, chunk):
        end = min(last, start + chunk - 1)
        with database.engine.begin() as conn:
            conn.execute(text(FILL), {"first": start, "last": end, "types": list(TYPES)})
        print(f"  filled jobs {start:,}..{end:,}", flush=True)
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE jobs"))
        conn.execute(text("VACUUM ANALYZE stage_runs"))
        # Flush the fill's dirty pages now rather than during the timings.
        conn.execute(text("CHECKPOINT"))


def middle_cursor(database: Database, size: int) -> str:
    """The cursor a client holds after walking half of the table."""
    with database.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT created_at, id FROM jobs ORDER BY created_at DESC, id DESC OFFSET :n LIMIT 1"
            ),
            {"n": size // 2},
        ).one()
    return encode_cursor(row.created_at, row.id)


Case = tuple[str, int, Database, dict[str, Any]]  # label, size, database, list_jobs arguments


def timed(cases: list[Case], repeats: int) -> dict[tuple[str, int], Timing]:
    """Wall time of one GET-equivalent (a fresh session, list_jobs, its stage runs) per case.

    Cases (both sizes, every shape) take turns, a few runs each: a burst of load from
    elsewhere on a shared machine then spreads over all of them instead of spoiling one size.
    """
    samples: dict[tuple[str, int], list[float]] = {(c[0], c[1]): [] for c in cases}
    rows: dict[tuple[str, int], int] = {}
    turns = 5
    for _ in range(turns):
        for label, size, database, kwargs in cases:
            for i in range(1 + -(-repeats // turns)):
                started = time.perf_counter()
                with database.session() as session:
                    page = jobs.list_jobs(session, limit=LIMIT, **kwargs)
                elapsed = time.perf_counter() - started
                # An empty page measures nothing, unless emptiness is the point of the shape.
                assert page.jobs or kwargs.get("document_type") == "absent", kwargs
                rows[label, size] = len(page.jobs)
                if i > 0:  # the first run of each turn warms the cache up
                    samples[label, size].append(elapsed)
    return {
        key: Timing(statistics.median(s) * 1000, min(s) * 1000, rows[key])
        for key, s in samples.items()
    }


@contextmanager
def captured(database: Database) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (and parameters) sent inside the block."""
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(database.engine, "before_cursor_execute", record)


def explain(database: Database, kwargs: dict[str, Any]) -> tuple[list[str], list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement list_jobs sends; and the plan problems found."""
    with captured(database) as statements, database.session() as session:
        jobs.list_jobs(session, limit=LIMIT, **kwargs)
    plans, problems = [], []
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in statements:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
            (document,) = cursor.fetchall()[0]
            problems += plan_problems(document[0]["Plan"], kwargs)
    finally:
        raw.close()
    return plans, problems


def plan_problems(node: dict[str, Any], kwargs: dict[str, Any]) -> list[str]:
    """Seq Scans of our tables, and Sorts fed more rows than the pages they merge."""
    found = []
    bound = (LIMIT + 1) * max(1, len(kwargs.get("statuses", ())))
    children = node.get("Plans", [])
    if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in ("jobs", "stage_runs"):
        found.append(f"Seq Scan on {node['Relation Name']}")
    if node["Node Type"] in ("Sort", "Incremental Sort"):
        fed = sum(c["Actual Rows"] * c["Actual Loops"] for c in children)
        if fed > 3 * bound:  # stage runs: up to 3 per job
            found.append(f"Sort over {fed} rows")
    for child in children:
        found += plan_problems(child, kwargs)
    return found


def run(admin_url: str, sizes: list[int], repeats: int) -> int:
    """The whole benchmark on throwaway databases; returns the exit status."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = {size: f"gateway_bench_{size}_{uuid.uuid4().hex[:8]}" for size in sizes}
    databases: dict[int, Database] = {}
    try:
        for size, name in names.items():
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = admin.url.set(database=name).render_as_string(hide_password=False)
            upgrade_schema(url)
            databases[size] = Database(url)
            print(f"\n== {size:,} jobs in {name}", flush=True)
            started = time.perf_counter()
            fill(databases[size], 1, size)
            print(f"  fill + VACUUM ANALYZE: {time.perf_counter() - started:.1f} s")
        cases = [
            (label, size, database, kwargs)
            for size, database in databases.items()
            for label, kwargs in shapes(middle_cursor(database, size))
        ]
        print(f"\n== timing {len(cases)} cases, sizes in alternation", flush=True)
        report(timed(cases, repeats), sizes)
        return check_plans(databases[sizes[-1]], sizes[-1])
    finally:
        for database in databases.values():
            database.dispose()
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def check_plans(database: Database, size: int) -> int:
    """Print the plans of the deep pages and judge every shape's; 1 if one scans or sorts."""
    print(f"\n== EXPLAIN (ANALYZE, BUFFERS) at {size:,} jobs")
    # On a small table a Seq Scan is the planner's right choice; judge plans on big ones.
    strict = size >= STRICT_FROM
    failures = 0
    for number, (label, kwargs) in enumerate(shapes(middle_cursor(database, size))):
        plans, problems = explain(database, kwargs)
        # First pages use the same plans over shorter ranges, and every shape loads its
        # stage runs with the same statement: print the rest once.
        shown = plans if number == 1 else plans[:1]
        if "deep" in label or problems:
            print(f"\n-- {label}")
            for plan in plans if problems else shown:
                print(re.sub(r"'\{[^}]{100,}\}'", "'{...page ids...}'", plan))
        status = "PROBLEM: " + "; ".join(problems) if problems else "index only, no scan/sort"
        print(f"   {label}: {status}")
        failures += bool(problems)
    if failures and not strict:
        print(f"\n(plans are only judged from {STRICT_FROM:,} jobs on)")
    return 1 if failures and strict else 0


def report(results: dict[tuple[str, int], Timing], sizes: list[int]) -> None:
    """Medians (and minimums, less disturbed by a busy machine) side by side, with their ratio.

    A page with fewer rows costs less to load, so the rows served are shown too.
    """
    small, large = sizes[0], sizes[-1]
    print(f"\n== ms per request (limit {LIMIT}): median, min; ratio = {large:,} / {small:,}")
    print(
        f"  {'query':<38} {f'{small:,}':>13} {'rows':>4} {f'{large:,}':>13} {'rows':>4}"
        f"  {'ratio median':>12} {'min':>5}"
    )
    for label in dict.fromkeys(label for label, _ in results):
        a, b = results[label, small], results[label, large]
        print(
            f"  {label:<38} {a.median:6.2f} {a.best:6.2f} {a.rows:4} {b.median:6.2f} {b.best:6.2f}"
            f" {b.rows:4}  {b.median / a.median:12.2f} {b.best / a.best:5.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmark."""
    settings = Settings.from_env()
    default_admin = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    if make_url(settings.database_url).get_backend_name() == "postgresql":
        default_admin = (
            make_url(settings.database_url)
            .set(database="postgres")
            .render_as_string(hide_password=False)
        )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--admin-url", default=default_admin, help="PostgreSQL server to use")
    parser.add_argument("--sizes", default="1000,1000000", help="table sizes, ascending")
    parser.add_argument("--repeats", type=int, default=25, help="timed runs per query shape")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    return run(args.admin_url, sizes, args.repeats)


if __name__ == "__main__":
    sys.exit(main())
