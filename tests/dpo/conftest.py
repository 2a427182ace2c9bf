import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .fakeopenai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "dpo"
KEY = "sk-test-kodolly-SECRET-7f3a9c"


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path, monkeypatch):
    """Each DPO test has its own default cache (``$KODOLLY_CACHE_DIR/dpo.sqlite``), never the user's."""
    monkeypatch.setenv("KODOLLY_CACHE_DIR", str(tmp_path / "kodolly-cache"))


@pytest.fixture
def server():
    srv = FakeOpenAI().start()
    yield srv
    srv.stop()


@pytest.fixture
def env_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return KEY


@pytest.fixture
def fast(tmp_path, server, env_key):
    """build_dpo options for the fake server: short timeouts and backoffs, a private cache."""
    return dict(base_url=server.base_url, cache_path=str(tmp_path / "cache.sqlite"), timeout=2.0,
                retry_base_delay=0.01, poll_interval=0.05, progress=False)


def write_rows(path: Path, responses, *, extra=None):
    with open(path, "w", encoding="utf-8") as fh:
        for i, resp in enumerate(responses):
            row = {"instruction": f"질문 {i}", "context": "", "response": resp, "category": "open_qa", "source": "test",
                   "id": f"t{i}", "domain": "", "score": None, "license": "", "meta": "{}"}
            row.update((extra or {}).get(i, {}))
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def korean_texts(n):
    """n distinct Korean answers."""
    words = ["하늘", "바다", "나무", "구름", "바람", "사과", "노래", "마음", "도시", "시간"]
    return [f"{words[i % 10]}은 {words[(i // 10) % 10]}처럼 아름답습니다 {i}번" for i in range(n)]


def cli_env(extra=None):
    env = dict(os.environ)
    env["OPENAI_API_KEY"] = KEY
    env.update(extra or {})
    return env


def run_cli(args, **kw):
    return subprocess.run([sys.executable, "-m", "kodolly", *args], capture_output=True, text=True, env=cli_env(), **kw)
