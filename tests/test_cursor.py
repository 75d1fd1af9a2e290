"""The list cursor codec, property-based: what it issues comes back, anything else is refused."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.cursor import MAX_CURSOR_LENGTH, decode_cursor, encode_cursor
from gateway.errors import InvalidCursorError

# Aware datetimes whose offset keeps them inside the representable range in UTC.
moments = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
) | st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    st.integers(min_value=-23 * 60, max_value=23 * 60),
)


def token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=8,
)
# Strings of every kind: any text, tokens of any bytes, of arrays nested to any depth, of
# any JSON value (pairs included), and of pairs that look almost right.
candidates = st.one_of(
    st.text(),
    st.integers(min_value=1, max_value=5000).map(lambda n: token(b"[" * n + b"]" * n)),
    st.binary().map(token),
    json_values.map(lambda value: token(json.dumps(value).encode())),
    st.tuples(st.text(), st.text()).map(lambda pair: token(json.dumps(list(pair)).encode())),
    st.tuples(moments.map(datetime.isoformat), st.uuids().map(str), st.text(max_size=3)).map(
        lambda t: token(json.dumps([t[0], t[1] + t[2]]).encode())
    ),
)


@given(moments, st.uuids())
def test_a_cursor_decodes_to_the_position_it_was_made_from(moment, job_id):
    cursor = encode_cursor(moment, str(job_id))

    assert len(cursor) <= MAX_CURSOR_LENGTH
    assert decode_cursor(cursor) == (moment.astimezone(UTC), str(job_id))


@settings(max_examples=500)
@given(candidates)
def test_any_string_decodes_or_raises_the_codecs_own_error(text):
    try:
        moment, job_id = decode_cursor(text)
    except InvalidCursorError as exc:
        assert exc.status == 400 and exc.detail == "Invalid cursor."
    else:
        # What decodes is a position the database can compare: an aware moment, a UUID
        assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
        assert str(uuid.UUID(job_id)) == job_id


MOMENT, JOB = "2026-01-01T00:00:00+00:00", "3f1e1a4e-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    "value",
    [
        {MOMENT: 1, JOB: 2},  # an object whose two keys would make a position
        [MOMENT, 5],  # an id that is not a string
        [5, JOB],  # a moment that is not a string
    ],
    ids=["object", "numeric-id", "numeric-moment"],
)
def test_a_token_that_is_not_a_pair_of_strings_is_refused(value):
    with pytest.raises(InvalidCursorError):
        decode_cursor(token(json.dumps(value).encode()))


def test_any_cursor_in_a_list_request_is_a_200_or_a_400(client):
    @settings(max_examples=150)
    @given(candidates)
    def answers(text: str) -> None:
        response = client.get(f"/api/jobs/?cursor={quote(text, safe='')}")
        assert response.status_code in (200, 400), response.get_data(as_text=True)

    answers()
