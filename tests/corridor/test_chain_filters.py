"""The pipeline with filters: every filter at once, several input groups, determinism, the reference workflow."""

import json

import pyarrow.parquet as pq

from kodolly import api
from kodolly.filters import build_filters
from kodolly.manifest import validate_manifest
from kodolly import InputGroup
from kodolly.splits import Splitter
from support import REFERENCE, REFERENCE_IDS, REFERENCE_SOURCES
import pytest

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine

ALL_FILTERS = {
    "score": {"min": 30},
    "category": {"include": ["open_qa", "closed_qa", "brainstorming"], "exclude": ["brainstorming"]},
    "domain": {"include": ["사회", "자연", "예체능"], "exclude": ["예체능"]},
    "content": {"min_chars": {"response": 2}, "max_chars": {"total": 200}, "min_hangul": {"response": 0.5}},
    "dedup": {"key": ["instruction", "context", "response"]},
    "near_dup": {"threshold": 0.7},
    "split": {"train": 0.5, "validation": 0.25, "test": 0.25},
}


def test_tally_identity_with_every_filter_enabled(fixtures, tmp_path, scored_converter):
    out = tmp_path / "all.parquet"
    result = api.convert(fixtures / "filters" / "all_reasons.jsonl", "test_scored", out, filters=build_filters(ALL_FILTERS))
    tally = result.tally
    assert tally.balanced and tally.read == 19 and tally.written == 3 and tally.rejected == 16
    assert dict(tally.by_reason) == {
        "bad_json": 1,
        "missing_field:a": 1,
        "empty_field:instruction": 1,
        "no_score": 1,
        "score_below": 1,
        "category_excluded": 1,
        "category_not_included": 1,
        "domain_excluded": 1,
        "domain_not_included": 1,
        "content_lfs_pointer": 1,
        "content_response_equals_instruction": 1,
        "content_too_short:response": 1,
        "content_too_long:total": 1,
        "content_hangul_share:response": 1,
        "duplicate_of": 1,
        "near_duplicate_of": 1,
    }
    # the files agree with the tally, and every reject says where it came from
    assert pq.read_table(out).column("id").to_pylist() == ["r01", "r14", "r16"]
    rejects = [json.loads(line) for line in (tmp_path / "all.rejects.jsonl").read_text("utf-8").splitlines()]
    assert len(rejects) == 16 and all(r["file"].endswith("all_reasons.jsonl") and r["line"] for r in rejects)
    by_id = {r["id"]: r["reason"] for r in rejects if r["id"]}
    assert by_id["r13"] == "duplicate_of:r01" and by_id["r15"] == "near_duplicate_of:r14"
    # the manifest records every filter's settings, in chain order
    manifest = json.loads((tmp_path / "all.manifest.json").read_text("utf-8"))
    validate_manifest(manifest)
    assert [f["name"] for f in manifest["filters"]] == ["score", "category", "domain", "content", "dedup", "near_dup", "split"]
    assert manifest["filters"][0]["settings"] == {"min_score": 30.0, "strict": True, "keep_unscored": False}
    assert manifest["filters"][2]["settings"] == {"include": ["사회", "자연", "예체능"], "exclude": ["예체능"]}
    assert manifest["filters"][6]["settings"]["ratios"] == {"train": 0.5, "validation": 0.25, "test": 0.25}
    # the report beside the output: counts and examples per reason
    report = json.loads((tmp_path / "all.report.json").read_text("utf-8"))
    assert report["counts"] == manifest["counts"]
    assert set(report["examples"]) == set(tally.by_reason)
    assert report["examples"]["duplicate_of"][0] | {} == {
        "reason": "duplicate_of:r01", "source": "test_scored", "file": str(fixtures / "filters" / "all_reasons.jsonl"),
        "line": 15, "index": 14, "id": "r13", "detail": "",
        "instruction": "서울은 어떤 도시인가요?", "response": "서울은 대한민국의 수도입니다.",
    }


def test_examples_are_capped_per_reason(fixtures):
    result = api.convert(fixtures / "filters" / "dedup_variants.jsonl", "alpaca", filters=build_filters({}))
    assert result.tally.by_reason["duplicate_of"] == 5
    assert [e["id"] for e in result.report_data["examples"]["duplicate_of"]] == ["v2", "v3", "v4"]


# ----------------------------------------------------------------------------- reference workflow
# (REFERENCE and the expected counts are in tests/support.py: the real aihub converter + the qa layout)

def _reference_run(fixtures, out):
    return api.convert(
        fixtures / "filters" / "aihub_sft_sample.json", "aihub", out,
        filters=build_filters(REFERENCE),
        groups=[InputGroup([fixtures / "filters" / "user_scored.csv"], "qa")],
    )


def _rejects(path):
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_reference_workflow_aihub_plus_scored_csv(fixtures, tmp_path):
    out = tmp_path / "ko.parquet"
    result = _reference_run(fixtures, out)
    counts = result.tally.as_dict()
    assert counts["sources"] == REFERENCE_SOURCES
    assert counts["balanced"] and (counts["read"], counts["written"], counts["rejected"]) == (22, 10, 12)
    table = pq.read_table(out)
    ids = table.column("id").to_pylist()
    assert ids == REFERENCE_IDS
    rows = {row["id"]: row for row in table.to_pylist()}
    assert rows["a05"]["instruction"] == "훈민정음은 누가 만들었나요?"  # leading space gone
    assert (rows["a01"]["source"], rows["a01"]["license"], rows["a01"]["domain"], rows["a01"]["score"]) == ("aihub", "AI Hub terms", "사회", None)
    assert json.loads(rows["a01"]["meta"])["register"] == "문어체"  # from the aihub-sft layout's [meta]
    assert (rows["user_scored.csv:7"]["source"], rows["user_scored.csv:7"]["domain"], rows["user_scored.csv:7"]["score"]) == ("qa", "자연", 55.5)
    assert rows["user_scored.csv:6"]["score"] is None  # empty score cell: unscored, kept
    assert set(table.column("domain").to_pylist()).isdisjoint({"예체능", "종교", "보건"})
    # every reject: reason and location; the cross-source duplicates name the AI Hub rows they repeat
    rejects = _rejects(tmp_path / "ko.rejects.jsonl")
    assert sorted((r["source"], r["index"], r["reason"]) for r in rejects) == [
        ("aihub", 1, "domain_excluded"), ("aihub", 2, "domain_excluded"), ("aihub", 3, "domain_excluded"),
        ("aihub", 5, "answer_equals_question"), ("aihub", 7, "duplicate_of:a01"), ("aihub", 10, "no_answer"),
        ("qa", 1, "score_below"), ("qa", 3, "domain_excluded"), ("qa", 4, "duplicate_of:a01"),
        ("qa", 5, "score_below"), ("qa", 9, "duplicate_of:a10"), ("qa", 10, "domain_excluded"),
    ]
    assert {r["line"] for r in rejects if r["source"] == "qa"} == {3, 7, 5, 6, 11, 12}  # CSV lines (header = 1)
    dups = {r["id"]: r["reason"] for r in rejects if r["reason"].startswith("duplicate_of:")}
    assert dups == {"a08": "duplicate_of:a01", "user_scored.csv:4": "duplicate_of:a01", "user_scored.csv:9": "duplicate_of:a10"}
    # splits: by hash of id (pinned: a change of the hash would move rows between splits)
    splits = dict(zip(ids, table.column("split").to_pylist()))
    splitter = Splitter(REFERENCE["split"])
    assert splits == {i: splitter.assign(i) for i in ids}
    assert splits == {
        "a01": "train", "a05": "train", "a07": "validation", "a09": "train", "a10": "validation",
        "user_scored.csv:0": "train", "user_scored.csv:2": "train", "user_scored.csv:6": "train",
        "user_scored.csv:7": "test", "user_scored.csv:8": "train",
    }
    manifest = json.loads((tmp_path / "ko.manifest.json").read_text("utf-8"))
    assert [g["converter"] for g in manifest["groups"]] == ["aihub", "qa"]
    assert [i["name"].rsplit("/", 1)[-1] for i in manifest["inputs"]] == ["aihub_sft_sample.json", "user_scored.csv"]


def test_two_runs_write_byte_identical_files(fixtures, tmp_path):
    first, second = tmp_path / "one" / "ko.parquet", tmp_path / "two" / "ko.parquet"
    _reference_run(fixtures, first)
    _reference_run(fixtures, second)
    assert first.read_bytes() == second.read_bytes()
    for suffix in (".rejects.jsonl", ".report.json"):
        assert (first.parent / f"ko{suffix}").read_bytes() == (second.parent / f"ko{suffix}").read_bytes()


def test_a_bad_option_in_a_later_group_fails_before_anything_is_written(fixtures, tmp_path):
    import pytest

    from kodolly.errors import ConfigError

    with pytest.raises(ConfigError, match="has no option"):
        api.convert(
            fixtures / "filters" / "dedup_variants.jsonl", "alpaca", tmp_path / "o.parquet",
            groups=[InputGroup([fixtures / "filters" / "dedup_second_source.jsonl"], "dolly", {"no_such_option": 1})],
        )
    assert list(tmp_path.iterdir()) == []
