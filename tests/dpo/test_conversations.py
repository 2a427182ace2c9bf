"""build-dpo on conversation rows: only the final answer is translated; the history stays in the prompt."""

from pathlib import Path

import orjson
import pyarrow.parquet as pq

from kodolly import api
from kodolly.dpo import build_dpo

from .fakeopenai import romanize

CONV = Path(__file__).resolve().parents[2] / "fixtures" / "sharegpt" / "kovicuna_system.json"
SYSTEM = "당신은 친절한 한국어 비서입니다."
ANSWERS = ["약 940만 명입니다.", "약 330만 명입니다.", "직선 거리로 약 325km입니다.", "KTX로 약 2시간 30분 걸립니다."]


def test_only_the_final_answer_is_translated_and_the_prompt_keeps_the_turns(tmp_path, server, fast):
    rows = tmp_path / "rows.parquet"
    api.convert([CONV], "kovicuna", rows)
    build_dpo([rows], tmp_path / "conv.jsonl", layout="trl-conversational", **fast)
    build_dpo([rows], tmp_path / "dolly.parquet", layout="dolly", **fast)
    # one request per final answer, none for the earlier turns or the system prompt
    assert sorted(server.chat_counts) == sorted(ANSWERS)
    assert all(n == 1 for n in server.chat_counts.values())  # the second run came from the cache
    pairs = [orjson.loads(line) for line in (tmp_path / "conv.jsonl").read_bytes().splitlines()]
    assert [p["id"] for p in pairs] == [f"kovicuna-sys-1:{k}" for k in range(4)]
    last = pairs[3]
    assert last["prompt"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "서울의 인구는?"}, {"role": "assistant", "content": ANSWERS[0]},
        {"role": "user", "content": "부산은?"}, {"role": "assistant", "content": ANSWERS[1]},
        {"role": "user", "content": "두 도시 사이의 거리는 얼마나 돼?"}, {"role": "assistant", "content": ANSWERS[2]},
        {"role": "user", "content": "KTX로는 얼마나 걸려?"},
    ]
    assert last["chosen"] == [{"role": "assistant", "content": ANSWERS[3]}]
    assert last["rejected"] == [{"role": "assistant", "content": romanize(ANSWERS[3])}]
    assert pairs[0]["prompt"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "서울의 인구는?"}]
    dolly = pq.read_table(tmp_path / "dolly.parquet").to_pylist()
    assert dolly[3]["messages"] == last["prompt"][:-1]
    assert dolly[3]["rejected"] == romanize(ANSWERS[3])
