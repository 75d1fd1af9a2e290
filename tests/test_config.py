"""Settings: coercion, and start-up refusal that names the bad variable.

The defaults are not restated here: docs/configuration.md shows them, generated from Settings
(test_config_docs), and the settings checks below hold them to the delivery guarantees."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.errors import ConfigError


def test_values_are_read_from_the_environment_and_coerced():
    settings = Settings.from_env(
        {
            "PORT": "9001",
            "ANALYSIS_FAILURE_RATE": "0.25",
            "PROVIDER_LATENCY_SCALE": "0",
            "EVENTS_STREAM": "s",
            "DEAD_LETTER_MAXLEN": "500",
        }
    )
    assert settings.port == 9001
    assert settings.analysis_failure_rate == 0.25
    assert settings.provider_latency_scale == 0.0
    assert settings.events_stream == "s"
    assert settings.dead_letter_maxlen == 500


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "0"),
        ("EXTRACTION_FAILURE_RATE", "1.5"),
        ("STAGE_MAX_RETRIES", "-1"),
        ("PROVIDER_LATENCY_SCALE", "fast"),
        ("WORKER_POOL", "eventlet"),
        ("DEAD_LETTER_MAXLEN", "0"),
    ],
)
def test_a_bad_value_stops_startup_naming_the_variable(variable, value):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value})


def test_plain_postgresql_urls_use_the_installed_driver():
    for url in ("postgresql://u@h/db", "postgres://u@h/db"):
        assert (
            Settings.from_env({"DATABASE_URL": url}).database_url == "postgresql+psycopg2://u@h/db"
        )


def test_visibility_timeout_must_exceed_the_stage_time_limit_and_backoff():
    with pytest.raises(ConfigError, match="BROKER_VISIBILITY_TIMEOUT"):
        Settings.from_env({"BROKER_VISIBILITY_TIMEOUT": "20", "STAGE_TIME_LIMIT": "30"})
    with pytest.raises(ConfigError, match="RETRY_BACKOFF_MAX"):
        Settings.from_env({"BROKER_VISIBILITY_TIMEOUT": "40", "RETRY_BACKOFF_MAX": "60"})


def test_visibility_timeout_must_outlast_a_retry_countdown_followed_by_a_whole_run():
    # A retry is an unacknowledged message held for its countdown, then run, then acknowledged
    limits = {"STAGE_TIME_LIMIT": "30", "RETRY_BACKOFF_MAX": "30"}
    with pytest.raises(ConfigError, match="BROKER_VISIBILITY_TIMEOUT=60 must exceed"):
        Settings.from_env({**limits, "BROKER_VISIBILITY_TIMEOUT": "60"})
    assert Settings.from_env({**limits, "BROKER_VISIBILITY_TIMEOUT": "61"})


def test_on_prefork_the_visibility_timeout_must_outlast_the_hard_time_limit():
    # Prefork lets a stage run until its hard limit, 2 x STAGE_TIME_LIMIT + 10 = 70 s here
    limits = {
        "STAGE_TIME_LIMIT": "30",
        "RETRY_BACKOFF_MAX": "30",
        "BROKER_VISIBILITY_TIMEOUT": "100",
    }
    assert Settings.from_env({**limits, "WORKER_POOL": "threads"})
    with pytest.raises(
        ConfigError, match=r"BROKER_VISIBILITY_TIMEOUT=100 must exceed.*WORKER_POOL=prefork"
    ):
        Settings.from_env({**limits, "WORKER_POOL": "prefork"})
    assert Settings.from_env(
        {**limits, "BROKER_VISIBILITY_TIMEOUT": "101", "WORKER_POOL": "prefork"}
    )


@pytest.mark.parametrize("value", ["0", "0.0", "-5"])
def test_a_stalled_job_timeout_of_zero_is_refused_it_would_leave_jobs_processing_for_ever(value):
    with pytest.raises(ConfigError, match="STALLED_JOB_TIMEOUT"):
        Settings.from_env({"STALLED_JOB_TIMEOUT": value})
    with pytest.raises(ConfigError, match="STALLED_JOB_TIMEOUT"):
        Settings.from_env({}, stalled_job_timeout=0)


def test_on_prefork_a_stalled_job_timeout_must_outlast_the_visibility_timeout_and_the_hard_limit():
    # 300 s visibility timeout + 70 s hard time limit = 370 s; the threads pool's bound is 330 s
    assert Settings.from_env({"STALLED_JOB_TIMEOUT": "360"}).stalled_job_timeout == 360
    with pytest.raises(ConfigError, match=r"STALLED_JOB_TIMEOUT=360\.0 must exceed"):
        Settings.from_env({"STALLED_JOB_TIMEOUT": "360", "WORKER_POOL": "prefork"})
    assert Settings.from_env({"STALLED_JOB_TIMEOUT": "371", "WORKER_POOL": "prefork"})


def test_a_command_refuses_to_start_with_a_setting_that_breaks_a_guarantee(tmp_path):
    database = tmp_path / "gateway.sqlite3"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "STALLED_JOB_TIMEOUT": "0",
        "DATABASE_URL": f"sqlite:///{database}",
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "gateway"), "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert "STALLED_JOB_TIMEOUT='0' is invalid" in done.stderr
    assert not database.exists()
