"""The pipeline's ``Converter.finish`` hook (pipeline.py): items made from several records are counted,
normalised, checked and written like any other, with the location the converter gives."""

import json

import kodolly
from kodolly.io.readers import Location
import pytest

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine


def convert(record, loc, ctx):
    ctx.state.setdefault("seen", []).append((record["q"], loc))
    yield kodolly.make_row(instruction=record["q"], response=record["a"], source=ctx.source, id=record["q"])


def finish(ctx):
    seen = ctx.state.get("seen", [])
    yield kodolly.make_row(instruction=" + ".join(q for q, _ in seen), response="합", source=ctx.source, id="all"), seen[0][1]
    yield kodolly.Reject("too_few", "demo", raw={"n": len(seen)}), seen[-1][1]
    yield kodolly.make_row(instruction="  ", response="x", source=ctx.source, id="blank"), Location("virtual", 0)


CONV = kodolly.Converter(name="finishing", description="test", convert=convert, finish=finish)


def test_finish_items_are_counted_and_checked(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"q": "가", "a": "A"}\n{"q": "나", "a": "B"}\n', "utf-8")
    result = kodolly.convert(data, CONV, tmp_path / "out.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    assert [(r["id"], r["instruction"]) for r in rows] == [("가", "가"), ("나", "나"), ("all", "가 + 나")]
    assert json.loads(rows[2]["meta"]) == {"file": str(data), "line": 1}
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text("utf-8").splitlines()]
    assert [(r["reason"], r["line"], r["file"]) for r in rejects] == [("too_few", 2, str(data)), ("empty_field:instruction", None, "virtual")]
    assert (result.tally.read, result.tally.written, result.tally.rejected) == (5, 3, 2) and result.tally.balanced
