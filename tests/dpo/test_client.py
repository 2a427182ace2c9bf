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


def test_token_parameter_per_model():
    from kodolly.dpo.client import Translator, is_reasoning_model, token_param_name

    for name in ("o1", "o1-preview", "o3-mini", "o4-mini-2025-04-16", "gpt-5", "gpt-5-nano", "openai/o3"):
        assert is_reasoning_model(name) and token_param_name(name) == "max_completion_tokens", name
    for name in ("gpt-4o-mini", "gpt-4.1", "Qwen/Qwen2.5-7B-Instruct", "qwen2.5:7b", "llama3-o1", "gpt-50"):
        assert not is_reasoning_model(name) and token_param_name(name) == "max_tokens", name
    assert token_param_name("o3", "max_tokens") == "max_tokens"
    assert token_param_name("gpt-4o", "max_completion_tokens") == "max_completion_tokens"

    body = Translator(None, model="gpt-4o-mini", max_tokens=100).request_body("가")
    assert body["max_tokens"] == 100 and body["temperature"] == 0.0 and "max_completion_tokens" not in body
    body = Translator(None, model="o3-mini", max_tokens=100).request_body("가")
    assert body["max_completion_tokens"] == 100 and "max_tokens" not in body and "temperature" not in body
    forced = Translator(None, model="gpt-4o", max_tokens=100, token_param="max_completion_tokens")
    assert forced.request_body("가")["max_completion_tokens"] == 100 and "max_tokens" not in forced.request_body("가")
    # the cache signature of max_tokens models is what it always was (existing caches stay valid)
    assert Translator(None, model="gpt-4o-mini", max_tokens=100).params() == {"temperature": 0.0, "max_tokens": 100}
