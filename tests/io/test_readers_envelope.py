"""A small JSON file that is one object without the expected envelope is itself the record (io/readers.py).

Before, a converter with record paths (``data_info.item``) read nothing at all from such a file: its
record vanished without a reject. An AI Hub corpus (원천) file holding one bare record now ends as ``not_qa``.
"""

import json

import kodolly
from kodolly.io.readers import read_records
from kodolly.io.sources import expand_inputs
import pytest

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine


def test_single_object_without_the_envelope_is_one_record(tmp_path):
    path = tmp_path / "말뭉치_002.json"
    record = {"data_id": "c-1", "data_title": "제목", "data_category": {"main": "문어체", "middle": "사회"}, "contents": "<ul><li>본문</li></ul>"}
    path.write_text(json.dumps(record, ensure_ascii=False), "utf-8")
    (inp,) = expand_inputs([path])
    assert [r for r, _loc in read_records(inp, ("data_info.item",))] == [record]
    rejects: list[dict] = []
    rows = list(kodolly.iter_rows(path, "aihub", rejects=rejects))
    assert rows == [] and [r["reason"] for r in rejects] == ["not_qa"]


def test_envelope_still_streams_at_its_path(tmp_path):
    path = tmp_path / "label.json"
    path.write_text(json.dumps({"dataset_info": {}, "data_info": [{"a": 1}, {"a": 2}]}), "utf-8")
    (inp,) = expand_inputs([path])
    assert [r for r, _loc in read_records(inp, ("data_info.item",))] == [{"a": 1}, {"a": 2}]


def test_envelope_key_after_a_long_head_is_still_found(tmp_path):
    # "data_info" comes after more than the sniffed head: the reader streams every candidate path at once.
    path = tmp_path / "late.json"
    info = {"description": "설명 " * 40000}
    path.write_text(json.dumps({"dataset_info": info, "data_info": [{"a": 1}, {"a": [2, {"b": 3}]}]}, ensure_ascii=False), "utf-8")
    (inp,) = expand_inputs([path])
    assert [r for r, _loc in read_records(inp, ("data.item", "data_info.item"))] == [{"a": 1}, {"a": [2, {"b": 3}]}]


def test_envelope_without_records_is_reported_not_silent(tmp_path):
    path = tmp_path / "big_empty.json"
    path.write_text(json.dumps({"dataset_info": {"note": "x" * 70000}, "data_info": []}), "utf-8")
    (inp,) = expand_inputs([path])
    ((bad, loc),) = list(read_records(inp, ("data_info.item",)))
    assert (bad.reason, bad.detail, loc.index) == ("no_records", "no records at data_info[]", 0)
