"""Token counts for dry runs, budget reservations and the TPM limiter — without ever touching the network.

``tiktoken`` needs its encoding files (``o200k_base.tiktoken``, ...). Out of the box it downloads them
on first use, which hangs or fails on an offline machine. kodolly looks, in this order:

1. tiktoken's own cache (``TIKTOKEN_CACHE_DIR``, ``DATA_GYM_CACHE_DIR`` or ``<tmp>/data-gym-cache``):
   if the file is there, ``tiktoken.get_encoding`` loads it without a download;
2. the encoding files shipped inside the ``bpe-openai`` package (part of ``kodolly[dpo]``): they are
   unpacked once into ``~/.cache/kodolly/tiktoken`` (or ``$KODOLLY_CACHE_DIR/tiktoken``) and loaded by
   tiktoken from there (tiktoken checks their sha256 against the official hash);
3. otherwise a documented character estimate (:func:`char_estimate`): one token per Hangul syllable,
   one per 4 other characters, which over-counts o200k's Korean slightly (safe for a budget).

The method used is reported in :attr:`TokenCounter.method` ("tiktoken" or "chars").
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

# Overhead tokens of one chat request (role markers, priming of the reply), as in OpenAI's cookbook.
MESSAGE_OVERHEAD = 4
REPLY_OVERHEAD = 3

_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}
_ENV_LOCK = threading.Lock()


def char_estimate(text: str) -> int:
    """Tokens of ``text`` without a tokenizer: Hangul syllables count 1, other characters 1/4."""
    hangul = sum(1 for ch in text if "\uac00" <= ch <= "\ud7a3")
    return hangul + (len(text) - hangul + 3) // 4


def encoding_name(model: str) -> str:
    """The tiktoken encoding of ``model``; unknown models (local servers) are counted with o200k_base."""
    try:
        import tiktoken

        return tiktoken.encoding_name_for_model(model)
    except Exception:
        return "o200k_base"


def _tiktoken_cache_dir() -> Path:
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return Path(os.environ["TIKTOKEN_CACHE_DIR"])
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return Path(os.environ["DATA_GYM_CACHE_DIR"])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _cache_name(name: str) -> str:
    return hashlib.sha1(_URLS[name].encode()).hexdigest()


def _kodolly_tiktoken_dir() -> Path:
    base = os.environ.get("KODOLLY_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "kodolly")
    return Path(base) / "tiktoken"


def _shipped_file(name: str) -> Path | None:
    """Unpack ``bpe_openai``'s copy of the encoding file into kodolly's cache; None if not available."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("bpe_openai")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    gz = Path(list(spec.submodule_search_locations)[0]) / "data" / f"{name}.tiktoken.gz"
    if not gz.is_file():
        return None
    target_dir = _kodolly_tiktoken_dir()
    target = target_dir / _cache_name(name)
    if not target.is_file():
        target_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(gzip.decompress(gz.read_bytes()))
        os.replace(tmp, target)
    return target


@lru_cache(maxsize=8)
def _load_encoding(name: str):
    """A tiktoken Encoding loaded from local files only, or None."""
    if name not in _URLS:
        return None
    try:
        import tiktoken
    except ImportError:
        return None
    if (_tiktoken_cache_dir() / _cache_name(name)).is_file():
        try:
            return tiktoken.get_encoding(name)
        except Exception:
            pass
    shipped = _shipped_file(name)
    if shipped is None:
        return None
    with _ENV_LOCK:
        old = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(shipped.parent)
        try:
            # Build a fresh Encoding from the constructor (get_encoding would cache a failed attempt).
            from tiktoken_ext.openai_public import ENCODING_CONSTRUCTORS

            return tiktoken.Encoding(**ENCODING_CONSTRUCTORS[name]())
        except Exception:
            return None
        finally:
            if old is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR", None)
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = old


class TokenCounter:
    """Counts tokens of texts and chat requests for one model."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.encoding = _load_encoding(encoding_name(model))
        self.method = "tiktoken" if self.encoding is not None else "chars"

    def count(self, text: str) -> int:
        if self.encoding is not None:
            return len(self.encoding.encode(text, disallowed_special=()))
        return char_estimate(text)

    def chat_prompt(self, system_prompt: str, text: str) -> int:
        """Prompt tokens of a request with a system message and one user message."""
        n = REPLY_OVERHEAD + self.count(text) + MESSAGE_OVERHEAD
        if system_prompt:
            n += self.count(system_prompt) + MESSAGE_OVERHEAD
        return n

    def completion_estimate(self, text: str, max_tokens: int | None) -> int:
        """Expected tokens of the English translation of ``text``: 1.5x its own tokens plus 16 (capped
        at ``max_tokens``). English usually needs fewer tokens than the Korean it translates, so this
        errs on the expensive side, which is what a budget wants."""
        n = (self.count(text) * 3 + 1) // 2 + 16
        return min(n, max_tokens) if max_tokens else n
