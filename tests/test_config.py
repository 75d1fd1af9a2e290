"""Settings: defaults, coercion, and start-up refusal that names the bad variable."""

import pytest

from gateway.config import ConfigError, Settings


def test_defaults_match_the_documented_contract():
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith(
        "instance/gateway.sqlite3"
    )
    assert (settings.port, settings.flower_port) == (8000, 5555)
    assert settings.events_stream == "job_events"
    assert settings.providers == {
        "extraction": "fast",
        "analysis": "default",
        "enrichment": "default",
    }
    assert settings.provider_latency_scale == 1.0
    assert settings.failure_rates == {"extraction": 0.0, "analysis": 0.0, "enrichment": 0.0}
    assert settings.stage_max_retries == 3
    assert (settings.retry_backoff_base, settings.retry_backoff_max) == (1.0, 30.0)
    assert settings.stage_time_limit == 30.0
    assert settings.max_content_length == 10 * 1024 * 1024
    assert settings.broker_visibility_timeout == 300


def test_values_are_read_from_the_environment_and_coerced():
    settings = Settings.from_env(
        {
            "PORT": "9001",
            "ANALYSIS_FAILURE_RATE": "0.25",
            "PROVIDER_LATENCY_SCALE": "0",
            "EVENTS_STREAM": "s",
        }
    )
    assert settings.port == 9001
    assert settings.analysis_failure_rate == 0.25
    assert settings.provider_latency_scale == 0.0
    assert settings.events_stream == "s"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "0"),
        ("EXTRACTION_FAILURE_RATE", "1.5"),
        ("STAGE_MAX_RETRIES", "-1"),
        ("PROVIDER_LATENCY_SCALE", "fast"),
        ("WORKER_POOL", "eventlet"),
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
