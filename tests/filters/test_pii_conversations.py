"""--pii mask on conversation rows: the earlier turns are masked like the context, which stays their transcript."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kodolly.cli import cli
from kodolly.turns import transcript


def test_masked_context_and_messages_agree(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps({"id": "p", "conversations": [
        {"from": "human", "value": "제 번호는 010-1234-5678 입니다. 기억해 주세요."}, {"from": "gpt", "value": "네, 알겠습니다."},
        {"from": "human", "value": "제 번호가 뭐였죠?"}, {"from": "gpt", "value": "말씀하신 번호입니다."},
    ]}, ensure_ascii=False) + "\n", "utf-8")
    for out in (tmp_path / "o.jsonl", tmp_path / "w.jsonl"):
        extra = ["--workers", "2"] if out.name == "w.jsonl" else []
        res = CliRunner().invoke(cli, ["convert", "--from", "sharegpt", str(src), "-o", str(out), "--pii", "mask", *extra])
        assert res.exit_code == 0, res.output
        rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
        later = rows[1]
        assert later["messages"][0] == {"role": "user", "content": "제 번호는 <전화번호> 입니다. 기억해 주세요."}
        assert later["context"] == transcript(later["messages"])
        assert "010-1234-5678" not in out.read_text("utf-8")
