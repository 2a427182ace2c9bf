"""kodolly.dpo.tokens."""

import os
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


def test_without_encoding_files_falls_back_to_chars_without_network(tmp_path, monkeypatch):
    from kodolly.dpo import tokens

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(tokens, "_shipped_file", lambda name: None)
    tokens._load_encoding.cache_clear()
    try:
        start = time.monotonic()
        c = TokenCounter("gpt-4o-mini")
        assert c.method == "chars" and time.monotonic() - start < 1
        assert c.count("안녕하세요 abcd") == 7
    finally:
        tokens._load_encoding.cache_clear()


def test_shipped_encoding_is_unpacked_into_kodolly_cache(tmp_path, monkeypatch):
    from kodolly.dpo import tokens

    monkeypatch.setenv("KODOLLY_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty"))
    tokens._load_encoding.cache_clear()
    try:
        c = TokenCounter("gpt-4o-mini")
        assert c.method == "tiktoken"
        assert [p.parent.name for p in tmp_path.rglob("*") if p.is_file()] == ["tiktoken"]
        assert "TIKTOKEN_CACHE_DIR" in os.environ  # restored, not left pointing at kodolly's dir
        assert os.environ["TIKTOKEN_CACHE_DIR"] == str(tmp_path / "empty")
    finally:
        tokens._load_encoding.cache_clear()
