"""The configuration reference documents every setting, with its default."""

import dataclasses
from pathlib import Path

from gateway.config import Settings

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def _configuration_rows() -> dict[str, str]:
    section = REFERENCE.read_text().split("# Configuration", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            names, default = line.split("|")[1:3]
            for name in names.replace("`", "").split(","):
                rows[name.strip()] = default
    return rows


def test_every_setting_has_a_row_in_the_configuration_table():
    rows = _configuration_rows()
    variables = [f.metadata["env"] for f in dataclasses.fields(Settings)]
    assert [v for v in variables if v not in rows] == []


def test_the_documented_numeric_defaults_are_the_real_ones():
    rows = _configuration_rows()
    defaults = Settings.from_env({})
    for f in dataclasses.fields(Settings):
        value = getattr(defaults, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            assert shown in rows[f.metadata["env"]].replace("`", ""), f.metadata["env"]
