"""Faults: a shard that fails is retried once; a second failure stops the run with one line naming the
input and the shard, and nothing that looks finished is left behind."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

import kodolly
from kodolly.cli import cli
from kodolly.errors import ShardError

LINES = "".join(f'{{"instruction": "질문 {i}", "output": "답 {i}"}}\n' for i in range(40))


def _dies_at(marker_dir, *, always: bool):
    """A converter whose worker process dies (os._exit) at record 25: once (a marker file remembers it
    across processes), or every time. It only dies in a worker, never in the test process."""
    parent = os.getpid()

    def convert(record, loc, ctx):
        if loc.index == 25 and os.getpid() != parent:
            marker = marker_dir / "died"
            if always or not marker.exists():
                marker.write_text("x")
                os._exit(3)
        yield kodolly.make_row(instruction=record["instruction"], response=record["output"], source=ctx.source, id=ctx.derived_id(loc))

    return kodolly.Converter(name="dies", description="test", convert=convert)


def test_a_worker_that_dies_once_is_replaced_and_its_shard_retried(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(LINES, "utf-8")
    conv = _dies_at(tmp_path, always=False)
    retried = kodolly.convert(src, conv, tmp_path / "p.parquet", engine="processes", workers=2, batch_size=10)
    assert (tmp_path / "died").exists()  # it did die once
    inline = kodolly.convert(src, conv, tmp_path / "i.parquet", engine="inline", batch_size=10)
    assert (tmp_path / "p.parquet").read_bytes() == (tmp_path / "i.parquet").read_bytes()
    assert retried.tally.written == inline.tally.written == 40


def test_a_worker_that_dies_twice_stops_the_run_naming_input_and_shard(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(LINES, "utf-8")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ShardError) as info:
        kodolly.convert(src, _dies_at(tmp_path, always=True), out / "o.parquet", engine="processes", workers=2, batch_size=10)
    message = str(info.value)
    assert "\n" not in message
    lines = LINES.encode().splitlines(True)
    start, end = sum(map(len, lines[:20])), sum(map(len, lines[:30]))  # shard 2 = lines 21..30 (record 25 is in it)
    assert message == f"{src}: shard 2 (bytes {start}..{end}, from line 21) failed 2 times: the worker process died (exit code 3)"
    assert list(out.iterdir()) == []


class Flaky:
    """A stateless filter that raises the first time it sees a given row (in any process)."""

    name = "flaky"
    stateless = True

    def __init__(self, marker):
        self.marker = marker

    def settings(self):
        return {}

    def apply(self, rows):
        if any(r["instruction"] == "질문 33" for r in rows) and not self.marker.exists():
            self.marker.write_text("x")
            raise OSError("disk hiccup")
        return [None] * len(rows)


@pytest.mark.parametrize("engine", ["inline", "processes"])
def test_a_shard_that_raises_once_is_retried(engine, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(LINES, "utf-8")
    result = kodolly.convert(src, "alpaca", tmp_path / "o.parquet", filters=[Flaky(tmp_path / "m")], engine=engine, batch_size=10)
    assert (tmp_path / "m").exists() and result.tally.written == 40


def test_the_cli_prints_one_line_for_a_failed_shard(tmp_path, monkeypatch):
    src = tmp_path / "in.jsonl"
    src.write_text(LINES, "utf-8")
    kodolly.register(_dies_at(tmp_path, always=True))
    result = CliRunner().invoke(cli, ["convert", str(src), "--from", "dies", "-o", str(tmp_path / "o.parquet"), "--engine", "processes"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "in.jsonl: shard 0" in lines[0] and "the worker process died (exit code 3)" in lines[0], result.output


def _corrupt_zip(path, member: str, data: bytes) -> None:
    """A zip whose stored member fails its CRC check when read."""
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(member, data)
    raw = bytearray(path.read_bytes())
    at = raw.index(data[-40:])  # somewhere inside the member's bytes
    raw[at + 5] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("engine", ["inline", "processes"])
def test_a_corrupt_zip_member_read_in_a_shard_is_one_line_naming_it(engine, tmp_path):
    import json as _json

    # bigger than what the planner sniffs (it reads the head only): the bad CRC shows at the end, in the shard
    data = _json.dumps([{"instruction": f"질문 {i}", "output": f"답 {i}"} for i in range(60_000)], ensure_ascii=False).encode()
    zp = tmp_path / "set.zip"
    _corrupt_zip(zp, "inner/a.json", data)
    out = tmp_path / "out"
    out.mkdir()
    # io.sources reports corrupt compressed data as an InputError (a run-level input problem): not retried
    with pytest.raises(kodolly.InputError, match=r"set\.zip!inner/a\.json: corrupt compressed data \(Bad CRC-32"):
        kodolly.convert(zp, "alpaca", out / "o.parquet", engine=engine)
    assert list(out.iterdir()) == []


def test_a_corrupt_jsonl_member_stops_the_plan_with_one_line(tmp_path):
    lines = "".join(f'{{"instruction": "질문 {i}", "output": "답 {i}"}}\n' for i in range(50)).encode()
    zp = tmp_path / "set.zip"
    _corrupt_zip(zp, "a.jsonl", lines)
    with pytest.raises(kodolly.InputError, match=r"set\.zip!a\.jsonl: corrupt compressed data \(Bad CRC-32"):
        kodolly.convert(zp, "alpaca", tmp_path / "o.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set.zip"]
