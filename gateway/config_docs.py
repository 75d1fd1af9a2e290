"""The configuration reference and .env.example, written from `Settings` and its field docs.

`python -m gateway.config_docs` (`make docs`) rewrites both files; `--check` only reports
whether they are current, as the suite does.
"""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

from gateway.config import INSTANCE_DIR, Settings

PROJECT_DIR = INSTANCE_DIR.parent
REFERENCE = PROJECT_DIR / "docs" / "configuration.md"
ENV_EXAMPLE = PROJECT_DIR / ".env.example"
BEGIN = "<!-- Generated from gateway/config.py by `make docs`: edit the field docs there. -->"
END = "<!-- End of the generated tables. -->"
# Compose refuses to start without these: .env.example sets them, uncommented.
COMPOSE_REQUIRED = ("FLOWER_BASIC_AUTH", "API_KEY_SECRET")

ENV_HEADER = """\
# Every setting of the gateway, with its default. Generated from gateway/config.py by
# `make docs`: change a setting's doc there, not here.
#
# docker compose: `cp .env.example .env`, set FLOWER_BASIC_AUTH and API_KEY_SECRET, change
#   what you need.
#   Compose passes .env to every gateway service; a commented-out or empty value means the
#   default. It sets DATABASE_URL and REDIS_URL itself, to its own services.
# make run: does not read this file. Export what you change in your shell, e.g.
#   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/gateway make run

# --- Compose only ---------------------------------------------------------------------------
# The PostgreSQL service: its user, password and database (compose builds DATABASE_URL from them).
POSTGRES_USER=gateway
POSTGRES_PASSWORD=gateway
POSTGRES_DB=gateway
# Processes of the extraction worker's prefork pool (one per core).
# EXTRACTION_PROCESSES=2
"""


def shown_default(value: Any) -> str:
    """A default as an operator would write it: `false`, `0.5`, paths from the project."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace(str(PROJECT_DIR), "<project>")


def sections() -> Iterator[tuple[str, list[dataclasses.Field[Any]]]]:
    """The settings in field order, grouped where a field opens a `section`."""
    title = ""
    group: list[dataclasses.Field[Any]] = []
    for f in dataclasses.fields(Settings):
        if f.metadata["section"] and group:
            yield title, group
            group = []
        title = f.metadata["section"] or title
        group.append(f)
    yield title, group


def reference_tables() -> str:
    """One markdown table per section: variable, default, meaning."""
    parts = []
    for title, fields in sections():
        rows = [f"### {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        for f in fields:
            default = shown_default(f.default)
            shown = f"`{default}`" if default else "empty"
            rows.append(f"| `{f.metadata['env']}` | {shown} | {f.metadata['doc']} |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


def reference(current: str) -> str:
    """`current` (docs/configuration.md) with the text between the markers regenerated."""
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    if not rest or not tail:
        raise SystemExit(f"{REFERENCE} lacks the markers {BEGIN!r} and {END!r}")
    return f"{head}{BEGIN}\n\n{reference_tables()}\n\n{END}{tail}"


def env_example() -> str:
    """.env.example: the compose-only variables, then every setting, commented out at its default."""
    blocks = [ENV_HEADER]
    for title, fields in sections():
        lines = [f"# --- {title} ".ljust(94, "-")]
        for f in fields:
            doc = f.metadata["doc"].replace("`", "")
            lines += textwrap.wrap(doc, 92, initial_indent="# ", subsequent_indent="# ")
            name = f.metadata["env"]
            if name in COMPOSE_REQUIRED:
                lines.append(f"{name}=")
            else:
                lines.append(f"# {name}={shown_default(f.default)}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    """Write both files; with `--check`, list the stale ones and exit 1 instead."""
    check = "--check" in (sys.argv[1:] if argv is None else argv)
    wanted = {
        REFERENCE: reference(REFERENCE.read_text()),
        ENV_EXAMPLE: env_example(),
    }
    stale = [path for path, text in wanted.items() if path.read_text() != text]
    for path in stale:
        if check:
            print(f"{path.relative_to(PROJECT_DIR)} is stale: run `make docs`", file=sys.stderr)
        else:
            path.write_text(wanted[path])
            print(f"wrote {path.relative_to(PROJECT_DIR)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
