"""`make mutation`: mutation testing of the service layer, then its score per module.

1. mutmut (configured in setup.cfg's [mutmut]) mutates the function bodies of the service
   modules and runs, for each mutant, the fast tests that call the mutated function. Every
   mutant starts a pytest session of its own, so each copies a database migrated once here
   (TEST_DATABASE_TEMPLATE, see tests/conftest.py) instead of migrating one.
2. mutmut leaves alone what runs at import: the conditional statements the service modules
   build once (`_RETRY_RUN = runs_update(...)`). HAND_MUTANTS below changes those by hand,
   with the known mutants its operators do not make (a condition dropped from a WHERE), each
   in a copy of the tree, and runs the tests that should kill it.

MUTATION_CHILDREN (default 2) bounds the parallel mutants; MUTANTS (mutmut names or name globs,
as `gateway.runs.*`, separated by spaces) narrows step 1, tests those mutants again even if they
have a result (after a test was added), and skips step 2. Not part of `make test` (docs/testing.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

from gateway.db import upgrade_schema
from tests.support import PG_ADMIN_URL, PROJECT_DIR

# mutmut's exit codes of a mutant's test run (mutmut.stats.status_by_exit_code)
KILLED = {1, 3, 36, 24, -24, 152, 255}  # failed, or ran out of time
NO_TESTS = {5, 33}
TARGET = 0.90


@dataclass(frozen=True)
class HandMutant:
    """A change made by hand, and the tests that must notice it."""

    path: str
    original: str
    mutated: str
    tests: str
    what: str


HAND_MUTANTS = [
    HandMutant(
        "gateway/runs.py",
        "_RETRY_RUN = runs_update(\n    (StageStatus.STARTED,)",
        "_RETRY_RUN = runs_update(\n    (StageStatus.PENDING, StageStatus.STARTED)",
        "tests/test_stage_runs.py -k retry",
        "a retry recorded for a stage that is not running",
    ),
    HandMutant(
        "gateway/runs.py",
        '(StageStatus.STARTED,), error=bindparam("message"), failures',
        "(StageStatus.STARTED,), failures",
        "tests/test_stage_runs.py -k retry",
        "the retry's error not stored",
    ),
    HandMutant(
        "gateway/runs.py",
        "    attempts=RUNS.c.attempts + 1,\n    error=None,\n",
        "    attempts=RUNS.c.attempts + 1,\n",
        "tests/test_stage_runs.py -k next_attempt",
        "the next attempt keeps the error of the one before",
    ),
    HandMutant(
        "gateway/runs.py",
        "_COMPLETE_RUN = runs_update(\n    (StageStatus.STARTED,),",
        "_COMPLETE_RUN = runs_update(\n    (StageStatus.PENDING, StageStatus.STARTED),",
        "tests/test_stage_runs.py -k never_started",
        "a stage that never started completed",
    ),
    HandMutant(
        "gateway/runs.py",
        "_FAIL_RUN = runs_update(\n    (StageStatus.PENDING, StageStatus.STARTED),",
        "_FAIL_RUN = runs_update(\n    (StageStatus.PENDING, StageStatus.STARTED, StageStatus.COMPLETED),",
        "tests/test_jobs_service.py -k cannot_be_failed",
        "a completed stage failed",
    ),
    HandMutant(
        "gateway/jobs.py",
        "_CANCEL_RUNNING = runs_update(\n    (StageStatus.STARTED,)",
        "_CANCEL_RUNNING = runs_update(\n    (StageStatus.STARTED, StageStatus.COMPLETED)",
        "tests/test_api_cancel.py -k during_analysis",
        "a cancel that discards the completed stages' results",
    ),
    HandMutant(
        "gateway/transitions.py",
        "    (StageStatus.PENDING,), one_stage=False, status=StageStatus.SKIPPED.value",
        "    (StageStatus.PENDING,), one_stage=False, status=StageStatus.CANCELLED.value",
        "tests/test_jobs_service.py -k skips_later_stages",
        "the stages after a failure cancelled rather than skipped",
    ),
    HandMutant(
        "gateway/dispatch.py",
        "JOBS.c.id == job_id, JOBS.c.dispatched_at.is_(None), JOBS.c.status == _PENDING",
        "JOBS.c.id == job_id, JOBS.c.status == _PENDING",
        "tests/test_dispatch_claims.py -k claimed",
        "a chain claimed (and sent) twice",
    ),
    HandMutant(
        "gateway/dispatch.py",
        "JOBS.c.dispatched_at.is_(None), JOBS.c.created_at < created_before",
        "JOBS.c.dispatched_at.is_(None)",
        "tests/test_dispatch_claims.py -k undispatched_sweep",
        "the undispatched sweep without its age bound",
    ),
    HandMutant(
        "gateway/dispatch.py",
        ".where(_stallable(), JOBS.c.updated_at < updated_before)\n            .order_by",
        ".where(JOBS.c.updated_at < updated_before)\n            .order_by",
        "tests/test_dispatch_claims.py -k stalled_sweep",
        "the stalled sweep without its status filter",
    ),
    HandMutant(
        "gateway/dispatch.py",
        "JOBS.c.id == job_id, _stallable(), JOBS.c.updated_at < updated_before",
        "JOBS.c.id == job_id, _stallable()",
        "tests/test_dispatch_claims.py -k stalled",
        "a stalled claim without its age bound",
    ),
    HandMutant(
        "gateway/dispatch.py",
        "or_(processing, and_(JOBS.c.status == _PENDING, JOBS.c.dispatched_at.is_not(None)))",
        "or_(processing, JOBS.c.status == _PENDING)",
        "tests/test_dispatch_claims.py -k stalled",
        "an unsent pending job taken for stalled",
    ),
    HandMutant(
        "gateway/jobs.py",
        "if run.status in (StageStatus.CANCELLED.value, StageStatus.SKIPPED.value)",
        "if run.status in (StageStatus.CANCELLED.value,)",
        "tests/test_jobs_service.py -k task_ids",
        "the skipped stages left out of the task ids to revoke",
    ),
    HandMutant(
        "gateway/jobs.py",
        "    while True:\n        previous = get_job(session, job_id, tenant).status\n",
        "    previous = get_job(session, job_id, tenant).status\n"
        "    while True:\n        get_job(session, job_id, tenant)\n",
        "tests/test_jobs_service.py -k racing_a_start",
        "a stale previous_status when cancel races a start",
    ),
    HandMutant(
        "gateway/runs.py",
        "_START_RUN = runs_update(\n    (StageStatus.PENDING, StageStatus.STARTED),",
        "_START_RUN = runs_update(\n    (StageStatus.PENDING, StageStatus.STARTED, StageStatus.COMPLETED),",
        "tests/test_stage_runs.py -k completed_does_not_start",
        "a stage that completed started again by a duplicate delivery",
    ),
    HandMutant(
        "gateway/runs.py",
        "_COMPLETE_JOB = job_update(_PROCESSING, status=JobStatus.COMPLETED.value)",
        "_COMPLETE_JOB = job_update(_PROCESSING)",
        "tests/test_stage_runs.py -k last_one_completes",
        "the last stage completed and its job left processing",
    ),
    HandMutant(
        "gateway/transitions.py",
        '.where(JOBS.c.id == bindparam("job"), JOBS.c.status.in_(when))',
        '.where(JOBS.c.id == bindparam("job"))',
        "tests/test_api_retry.py -k refused",
        "a job updated whatever its status",
    ),
]


@contextlib.contextmanager
def template_database() -> Iterator[str]:
    """A database migrated once, dropped on exit: each mutant's session copies it."""
    name = f"gateway_mutation_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        upgrade_schema(admin.url.set(database=name).render_as_string(hide_password=False))
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_mutmut(children: int, patterns: list[str]) -> None:
    mutmut = Path(sys.executable).parent / "mutmut"
    command = [str(mutmut), "run", "--max-children", str(children)]
    subprocess.run([*command, *patterns], cwd=PROJECT_DIR, check=False)


def mutmut_scores() -> tuple[int, int]:
    """Print killed/total per mutated module and the survivors; return the totals."""
    killed_total = total = 0
    survivors: list[str] = []
    for meta in sorted((PROJECT_DIR / "mutants").glob("**/*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        counts = Counter(
            "killed" if c in KILLED else "no tests" if c in NO_TESTS else "survived"
            for c in codes.values()
            if c is not None
        )
        checked = sum(counts.values())
        survivors += [k for k, c in codes.items() if c is not None and c not in KILLED]
        killed_total += counts["killed"]
        total += checked
        module = meta.relative_to(PROJECT_DIR / "mutants").as_posix().removesuffix(".meta")
        print(
            f"  {module:28} {counts['killed']:4}/{checked:<4} killed  {_percent(counts['killed'], checked)}"
        )
    print(
        f"  {'mutmut, all modules':28} {killed_total:4}/{total:<4} killed  {_percent(killed_total, total)}"
    )
    if survivors:
        print("  survivors (mutmut show NAME):", *sorted(survivors), sep="\n    ")
    return killed_total, total


def run_hand_mutants(children: int) -> int:
    """Apply each statement mutant to a copy of the tree and run its tests, `children` at a
    time; return the kills."""
    with ThreadPoolExecutor(max_workers=children) as pool:
        results = list(pool.map(_run_hand_mutant, HAND_MUTANTS))
    killed = 0
    for mutant, result in zip(HAND_MUTANTS, results, strict=True):
        outcomes = {0: "SURVIVED", 1: "killed"}
        killed += result.returncode == 1
        print(f"  {mutant.path}: {mutant.what}: ", end="")
        print(
            outcomes.get(result.returncode) or f"ERROR {result.returncode}\n{result.stdout[-2000:]}"
        )
    print(f"  {'made by hand':28} {killed:4}/{len(HAND_MUTANTS):<4} killed")
    return killed


def _run_hand_mutant(mutant: HandMutant) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="gateway-mutant-") as tmp:
        tree = Path(tmp)
        for name in ("gateway", "events", "tasks", "providers", "tests"):
            shutil.copytree(PROJECT_DIR / name, tree / name, ignore=_CACHES)
        for name in ("setup.cfg", "worker.py", "wsgi.py", "celeryconfig.py"):
            shutil.copy2(PROJECT_DIR / name, tree / name)
        source = tree / mutant.path
        original = source.read_text()
        assert original.count(mutant.original) == 1, mutant
        source.write_text(original.replace(mutant.original, mutant.mutated))
        # The tree's own copy comes first on the path, ahead of the installed project.
        env = {**os.environ, "PYTHONPATH": str(tree)}
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
        return subprocess.run(
            [*command, *shlex.split(mutant.tests)],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )


_CACHES = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def main() -> int:
    children = int(os.environ.get("MUTATION_CHILDREN", "2"))
    patterns = os.environ.get("MUTANTS", "").split()
    started = time.monotonic()
    with template_database() as template:
        os.environ["TEST_DATABASE_TEMPLATE"] = template
        run_mutmut(children, patterns)
        print("\nmutmut, killed per module:")
        killed, total = mutmut_scores()
        if not patterns:
            print("\nMutants made by hand:")
            killed += run_hand_mutants(children)
            total += len(HAND_MUTANTS)
    minutes = (time.monotonic() - started) / 60
    print(f"\nScore: {killed}/{total} killed, {_percent(killed, total)} in {minutes:.0f} min")
    return 0 if total and killed / total >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
