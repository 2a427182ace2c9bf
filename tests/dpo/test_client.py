"""kodolly.dpo.client."""

import email.utils
import random
import time

from kodolly.dpo.client import RetryPolicy, base_url_host, parse_retry_after, redact


def test_retry_after_parsing_and_backoff():
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "150", "retry-after": "9"}) == 0.15
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after({"retry-after": date}) <= 31
    assert parse_retry_after({}) is None
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(0)
    assert all(0 <= policy.delay(a, None, rng) <= min(8.0, 2 ** a) for a in range(8))
    assert policy.delay(0, 3.0, rng) >= 3.0  # Retry-After is honoured
    assert policy.delay(0, 10_000, rng) == policy.max_retry_after


def test_redact_and_host():
    assert redact("bad key sk-abc123 here", "sk-abc123") == "bad key *** here"
    assert base_url_host("http://user:pw@localhost:8000/v1?x=1") == "localhost:8000"
    assert base_url_host(None) == "api.openai.com"
