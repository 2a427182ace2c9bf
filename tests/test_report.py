from pathlib import Path

from kodolly.report import RunReport, format_examples, report_path
from support import FIXTURES
from kodolly.tally import Tally, reason_key


def _reject(reason, n, raw):
    return {"reason": reason, "source": "alpaca", "file": "a.jsonl", "index": n, "line": n + 1, "part": "",
            "id": f"id{n}", "detail": "", "raw": raw}


def test_report_path_beside_the_manifest():
    assert report_path(Path("out/ko.manifest.json")) == Path("out/ko.report.json")


def test_reason_keys_group_ids():
    assert reason_key("duplicate_of:abc:1") == "duplicate_of"
    assert reason_key("near_duplicate_of:x") == "near_duplicate_of"
    assert reason_key("content_too_short:response") == "content_too_short:response"


def test_examples_keep_the_first_three_per_reason_with_excerpts():
    report = RunReport()
    row = {"instruction": "질문 " * 50, "response": "답", "id": "x"}
    for n in range(5):
        report.add("duplicate_of", _reject(f"duplicate_of:id{n}", n, row))
    report.add("bad_json", _reject("bad_json", 9, '{"broken'))
    tally = Tally()
    data = report.as_dict(tally)
    assert [e["id"] for e in data["examples"]["duplicate_of"]] == ["id0", "id1", "id2"]
    first = data["examples"]["duplicate_of"][0]
    assert len(first["instruction"]) == 80 and first["instruction"].endswith("…") and first["response"] == "답"
    assert data["examples"]["bad_json"][0]["raw"] == '{"broken'
    text = format_examples(data)
    assert text.splitlines()[:3] == [
        "example rejects (first 3 per reason)",
        "  bad_json",
        '    alpaca a.jsonl:10 id=id9: {"broken',
    ]
    assert "    alpaca a.jsonl:1 id=id0 [duplicate_of:id0]: 질문 질문" in text


def test_rejects_per_source_and_reason_when_several_sources():
    tally = Tally()
    tally.source("aihub").rejected.update({"domain_excluded": 3, "duplicate_of": 1})
    tally.source("csv").rejected.update({"score_below": 2})
    from kodolly.report import format_by_source

    assert format_by_source(tally).splitlines() == [
        f"{'source':<20}{'reject reason':<40}{'count':>10}",
        f"{'aihub':<20}{'domain_excluded':<40}{3:>10}",
        f"{'':<20}{'duplicate_of':<40}{1:>10}",
        f"{'csv':<20}{'score_below':<40}{2:>10}",
    ]


def test_rows_are_counted_per_input_also_when_meta_keeps_an_earlier_file(tmp_path):
    """A kodolly output read back keeps its earlier location in meta.origin; the per-input counts
    (and so the no-rows warning) go by the file the row was read from now, on either path."""
    import kodolly

    first = kodolly.convert(FIXTURES / "alpaca/kullm-v2.jsonl", "alpaca", tmp_path / "first.jsonl")
    for workers in (1, 2):
        again = kodolly.convert(first.output, "dolly", tmp_path / f"again{workers}.parquet", workers=workers)
        assert again.report_data["inputs"] == [{"file": str(first.output), "converter": "dolly", "written": first.tally.written, "rejected": 0}]
        assert again.report_data["warnings"] == []
