"""kodolly.dpo.tokens."""

import time

from kodolly.dpo.tokens import TokenCounter, char_estimate


def test_token_counter_offline():
    start = time.monotonic()
    c = TokenCounter("gpt-4o-mini")
    assert time.monotonic() - start < 10
    assert c.method == "tiktoken"
    assert c.count("hello world") == 2
    assert c.chat_prompt("", "hello world") == 2 + 4 + 3
    assert char_estimate("안녕하세요 abcd") == 5 + 2
