"""Fixtures for publishing tests: kodolly outputs built from hand-made fixtures, offline
``datasets``, and a real Hub server on 127.0.0.1 (tests/hub/hub_server.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hubtools import FIXTURES, TOKEN


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network for ``datasets`` / huggingface_hub (a request would raise); caches in tmp_path."""
    import datasets
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    datasets.disable_progress_bars()
    return tmp_path / "hf-cache"


@pytest.fixture
def alpaca_output(tmp_path):
    """A real kodolly parquet output (+ manifest, rejects) from fixtures/hub/ko_alpaca.json."""
    import kodolly

    out = tmp_path / "run" / "ko.parquet"
    result = kodolly.convert(FIXTURES / "ko_alpaca.json", "alpaca", out, options={"license": "CC BY-NC 4.0"})
    assert result.tally.written == 6 and result.tally.rejected == 1
    return out


def _fixture_output(folder: Path, stem: str) -> Path:
    """fixtures/hub/STEM.jsonl and its manifest copied into ``folder``: a kodolly output to publish."""
    folder.mkdir()
    for name in (f"{stem}.jsonl", f"{stem}.manifest.json"):
        shutil.copy(FIXTURES / name, folder / name)
    return folder / f"{stem}.jsonl"


@pytest.fixture
def mixed_output(tmp_path):
    """Hand-made rows from four sources and three splits (fixtures/hub/mixed_rows.jsonl) + manifest."""
    return _fixture_output(tmp_path / "mixed", "mixed_rows")


@pytest.fixture
def dpo_output(tmp_path):
    return _fixture_output(tmp_path / "dpo", "dpo_pairs")


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A running local Hub; huggingface_hub pointed at it with HF_TOKEN set (Xet off: see README)."""
    import huggingface_hub.constants as hf_constants
    from hub_server import HubServer

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with HubServer(TOKEN) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.base_url)
        yield server
