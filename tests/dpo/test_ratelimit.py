"""kodolly.dpo.ratelimit."""

import pytest

from kodolly.dpo.ratelimit import TokenBucket


def test_token_bucket_waits_for_refill():
    now = [0.0]

    def sleep(s):
        now[0] += s

    bucket = TokenBucket(120, clock=lambda: now[0], sleep=sleep)  # 2 a second, holds 2
    assert bucket.take(1) == 0.0 and bucket.take(1) == 0.0
    assert bucket.take(1) == pytest.approx(0.5)
    bucket.adjust(-3)  # the answer used 3 more than estimated: later requests wait for them
    assert bucket.take(1) == pytest.approx(2.0)
    # a request larger than the bucket waits for a full bucket, then the debt is paid back
    assert bucket.take(5) == pytest.approx(1.0)
    assert bucket.take(1) == pytest.approx(2.0)
