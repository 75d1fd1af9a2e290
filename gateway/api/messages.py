"""Validation messages as problem details report them: field -> messages, bounded in size.

A body can carry any number of wrong values, and each of them may be echoed in a message;
the report of them must not grow with the body. At most MAX_MESSAGES messages are kept (in
the order marshmallow reports them), each field name cut to MAX_FIELD_NAME_LENGTH characters
and each message to MAX_MESSAGE_LENGTH; the report counts the messages it left out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import marshmallow as ma

MAX_MESSAGES = 20
MAX_MESSAGE_LENGTH = 200
MAX_FIELD_NAME_LENGTH = 100

# webargs namespaces validation messages by request location; clients see field names only.
_LOCATION_ROOT = {"json": "body", "query": "query", "querystring": "query", "view_args": "path"}


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class FieldErrors:
    """The messages kept, by field, and how many more there were."""

    errors: dict[str, list[str]] = field(default_factory=dict)
    omitted: int = 0


def field_errors(messages: Any) -> FieldErrors:
    """Flatten webargs/marshmallow messages into field -> messages, nested fields dotted.

    `{"json": {"pipeline_config": {"_schema": [m]}}}` becomes `{"pipeline_config": [m]}`;
    errors about the body as a whole (not JSON, not an object) are under `body`.
    """
    root = "body"
    if isinstance(messages, Mapping) and len(messages) == 1:
        (location, inner), *_ = messages.items()
        if location in _LOCATION_ROOT:
            messages, root = inner, _LOCATION_ROOT[location]
    report, kept = FieldErrors(), 0
    for name, message in _flatten(messages, ""):
        if kept == MAX_MESSAGES:
            report.omitted += 1
            continue
        kept += 1
        name = clip(name or root, MAX_FIELD_NAME_LENGTH)
        report.errors.setdefault(name, []).append(clip(message, MAX_MESSAGE_LENGTH))
    return report


def _flatten(messages: Any, prefix: str) -> Iterator[tuple[str, str]]:
    """(dotted field name, message) pairs, depth first, without recursion."""
    stack: list[tuple[Any, str]] = [(messages, prefix)]
    while stack:
        item, name = stack.pop()
        if isinstance(item, Mapping):
            children = [
                (
                    value,
                    name if key == ma.exceptions.SCHEMA else f"{name}.{key}" if name else str(key),
                )
                for key, value in item.items()
            ]
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend((message, name) for message in reversed(item))
        else:
            yield name, str(item)
