"""The `gateway` client commands, run as a person runs them (subprocesses, a pseudo-terminal)
against a live API and worker: what they print and the exit status they end with."""

from __future__ import annotations

import json
import re
import uuid

from gateway import runs
from gateway.api.schemas import INVALID_COMBINATION
from tests.factories import DOCUMENT, RESULTS, make_job, make_job_in, make_pdf
from tests.support import (
    Terminal,
    api_key,
    client_environ,
    free_port,
    gateway,
    keyed_settings,
    load_job,
    served,
    wait_for_job,
    wait_until,
)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_a_file_submitted_is_watched_to_its_end_and_its_status_shows_every_stage(
    app, worker, tmp_path
):
    letter = tmp_path / "letter.txt"
    letter.write_text(DOCUMENT)
    with served(app) as url:
        env = client_environ(tmp_path / "run.json", GATEWAY_URL=url)

        # When a person submits a file, they get its job id, alone on stdout
        submitted = gateway("submit", str(letter), env=env)
        assert submitted.returncode == 0, submitted.stderr
        job_id = submitted.stdout.strip()
        assert UUID.match(job_id), submitted.stdout
        assert f"job {job_id} pending: extraction, analysis, enrichment" in submitted.stderr

        # Then watching it (on a pipe: a line per change) ends when it completed, with status 0
        watched = gateway("watch", job_id, env=env)
        assert watched.returncode == 0, watched.stdout + watched.stderr
        lines = watched.stdout.splitlines()
        assert lines[0] == f"job {job_id}: letter.txt (txt)"
        for stage in ("extraction", "analysis", "enrichment"):
            assert f"{stage}: completed" in lines, watched.stdout
        assert lines[-1] == f"job {job_id} completed"

        # And its status shows each stage with its attempts and a summary of its result
        shown = gateway("status", job_id, env=env)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"document +letter\.txt \(txt\)", shown.stdout)
    assert re.search(r"status +completed", shown.stdout)
    assert re.search(r"analysis +completed +1 .*intent=cancellation", shown.stdout)
    stored = load_job(app, job_id)
    assert (stored.document_name, stored.document_type, stored.status) == (
        "letter.txt",
        "txt",
        "completed",
    )


def test_stdin_is_submitted_with_the_stages_given_and_waited_for(app, worker, tmp_path):
    with served(app) as url:
        env = client_environ(tmp_path / "run.json", GATEWAY_URL=url)
        done = gateway(
            "submit", "-", "--stages", "extraction", "--name", "memo", "--type", "note",
            "--wait", "--json", env=env, input=DOCUMENT,
        )  # fmt: skip
    # The id comes first, then the job as it ended; the progress went to stderr
    assert done.returncode == 0, done.stderr
    job_id, last = done.stdout.splitlines()
    job = json.loads(last)
    assert job["id"] == job_id and job["status"] == "completed"
    assert (job["document_name"], job["document_type"]) == ("memo", "note")
    assert job["pipeline_config"]["stages"] == ["extraction"]
    assert job["results"]["stages"]["extraction"]["results"]["text"] == DOCUMENT
    assert "extraction: completed" in done.stderr


def test_what_the_api_refuses_is_shown_as_its_problem_detail_with_exit_status_1(app, tmp_path):
    with served(app) as url:
        env = client_environ(tmp_path / "run.json", GATEWAY_URL=url)
        invalid = gateway("submit", "-", "--stages", "analysis", env=env, input="Hi")
        unknown = gateway("status", str(uuid.uuid4()), env=env)
        usage = gateway("list", "--status", "lost", env=env)
    nowhere = dict(env, GATEWAY_URL=f"http://127.0.0.1:{free_port()}")
    unreachable = gateway("list", env=nowhere)

    assert invalid.returncode == 1
    assert "Error: 400 Bad Request: The request body is invalid." in invalid.stderr
    assert f"  pipeline_config: {INVALID_COMBINATION}" in invalid.stderr
    assert unknown.returncode == 1
    assert "Error: 404 Not Found: Not found." in unknown.stderr
    assert usage.returncode == 2 and "'lost' is not one of" in usage.stderr
    assert unreachable.returncode == 1
    assert f"cannot reach the API at {nowhere['GATEWAY_URL']}" in unreachable.stderr
    assert invalid.stdout == unknown.stdout == unreachable.stdout == ""


def test_a_pdf_is_sent_as_base64_and_read_by_the_real_extractor(make_app, worker_for, tmp_path):
    app = make_app(extractor_provider="default")
    worker_for(app)
    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(make_pdf(["Invoice INV-2024-0042", "Total due: $1,188.00"]))
    with served(app) as url:
        env = client_environ(tmp_path / "run.json", GATEWAY_URL=url)
        done = gateway(
            "submit", str(invoice), "--stages", "extraction", "--wait", "--json", env=env
        )
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout.splitlines()[-1])
    assert (job["document_name"], job["document_type"]) == ("invoice.pdf", "pdf")
    result = job["results"]["stages"]["extraction"]["results"]
    assert (result["content_type"], result["pages"]) == ("application/pdf", 2)
    assert result["text"] == "Invoice INV-2024-0042\n\nTotal due: $1,188.00"


def test_list_filters_by_status_and_pages_with_the_cursor(app, session, tmp_path):
    failed = [make_job_in(session, "failed").id for _ in range(3)]
    make_job_in(session, "completed")
    with served(app) as url:
        env = client_environ(tmp_path / "run.json", GATEWAY_URL=url)
        first = gateway("list", "--status", "failed", "--limit", "2", env=env)
        every = gateway("list", "--status", "failed", "--limit", "2", "--all", "--json", env=env)
        cursor = re.search(r"gateway list --cursor (\S+)", first.stderr)
        assert cursor, first.stderr
        rest = gateway("list", "--status", "failed", "--limit", "2", "--cursor", cursor[1], env=env)

    # The first page shows the two newest failed jobs, and how to get the next one
    assert first.returncode == 0, first.stderr
    rows = [line.split() for line in first.stdout.splitlines()[1:]]
    assert [(row[0], row[1]) for row in rows] == [(failed[2], "failed"), (failed[1], "failed")]
    assert rest.returncode == 0 and failed[0] in rest.stdout and failed[1] not in rest.stdout
    # --all follows every cursor; --json prints each job as the API returns it
    assert every.returncode == 0, every.stderr
    listed = [json.loads(line) for line in every.stdout.splitlines()]
    assert [job["id"] for job in listed] == failed[::-1]
    assert {job["status"] for job in listed} == {"failed"}


def test_cancel_and_retry_act_on_the_job_and_watch_exits_by_how_it_ended(
    app, worker, session, tmp_path
):
    to_retry = make_job_in(session, "failed", at="analysis")
    stays_failed = make_job_in(session, "failed", at="enrichment")
    pending = make_job(session)  # never sent: it waits, pending
    with served(app) as url:
        env = client_environ(tmp_path / "run.json", GATEWAY_URL=url)
        # A failed job retried resumes from its failed stage and completes
        retried = gateway("retry", to_retry.id, "--wait", env=env)
        again = gateway("retry", to_retry.id, env=env)
        cancelled = gateway("cancel", pending.id, env=env)
        twice = gateway("cancel", pending.id, env=env)
        watch_cancelled = gateway("watch", pending.id, env=env)
        watch_failed = gateway("watch", stays_failed.id, env=env)

    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert retried.stdout.splitlines()[-1] == f"job {to_retry.id} completed"
    resumed = load_job(app, to_retry.id)
    assert [(r.status, r.attempts) for r in resumed.runs] == [
        ("completed", 1), ("completed", 2), ("completed", 1)
    ]  # fmt: skip
    assert resumed.runs[0].result == RESULTS["extraction"]  # kept, not redone
    assert again.returncode == 1
    assert "Error: 400 Bad Request: Cannot retry job from status completed" in again.stderr

    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout == f"job {pending.id} cancelled\n"
    assert twice.returncode == 1
    assert "Cannot cancel job from status cancelled" in twice.stderr

    assert watch_cancelled.returncode == 4, watch_cancelled.stdout
    assert watch_cancelled.stdout.splitlines()[-1] == f"job {pending.id} cancelled"
    assert watch_failed.returncode == 3, watch_failed.stdout
    assert watch_failed.stdout.splitlines()[-1] == (
        f"job {stays_failed.id} failed at enrichment: enrichment failed: provider unavailable"
    )


def test_watch_in_a_terminal_draws_a_live_bar_per_stage_until_the_job_completes(
    app, session, tmp_path
):
    # Given a job whose extraction runs (no worker: the test moves it on)
    job = make_job_in(session, "processing", at="extraction")
    with served(app) as url:
        env = client_environ(tmp_path / "run.json", GATEWAY_URL=url)
        terminal = Terminal("watch", job.id, "--interval", "0.1", env=env)
        try:
            # When it is watched in a terminal, each stage has its bar and its state
            running = r"extraction +━+ +\d+\.\d s running, attempt 1"
            wait_until(lambda: re.search(running, terminal.text), timeout=30)
            assert re.search(r"analysis +━+ +pending", terminal.text), terminal.text
            assert re.search(r"enrichment +━+ +pending", terminal.text), terminal.text
            # And as the stages move on, the bars are redrawn in place
            assert runs.complete_stage(session, job.id, "extraction", RESULTS["extraction"])
            assert runs.start_stage(session, job.id, "analysis") is not None
            moved = r"extraction +━+ +\d+\.\d s completed"
            wait_until(lambda: re.search(moved, terminal.text), timeout=15)
            assert runs.complete_stage(session, job.id, "analysis", RESULTS["analysis"])
            assert runs.start_stage(session, job.id, "enrichment") is not None
            assert runs.complete_stage(session, job.id, "enrichment", RESULTS["enrichment"])
            # Then it exits 0 once the job completed, every bar full
            assert terminal.wait(timeout=30) == 0, terminal.text
        finally:
            terminal.close()
    screen = terminal.text
    assert "\x1b[1A" in terminal.raw and "\x1b[2K" in terminal.raw  # redrawn, not appended
    final = screen[screen.rindex("extraction") :]
    assert re.search(r"analysis +━{30} +\d+\.\d s completed", final), final
    assert re.search(r"enrichment +━{30} +(\d+\.\d s )?completed", final), final
    assert f"job {job.id} completed" in final
    assert wait_for_job(app, job.id, "completed")


def test_an_api_with_keys_is_called_with_GATEWAY_API_KEY(make_app, tmp_path):
    keyed = make_app(**keyed_settings())
    headers = api_key(keyed, "acme")
    with served(keyed) as url:
        env = client_environ(tmp_path / "run.json", GATEWAY_URL=url)
        refused = gateway("list", env=env)
        key = headers["Authorization"].removeprefix("Bearer ")
        listed = gateway("list", "--json", env=dict(env, GATEWAY_API_KEY=key))
    assert refused.returncode == 1
    assert "Error: 401 Unauthorized" in refused.stderr
    assert "set GATEWAY_API_KEY" in refused.stderr
    assert listed.returncode == 0, listed.stderr
