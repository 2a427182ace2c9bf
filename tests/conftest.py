"""Shared test setup: environment pinned for quiet, offline, single-threaded runs; the fixtures folder;
one small in-test converter for the filter tests (a JSONL shape that carries every field a filter reads).

The reference workflow (AI Hub labels + the user's scored CSV) runs on the real ``aihub`` converter
and the shipped ``qa`` layout; nothing here stands in for them.
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
# Ray (tests/corridor/engines): nodes and the driver use 127.0.0.1, not the host's public interface (Ray's
# switch for one-machine use; read when ray is first imported, so set before any test module imports it),
# and no usage report leaves the machine
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
# `datasets.load_dataset` (round-trip tests) caches under HF_DATASETS_CACHE, read when `datasets` is first
# imported: point it away from ~/.cache/huggingface before any test imports it
_TEST_CACHE = tempfile.mkdtemp(prefix="kodolly-tests-")
atexit.register(shutil.rmtree, _TEST_CACHE, ignore_errors=True)
os.environ["HF_DATASETS_CACHE"] = os.path.join(_TEST_CACHE, "hf-datasets")

from kodolly.converters import Converter, Reject, text_field  # noqa: E402
from kodolly.registry import register  # noqa: E402
from kodolly.rows import make_row  # noqa: E402
from support import ENGINE_NAMES, FIXTURES  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _kodolly_cache_dir(tmp_path_factory):
    """No test writes into the user's home: kodolly's caches (the DPO translation cache, the unpacked
    tiktoken files) go to a session temporary folder — also for the CLI subprocesses, which inherit it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KODOLLY_CACHE_DIR", str(tmp_path_factory.mktemp("kodolly-cache")))
        yield


@pytest.fixture(scope="session")
def ray_cluster():
    """A real two-node Ray cluster (one CPU each, 127.0.0.1 only), started once for the session (~5-10 s)
    and shut down at its end; skipped only when ray is not installed (``pip install -e '.[ray]'``)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:  # not imported here: the cluster sets Ray's environment first
        pytest.skip("ray is not installed: pip install -e '.[ray]' to run the Ray engine tests")
    from support import LocalRayCluster

    cluster = LocalRayCluster(nodes=2, cpus=1, paths=(Path(__file__).resolve().parent / "corridor" / "engines",))
    try:
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture(params=ENGINE_NAMES)
def engine(request, monkeypatch) -> str:
    """The engine a conversion test runs under: every run in the test that names no engine uses it
    (the machine default is replaced for the test), and the test gets its name."""
    from kodolly.corridor import engines

    monkeypatch.setattr(engines, "default_engine", lambda: request.param)
    return request.param


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def _scored(record: dict[str, Any], loc, ctx):
    answer = text_field(record, "a")
    if isinstance(answer, Reject):
        yield answer
        return
    yield make_row(
        instruction=record["q"], response=answer, context=record.get("ctx", ""), source=ctx.source, id=record["id"],
        category=record.get("category", "open_qa"), domain=record.get("domain", ""), score=record.get("score"),
    )


SCORED = Converter("test_scored", "JSONL {id, q, a, ctx, category, domain, score} (filter-test shape)", _scored)


@pytest.fixture
def scored_converter() -> Converter:
    """``test_scored``: fixtures/filters/all_reasons.jsonl's shape, with a Dolly category and a domain per row."""
    return register(SCORED)
