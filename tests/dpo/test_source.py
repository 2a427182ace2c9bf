"""kodolly.dpo.source: build-dpo reads its input in bounded batches, so memory does not grow with it."""

import json
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq

from kodolly.dpo import build_dpo
from kodolly.dpo.output import DpoWriter
from kodolly.dpo.source import Inputs
from kodolly.io import batches

from .conftest import korean_texts, write_rows
from .fakeopenai import romanize


def _pairs_file(path, n):
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            row = {"instruction": f"질문 {i} " * 5, "context": "", "response": f"좋은 답 {i} " * 20, "category": "open_qa",
                   "source": "test", "id": f"p{i}", "domain": "", "score": None, "license": "", "meta": "{}",
                   "rejected": f"나쁜 답 {i} " * 20}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def _peak(tmp_path, n):
    src = _pairs_file(tmp_path / f"in{n}.jsonl", n)
    tracemalloc.start()
    try:
        res = build_dpo([src], tmp_path / f"out{n}.parquet", mode="existing", chunk_rows=256)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.tally.written == n
    return peak


def test_memory_peak_does_not_grow_with_the_input(tmp_path):
    _peak(tmp_path, 300)  # warm-up: imports and first-use caches are not the input's memory
    small, large = _peak(tmp_path, 1_500), _peak(tmp_path, 6_000)
    assert large < 1.5 * small, (small, large)
    rows = pq.read_table(tmp_path / "out6000.parquet").to_pylist()
    assert [r["id"] for r in rows] == [f"p{i}" for i in range(6_000)]


def test_inputs_columns_rows_and_count(tmp_path):
    a = write_rows(tmp_path / "a.jsonl", ["하나", "둘", "셋"])
    b = tmp_path / "b.parquet"
    pq.write_table(pa.Table.from_pylist([{"response": "넷", "split": "test"}]), b)
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    inputs = Inputs([a, b, empty], chunk_rows=2)
    assert inputs.columns()[-1] == "split" and inputs.columns()[:3] == ["instruction", "context", "response"]
    got = [(r["response"], loc.file, loc.index) for r, loc in inputs.rows()]
    assert got == [("하나", str(a), 0), ("둘", str(a), 1), ("셋", str(a), 2), ("넷", str(b), 0)]
    assert inputs.count() is None  # a JSONL input has no row count in metadata
    assert Inputs([b]).count() == 1


def test_translation_reads_and_writes_in_step(tmp_path, server, fast, monkeypatch):
    """The reader is consumed a batch at a time, interleaved with the writes: at no write have more rows
    been read than the window of rows waiting for their answer plus one input batch."""
    n, window, chunk = 1_500, 32, 50
    texts = korean_texts(n)
    src = write_rows(tmp_path / "in.jsonl", texts)
    read = {"rows": 0, "batches": 0}
    real_iter = batches.iter_batches

    def counting(path, batch_rows, **kw):
        if batch_rows != chunk:  # Inputs.columns() peeking at the first row
            yield from real_iter(path, batch_rows, **kw)
            return
        for table in real_iter(path, batch_rows, **kw):
            read["rows"] += table.num_rows
            read["batches"] += 1
            yield table

    ahead = []
    real_write = DpoWriter.write

    def write(self, rows):
        real_write(self, rows)
        ahead.append(read["rows"] - self.rows)

    monkeypatch.setattr(batches, "iter_batches", counting)
    monkeypatch.setattr(DpoWriter, "write", write)
    res = build_dpo([src], tmp_path / "out.parquet", window=window, chunk_rows=chunk, **fast)
    assert res.tally.written == n and read["batches"] == n // chunk
    assert len(ahead) >= 2 and ahead[0] < n  # the first pairs were written long before the input was read
    assert max(ahead) <= window + chunk + 1, ahead
    out = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["rejected"] for r in out] == [romanize(t) for t in texts]


def test_jsonl_column_null_in_the_first_batch_and_text_later(tmp_path):
    src = tmp_path / "in.jsonl"
    with open(src, "w", encoding="utf-8") as fh:
        for i in range(7):
            fh.write(json.dumps({"instruction": "질문", "response": f"좋은 답 {i}", "source": "s", "id": f"x{i}",
                                 "rejected": None if i < 4 else f"나쁜 답 {i}", "meta": {"k": i}}, ensure_ascii=False) + "\n")
    res = build_dpo([src], tmp_path / "out.jsonl", mode="existing", chunk_rows=3)
    assert res.tally.by_reason == {"dpo_no_rejected": 4} and res.tally.written == 3
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(r["id"], r["rejected"], r["meta"]) for r in out] == [(f"x{i}", f"나쁜 답 {i}", json.dumps({"k": i}).replace(" ", "")) for i in (4, 5, 6)]
