"""docs/configuration.md's tables and .env.example are generated from Settings, and current."""

from __future__ import annotations

import re

from gateway import config_docs
from gateway.config import Settings
from gateway.config_docs import BEGIN, END, ENV_EXAMPLE, REFERENCE


def test_the_configuration_reference_is_current():
    current = REFERENCE.read_text()
    assert config_docs.reference(current) == current, "stale: run `make docs`"


def test_env_example_is_current():
    assert ENV_EXAMPLE.read_text() == config_docs.env_example(), "stale: run `make docs`"


def test_the_defaults_env_example_shows_are_the_settings_defaults():
    # Uncommented, every documented default parses back to the default itself.
    shown = dict(re.findall(r"^# ([A-Z][A-Z0-9_]+)=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE))
    environ = {name: value for name, value in shown.items() if "<project>" not in value}
    assert len(environ) > 40
    assert Settings.from_env(environ) == Settings.from_env({})


def test_regenerating_the_reference_keeps_the_prose_around_the_tables():
    page = f"# Configuration\n\nintro\n\n{BEGIN}\n\nold table\n\n{END}\n\nafter\n"
    regenerated = config_docs.reference(page)
    assert regenerated.startswith(f"# Configuration\n\nintro\n\n{BEGIN}\n\n### ")
    assert regenerated.endswith(f"\n\n{END}\n\nafter\n")
    assert "old table" not in regenerated
    assert "| `STAGE_MAX_RETRIES` | `3` |" in regenerated
