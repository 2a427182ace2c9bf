"""Declarative layouts (src/kodolly/layouts.py): records paths, field specs, errors with the line at fault,
a layout written only in TOML for a made-up AI Hub-style set, the shipped layouts, generic mapped sources."""

import json
from pathlib import Path

import pytest

import kodolly
from kodolly.errors import ConfigError
from kodolly.io.readers import Location
from kodolly.layouts import load_layout, mapped_converter, parse_layout_text, parse_records, shipped_layouts

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "layouts"


def run(path, converter, **kwargs):
    rejects: list[dict] = []
    tally = kodolly.Tally()
    rows = list(kodolly.iter_rows(path, converter, rejects=rejects, tally=tally, **kwargs))
    assert tally.balanced and tally.read == len(rows) + len(rejects)
    return rows, rejects


def one(layout_text, record):
    conv = parse_layout_text(layout_text)
    return list(conv.convert(record, Location("f.json", 7), conv.context()))


@pytest.mark.parametrize(
    ("records", "paths", "walk"),
    [
        ("[]", (), ()),
        ("data_info[]", ("data_info.item",), ()),
        ("Dataset.Annotations[]", ("Dataset.Annotations.item",), ()),
        ("[].contents[].QA[]", (), (("contents",), ("QA",))),
        ("data[].passage.qas[]", ("data.item",), (("passage", "qas"),)),
    ],
)
def test_records_paths(records, paths, walk):
    assert parse_records(records) == (paths, walk)


# ------------------------------------------------------------------ the made-up AI Hub-style set (TOML only)


def test_layout_written_only_in_toml_for_a_made_up_aihub_style_set():
    """Envelope Dataset.Annotations[], a walked passage.qas[] list, other field names: no Python."""
    conv = load_layout(ROOT / "examples" / "layouts" / "legal-qa.toml")
    assert conv.name == "legal-qa" and conv.record_paths == ("Dataset.Annotations.item",)
    rows, rejects = run(FIXTURES / "legal_qa_train.json", conv)
    assert [(r["id"], r["instruction"], r["context"], r["response"], r["category"], r["domain"], r["score"]) for r in rows] == [
        (
            "LAW-0001-Q1",
            "임차인의 대항력은 언제 생기나요?",
            "임대차 계약\n\n주택 임대차는 등기가 없어도 임차인이 주택을 인도받고 주민등록을 마치면 그 다음 날부터 제3자에게 효력이 생긴다.",
            "주택을 인도받고 주민등록을 마친 다음 날부터 생깁니다.",
            "closed_qa",
            "법률",
            4.5,
        ),
        # an empty body is left out of the join: the title alone is the context
        ("LAW-0002-Q1", "상속 포기는 언제까지 하나요?", "상속", "상속 개시를 안 날부터 3개월 안에 해야 합니다.", "closed_qa", "법률", 5.0),
    ]
    assert rows[0]["license"] == "AI Hub terms" and rows[0]["source"] == "legal-qa"
    assert rows[0]["meta"] == {"doc_id": "LAW-0001", "register": "문어체", "file": str(FIXTURES / "legal_qa_train.json"), "index": 0}
    assert rows[1]["meta"]["doc_id"] == "LAW-0002" and "register" not in rows[1]["meta"]
    assert [(r["reason"], r["index"], r["part"]) for r in rejects] == [
        ("bad_value:score", 0, "1"),
        ("no_answer", 0, "2"),
        ("missing_field:passage.qas", 2, ""),
    ]
    assert rejects[0]["raw"]["qa_id"] == "LAW-0001-Q2"


def test_the_example_layout_is_found_by_inspect_detect_keys():
    conv = load_layout(ROOT / "examples" / "layouts" / "legal-qa.toml")
    record = {"doc_id": "X", "passage": {"qas": []}}
    assert conv.detect(record) > 0 and conv.detect({"doc_id": "X"}) == 0


# ------------------------------------------------------------------ field specs

BASE = 'records = "[].items[]"\n[fields]\n'


def test_paths_climb_and_start_at_the_outer_record():
    text = BASE + 'instruction = "q"\nresponse = "a.0"\ncontext = "../ctx"\ndomain = "/cat.mid"\nid = "/rid"\n[meta]\nk = "/missing"\n'
    items = one(text, {"rid": "R", "cat": {"mid": "법률"}, "ctx": "본문", "items": [{"q": "Q?", "a": ["A1", "A2"]}, {"q": "Q2?", "a": []}]})
    assert [(i["id"], i["instruction"], i["response"], i["context"], i["domain"], i["category"], i["meta"]) for i in items[:1]] == [
        ("R:0", "Q?", "A1", "본문", "법률", "closed_qa", {})
    ]
    assert items[1].reason == "missing_field:response" and items[1].part == "1"


def test_const_join_first_default_and_numbers():
    text = BASE[len('records = "[].items[]"\n'):] + (
        'instruction = { join = ["title", "q"], sep = ": " }\n'
        'response = { first = ["answer", "a"] }\n'
        'category = { const = "summarization" }\n'
        'domain = { path = "area", default = "기타" }\n'
        'score = "s"\n'
        'id = "n"\n'
    )
    (row,) = one(text, {"title": "제목", "q": "요약해", "a": "요약", "s": 3, "n": 42})
    assert (row["instruction"], row["response"], row["category"], row["domain"], row["score"], row["id"]) == (
        "제목: 요약해", "요약", "summarization", "기타", 3.0, "42",
    )
    (row,) = one(text, {"q": "요약해", "answer": "먼저", "a": "나중", "s": "1,234.5"})
    assert (row["instruction"], row["response"], row["score"], row["id"]) == ("요약해", "먼저", 1234.5, "f.json:7")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"q": "Q", "a": "A", "s": "많음"}, "bad_value:score"),
        ({"q": "Q", "a": "A", "s": "nan"}, "bad_value:score"),
        ({"q": "Q", "a": "A", "s": True}, "bad_value:score"),
        ({"q": ["Q"], "a": "A"}, "bad_type:instruction"),
        ({"q": "Q", "a": {"text": "A"}}, "bad_type:response"),
        ({"a": "A"}, "missing_field:instruction"),
        ({"q": "Q", "a": None}, "missing_field:response"),
        ({"q": "Q", "a": "A", "c": "quiz"}, "bad_value:category"),
        ({"q": "질문  입니다", "a": "질문입니다"}, "same_text"),
    ],
)
def test_values_that_cannot_become_a_row_are_rejected(record, reason):
    text = '[fields]\ninstruction = "q"\nresponse = "a"\nscore = "s"\ncategory = "c"\n[[checks]]\nsame = ["instruction", "response"]\nreason = "same_text"\n'
    assert [i.reason for i in one(text, record)] == [reason]


def test_a_column_name_with_a_dot_is_found_whole_and_meta_constants():
    text = '[fields]\ninstruction = "q"\nresponse = "a"\nscore = "score.v2"\n[meta]\nbatch = { const = 3 }\nnote = { path = "n", default = "없음" }\n'
    (row,) = one(text, {"q": "Q", "a": "A", "score.v2": "7"})
    assert row["score"] == 7.0 and row["meta"] == {"batch": 3, "note": "없음"}


def test_the_public_api_converts_with_a_layout(tmp_path):
    conv = kodolly.load_layout(ROOT / "examples" / "layouts" / "legal-qa.toml")
    assert [r["id"] for r in kodolly.iter_rows(FIXTURES / "legal_qa_train.json", conv)] == ["LAW-0001-Q1", "LAW-0002-Q1"]


def test_empty_category_cell_falls_back_and_checks_ignore_two_empty_fields():
    text = '[fields]\ninstruction = "q"\nresponse = "a"\ncontext = "c"\ncategory = "cat"\n[[checks]]\nsame = ["context", "response"]\nreason = "same"\n'
    (row,) = one(text, {"q": "Q", "a": "A", "c": "", "cat": ""})
    assert row["category"] == "open_qa"
    (row,) = one(text.replace('"context", "response"', '"context", "context"'), {"q": "Q", "a": "A", "c": "", "cat": " "})
    assert row["context"] == ""
    assert [i.reason for i in one(text, {"q": "Q", "a": "A", "c": "A", "cat": ""})] == ["same"]


def test_meta_value_with_a_missing_reason():
    text = '[fields]\ninstruction = "q"\nresponse = "a"\n[meta]\nsrc = { path = "src", missing = "no_source" }\n'
    assert [i.reason for i in one(text, {"q": "Q", "a": "A"})] == ["no_source"]
    assert one(text, {"q": "Q", "a": "A", "src": "웹"})[0]["meta"] == {"src": "웹"}


def test_empty_score_cell_is_no_score():
    (row,) = one('[fields]\ninstruction = "q"\nresponse = "a"\nscore = "s"\n', {"q": "Q", "a": "A", "s": " "})
    assert row["score"] is None


def test_walked_list_that_is_not_a_list():
    items = one(BASE + 'instruction = "q"\nresponse = "a"\n', {"items": {"q": "Q"}})
    assert [(i.reason, i.detail) for i in items] == [("bad_type:items", "expected a list, got dict")]
    items = one(BASE + 'instruction = "q"\nresponse = "a"\n', {"items": ["text", {"q": "Q", "a": "A"}]})
    assert items[0].reason == "bad_type:items" and items[0].part == "0" and items[1]["id"] == "f.json:7:1"


# ------------------------------------------------------------------ shipped layouts and generic mapped sources


def test_shipped_layouts_are_registered_and_listed():
    names = {c.name for c in shipped_layouts()}
    assert names == {"aihub-sft", "aihub-other", "qa"}
    listed = {c.name for c in kodolly.formats()}
    assert names <= listed and {"aihub", "hansol"} <= listed
    assert kodolly.get_converter("qa").convert is next(c for c in shipped_layouts() if c.name == "qa").convert


def test_own_qa_json_with_the_one_line_layout(tmp_path):
    data = tmp_path / "mine.json"
    data.write_text(json.dumps([{"question": "Q1?", "answer": "A1"}, {"question": "Q2?", "answer": ""}, {"question": "Q3?"}], ensure_ascii=False), "utf-8")
    layout = tmp_path / "mine.toml"
    layout.write_text('fields = { instruction = "question", response = "answer" }\n', "utf-8")
    rows, rejects = run(data, load_layout(layout))
    assert [(r["source"], r["id"], r["instruction"], r["response"], r["category"]) for r in rows] == [("mine", "mine.json:0", "Q1?", "A1", "open_qa")]
    assert [r["reason"] for r in rejects] == ["empty_field:response", "missing_field:response"]


def test_labelled_csv_with_a_score_column_through_the_qa_layout_and_a_mapping(tmp_path):
    csv_path = tmp_path / "labelled.csv"
    csv_path.write_text("question,answer,category,score\n서울의 인구는?,약 940만 명입니다.,사회,35\n한강은 어디로 흐르나?,서해로 흐릅니다.,자연,높음\n빈 점수?,네.,기타,\n", "utf-8")
    expected = [("서울의 인구는?", "약 940만 명입니다.", "사회", 35.0), ("빈 점수?", "네.", "기타", None)]
    for conv in ("qa", mapped_converter({"instruction": "question", "response": "answer", "score": "score", "domain": "category"})):
        rows, rejects = run(csv_path, conv)
        assert [(r["instruction"], r["response"], r["domain"], r["score"]) for r in rows] == expected
        assert [(r["reason"], r["line"]) for r in rejects] == [("bad_value:score", 3)]


@pytest.mark.parametrize(
    ("mapping", "says"),
    [({"instruction": "q"}, "map response too"), ({"instruction": "q", "response": "a", "answer": "b"}, "'answer' is not a row field")],
)
def test_bad_mappings(mapping, says):
    with pytest.raises(ConfigError, match=says):
        mapped_converter(mapping)


def test_layout_record_of_shipped_file_and_dict_layouts():
    """What the manifest records: a shipped layout names converters/NAME.toml and hashes the shipped bytes;
    a layout compiled from a dict has its definition only; a Python converter has none."""
    import xxhash

    from kodolly.layouts import compile_layout, layout_record
    from kodolly.registry import get_converter

    qa = layout_record(get_converter("qa"))
    shipped = ROOT / "converters" / "qa.toml"
    assert qa["path"] == qa["source"] == "converters/qa.toml"
    assert qa["xxh3_128"] == xxhash.xxh3_128_hexdigest(shipped.read_bytes())
    assert qa["definition"]["fields"]["domain"] == "category" and qa["definition"]["detect_keys"] == ["question", "answer"]
    data = {"name": "mine", "records": "items[]", "fields": {"instruction": "q", "response": "a"}}
    assert layout_record(compile_layout(data)) == {"source": "<layout>", "path": None, "xxh3_128": None, "definition": data}
    assert layout_record(get_converter("aihub")) is None and layout_record(get_converter("alpaca")) is None

