"""The run file of `make run`: the commands of another shell find its Redis, database and API
there, and without it (or with one left by a dead launcher) they refuse to guess a server."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import redis

from gateway import runfile
from gateway.config import Settings
from tests.support import client_environ, gateway


def dead_pid() -> int:
    """The id of a process that has exited (and was reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_run_file_is_private_read_while_its_launcher_lives_and_removed_after(tmp_path):
    path = tmp_path / "instance" / "run.json"
    chosen = {"REDIS_URL": "redis://127.0.0.1:7000/0", "FLOWER_URL": "http://admin:pw@h/"}
    with runfile.published(path, chosen):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # Flower's password is in it
        assert runfile.read(path) == chosen
        # What the environment sets wins; what it does not set comes from the file
        filled = runfile.fill({"RUN_FILE": str(path), "REDIS_URL": "redis://mine:1/0"})
        assert filled["REDIS_URL"] == "redis://mine:1/0"
        assert filled["FLOWER_URL"] == "http://admin:pw@h/"
    assert not path.exists()


def test_a_run_file_left_by_a_dead_launcher_or_another_one_is_handled(tmp_path):
    path = tmp_path / "run.json"
    runfile.write(path, {"REDIS_URL": "redis://127.0.0.1:7000/0"})
    content = path.read_text().replace(f'"pid": {os.getpid()}', f'"pid": {dead_pid()}')
    path.write_text(content)
    assert runfile.read(path) == {}  # its launcher is gone: ignored
    assert runfile.fill({"RUN_FILE": str(path)}) == {"RUN_FILE": str(path)}

    # A launcher does not remove the file a later one wrote over its own
    with runfile.published(path, {"REDIS_URL": "redis://first:1/0"}):
        path.write_text(content)
    assert path.exists()


def test_settings_and_commands_agree_on_where_the_run_file_is(tmp_path):
    assert Settings.from_env({}).run_file == str(runfile.location({}))
    chosen = {"RUN_FILE": str(tmp_path / "x.json")}
    assert Settings.from_env(chosen).run_file == str(runfile.location(chosen))


def test_without_redis_url_or_a_running_make_run_commands_refuse_to_guess_a_redis(tmp_path):
    # Given no REDIS_URL, and a run file left behind by a launcher that died
    path = tmp_path / "run.json"
    runfile.write(path, {"REDIS_URL": "redis://127.0.0.1:1/0"})
    path.write_text(path.read_text().replace(f'"pid": {os.getpid()}', f'"pid": {dead_pid()}'))
    env = client_environ(path)
    # When the consumer or events tail start, they stop at once, saying what to do
    for args in (["consume"], ["events", "tail"]):
        done = gateway(*args, env=env, timeout=60)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "REDIS_URL is not set, and no `make run` is running here" in done.stderr
        assert "Traceback" not in done.stderr


def test_dlq_finds_redis_and_the_database_in_the_run_file(postgres_url, redis_server, tmp_path):
    # Given a run file of a live launcher (this process) naming the test Redis and database
    path = tmp_path / "run.json"
    client = redis_server.url(db=5)
    values = {"REDIS_URL": client, "DATABASE_URL": postgres_url}
    with runfile.published(path, values):
        env = client_environ(path, DEAD_LETTER_STREAM="job_events:dead:runfile")
        letters = redis.Redis.from_url(client)
        letters.xadd(
            "job_events:dead:runfile", {"event_id": "e1", "job_id": "j1", "reason": "boom"}
        )
        try:
            # When `gateway dlq list` runs with neither REDIS_URL nor DATABASE_URL set
            done = gateway("dlq", "list", env=env)
        finally:
            letters.flushdb()
            letters.close()
    # Then it read the Redis the run file names
    assert done.returncode == 0, done.stderr
    assert "job_events:dead:runfile: 1 letter(s)" in done.stdout
    assert "boom" in done.stdout
