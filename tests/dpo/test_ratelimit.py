"""kodolly.dpo.ratelimit."""

import pytest

from kodolly.dpo.ratelimit import TokenBucket


def test_token_bucket_waits_for_refill():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    bucket = TokenBucket(60, clock=lambda: now[0], sleep=sleep)  # 1 a second
    for _ in range(60):
        assert bucket.take(1) == 0.0
    waited = bucket.take(2)
    assert waited == pytest.approx(2.0)
    bucket.adjust(-3)  # the answer used 3 more tokens than estimated: later requests wait for them
    assert bucket.take(1) == pytest.approx(4.0)
