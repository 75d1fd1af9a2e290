"""The retry countdown: exponential with full jitter, capped, whatever the retry number."""

from __future__ import annotations

import pytest

from tasks.stages import backoff


@pytest.mark.parametrize("retries", [0, 1, 5, 63, 64, 1023, 1024, 1100, 10_000, 10**9])
def test_the_countdown_stays_within_its_cap_however_many_retries_came_before(retries):
    # A database outage is waited out with no bound on the retries, so the count grows for ever
    countdowns = [backoff(retries, 1.0, 30.0) for _ in range(200)]
    assert all(0.0 <= c <= min(30.0, 2.0 ** min(retries, 64)) for c in countdowns)


def test_the_countdown_doubles_with_each_retry_until_the_cap():
    bounds = [max(backoff(n, 0.5, 30.0) for _ in range(400)) for n in range(8)]
    assert [b <= 0.5 * 2**n for n, b in enumerate(bounds)] == [True] * 8
    assert bounds[3] > 2.0  # it does reach past the previous retry's bound (4 s here)
    assert 20.0 < bounds[7] <= 30.0  # 64 s, capped


def test_a_zero_base_never_waits_and_a_huge_one_waits_the_cap():
    assert {backoff(n, 0.0, 30.0) for n in (0, 10, 5000)} == {0.0}
    assert all(0.0 <= backoff(5000, 1e300, 30.0) <= 30.0 for _ in range(50))
