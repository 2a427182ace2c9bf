"""The engines: the output is byte for byte the same inline and with 1, 2 or 3 worker processes."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import kodolly
from kodolly.corridor import jsonl
from kodolly.cli import cli
from kodolly.errors import ShardError

from kodolly.filters import DedupFilter
from support import write_mixed_jsonl

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the benchmarks package
from benchmarks.generate import alpaca_records  # noqa: E402


@pytest.fixture
def mixed_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.jsonl"
    write_mixed_jsonl(path, 3000)
    return path


class Seen:
    name = "seen"

    def __init__(self) -> None:
        self.ids: list[str] = []

    def settings(self):
        return {}

    def apply(self, rows):
        self.ids.extend(r["id"] for r in rows)
        return [None if len(r["response"]) % 7 else "seen_mod7" for r in rows]


class Step:
    """A stateless test step (runs in the workers): subclasses give ``name`` and ``apply``."""

    stateless = True

    def settings(self):
        return {}


class Boom(Step):
    name = "boom"

    def apply(self, rows):
        raise RuntimeError("boom in a worker")


def _where(workers: int) -> dict:
    """One worker = the inline engine; more = the processes engine."""
    return {"engine": "inline"} if workers == 1 else {"engine": "processes", "workers": workers}


def _run(src: Path, out: Path, workers: int, batch_size: int | None = 500):
    return kodolly.convert([src], "alpaca", out, filters=[DedupFilter()], batch_size=batch_size, **_where(workers))


def test_one_and_two_workers_write_the_same_bytes(mixed_jsonl, tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl, "CHUNK_BYTES", 200_000)  # many chunks, both workers busy
    one = _run(mixed_jsonl, tmp_path / "one.parquet", workers=1)  # the sequential pipeline
    two = _run(mixed_jsonl, tmp_path / "two.parquet", workers=2)
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()
    assert (tmp_path / "one.rejects.jsonl").read_bytes() == (tmp_path / "two.rejects.jsonl").read_bytes()
    assert one.tally.as_dict() == two.tally.as_dict()
    assert one.manifest_data["inputs"] == two.manifest_data["inputs"]  # same bytes read and hashed
    counts = two.tally.as_dict()
    assert counts["balanced"] and counts["read"] == 2999  # 3000 lines, one blank
    reasons = counts["by_reason"]
    assert reasons["bad_json"] == 1 and reasons["bad_encoding"] == 1
    assert reasons["empty_field:instruction"] == 1
    assert reasons["duplicate_of"] > 100  # the generator's exact copies and NFD/whitespace variants
    table = pq.read_table(tmp_path / "two.parquet")
    assert table.num_rows == counts["written"]
    rows = {r["id"]: r for r in table.to_pylist()}
    assert rows["k1"]["instruction"] == "\uac00 \ud55c" and rows["k1"]["response"] == "a\nb"  # NFC, CRLF
    assert rows["mixed.jsonl:29"]["response"] == "42"


def test_small_batches_and_an_odd_worker_count_agree_too(mixed_jsonl, tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl, "CHUNK_BYTES", 150_000)
    _run(mixed_jsonl, tmp_path / "one.parquet", workers=1, batch_size=37)
    _run(mixed_jsonl, tmp_path / "three.parquet", workers=3, batch_size=37)
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "three.parquet").read_bytes()
    assert (tmp_path / "one.rejects.jsonl").read_bytes() == (tmp_path / "three.rejects.jsonl").read_bytes()


def test_several_inputs_and_formats_in_one_run(mixed_jsonl, tmp_path, monkeypatch):
    """JSONL chunks in workers and a JSON array converted in the main process, in input order."""
    monkeypatch.setattr(jsonl, "CHUNK_BYTES", 300_000)
    array = tmp_path / "more.json"
    array.write_bytes(orjson.dumps(list(alpaca_records(300, seed=8))))
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.parquet"
        kodolly.convert([mixed_jsonl, array, mixed_jsonl], "alpaca", out, filters=[DedupFilter()], **_where(workers))
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_plain_filters_run_in_the_main_process(mixed_jsonl, tmp_path, monkeypatch):
    """A filter without the map-side hooks still sees every row, in order, on the driver."""
    monkeypatch.setattr(jsonl, "CHUNK_BYTES", 200_000)
    a, b = Seen(), Seen()

    kodolly.convert([mixed_jsonl], "alpaca", tmp_path / "a.parquet", filters=[a], **_where(1))
    kodolly.convert([mixed_jsonl], "alpaca", tmp_path / "b.parquet", filters=[b], **_where(2))
    assert a.ids == b.ids and len(a.ids) > 2900  # driver-side filters see the same rows in the same order
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert (tmp_path / "a.rejects.jsonl").read_bytes() == (tmp_path / "b.rejects.jsonl").read_bytes()


def test_a_failing_worker_is_reported(tmp_path, monkeypatch):
    src = tmp_path / "x.jsonl"
    write_mixed_jsonl(src, 3000)
    monkeypatch.setattr(jsonl, "CHUNK_BYTES", 200_000)
    with pytest.raises(ShardError, match=r"x\.jsonl: shard \d+ \(bytes \d+\.\.\d+, from line \d+\) failed 2 times: RuntimeError: boom in a worker"):
        kodolly.convert([src], "alpaca", tmp_path / "out.parquet", filters=[Boom()], engine="processes", workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jsonl"]  # nothing finished-looking, no temporaries


def test_cli_convert_takes_workers(mixed_jsonl, tmp_path):
    result = CliRunner().invoke(cli, ["convert", str(mixed_jsonl), "--from", "alpaca", "-o", str(tmp_path / "o.parquet"), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "tally OK" in result.output
    assert "--workers" in CliRunner().invoke(cli, ["convert", "--help"]).output


class Tag(Step):
    """A stateless step after dedup that sets a field (like a split step): verdicts + a changed table."""

    name = "tag"

    def apply(self, rows):
        out = []
        for row in rows:
            if len(row["response"]) < 120:
                out.append("tag_tiny")
            else:
                row["domain"] = "long" if len(row["response"]) > 700 else "short"
                out.append(None)
        return out

    def apply_table(self, table):
        import pyarrow as pa
        import pyarrow.compute as pc

        length = pc.utf8_length(table.column("response"))
        domain = pc.if_else(pc.greater(length, 700), "long", "short")  # rejected rows are reported as given
        verdicts = [None if n >= 120 else "tag_tiny" for n in length.to_pylist()]
        return verdicts, table.set_column(table.schema.get_field_index("domain"), table.schema.field("domain"), domain.cast(pa.string()))


def test_a_table_filter_after_dedup_changes_rows_the_same_way(mixed_jsonl, tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl, "CHUNK_BYTES", 200_000)
    _written = []
    for workers in (1, 2):
        out = tmp_path / f"t{workers}.parquet"

        kodolly.convert([mixed_jsonl], "alpaca", out, filters=[DedupFilter(), Tag()], batch_size=300, **_where(workers))
        _written.append((out.read_bytes(), (tmp_path / f"t{workers}.rejects.jsonl").read_bytes()))
    assert _written[0] == _written[1]
    domains = set(pq.read_table(tmp_path / "t2.parquet").column("domain").to_pylist())
    assert domains == {"long", "short"}


def test_dolly_fast_path_matches_the_record_path(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl, "CHUNK_BYTES", 100_000)
    cats = ["open_qa", " closed_qa ", "", "brainstorming"]
    lines = [
        orjson.dumps({"instruction": r["instruction"], "context": r["input"], "response": r["output"], "category": cats[n % 4]})
        for n, r in enumerate(alpaca_records(1500, seed=3))
    ]
    lines[700] = orjson.dumps({"instruction": "x", "response": "y", "category": "역사"})  # not a task type: that chunk goes record by record
    src = tmp_path / "d.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"d{workers}.parquet"
        result = kodolly.convert(src, "dolly", out, filters=[DedupFilter()], **_where(workers))
        outs.append((out.read_bytes(), (tmp_path / f"d{workers}.rejects.jsonl").read_bytes(), result.tally.as_dict()))
    assert outs[0] == outs[1]
    assert outs[1][2]["by_reason"]["bad_value:category"] == 1
    assert set(pq.read_table(tmp_path / "d2.parquet").column("category").to_pylist()) == {"open_qa", "closed_qa", "brainstorming"}


def test_gzipped_and_zipped_jsonl_chunks_are_sent_to_the_workers(mixed_jsonl, tmp_path, monkeypatch):
    import gzip
    import zipfile

    monkeypatch.setattr(jsonl, "CHUNK_BYTES", 250_000)
    gz = tmp_path / "mixed.jsonl.gz"
    gz.write_bytes(gzip.compress(mixed_jsonl.read_bytes()))
    zp = tmp_path / "mixed.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.write(mixed_jsonl, "inner/mixed.jsonl")
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"g{workers}.parquet"
        result = kodolly.convert([gz, zp], "alpaca", out, filters=[DedupFilter()], **_where(workers))
        outs.append((out.read_bytes(), (tmp_path / f"g{workers}.rejects.jsonl").read_bytes(), result.manifest_data["inputs"]))
    assert outs[0] == outs[1]
