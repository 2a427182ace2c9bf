"""Shared test setup: environment pinned for quiet, offline, single-threaded runs; the fixtures folder;
small in-test converters that read the AI Hub ``data_info`` and user-CSV shapes for the filter tests.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `datasets.load_dataset` (round-trip tests) caches under HF_DATASETS_CACHE, read when `datasets` is first
# imported: point it away from ~/.cache/huggingface before any test imports it
_TEST_CACHE = tempfile.mkdtemp(prefix="kodolly-tests-")
atexit.register(shutil.rmtree, _TEST_CACHE, ignore_errors=True)
os.environ["HF_DATASETS_CACHE"] = os.path.join(_TEST_CACHE, "hf-datasets")

from kodolly.converters import Converter, Reject, text_field  # noqa: E402
from kodolly.registry import register  # noqa: E402
from kodolly.rows import make_row  # noqa: E402
from support import FIXTURES  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _kodolly_cache_dir(tmp_path_factory):
    """No test writes into the user's home: kodolly's caches (the DPO translation cache, the unpacked
    tiktoken files) go to a session temporary folder — also for the CLI subprocesses, which inherit it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KODOLLY_CACHE_DIR", str(tmp_path_factory.mktemp("kodolly-cache")))
        yield


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def _aihub_sft(record: Any, loc, ctx):
    answer = record.get("answer") or {}
    contents = answer.get("contents") if isinstance(answer, dict) else None
    if not isinstance(contents, str):
        yield Reject("missing_field:answer.contents")
        return
    question = text_field(record, "question")
    if isinstance(question, Reject):
        yield question
        return
    yield make_row(
        instruction=question, response=contents, source=ctx.source, id=str(record["data_id"]),
        domain=(record.get("data_category") or {}).get("middle", ""), license=ctx.license,
    )


def _user_csv(record: dict[str, Any], loc, ctx):
    raw_score = (record.get("score") or "").strip()
    yield make_row(
        instruction=record["question"], response=record["answer"], source=ctx.source, id=ctx.derived_id(loc),
        domain=record.get("category") or "", score=float(raw_score) if raw_score else None,
    )


def _scored(record: dict[str, Any], loc, ctx):
    answer = text_field(record, "a")
    if isinstance(answer, Reject):
        yield answer
        return
    yield make_row(
        instruction=record["q"], response=answer, context=record.get("ctx", ""), source=ctx.source, id=record["id"],
        category=record.get("category", "open_qa"), domain=record.get("domain", ""), score=record.get("score"),
    )


AIHUB_LIKE = Converter("test_aihub_sft", "AI Hub 71748 SFT shape (test stand-in)", _aihub_sft,
                       license="AI Hub terms", record_paths=("data_info.item",))
USER_CSV = Converter("test_user_csv", "user CSV question,answer,category,score (test stand-in)", _user_csv)
SCORED = Converter("test_scored", "JSONL {id, q, a, ctx, category, domain, score} (test stand-in)", _scored)


@pytest.fixture
def test_converters() -> dict[str, Converter]:
    for conv in (AIHUB_LIKE, USER_CSV, SCORED):
        register(conv)
    return {"aihub": AIHUB_LIKE, "csv": USER_CSV, "scored": SCORED}
