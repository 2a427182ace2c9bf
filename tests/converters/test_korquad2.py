"""korquad2: HTML pages to bounded, readable contexts; every quirk of FORMATS.md "KorQuAD 2.0 / 2.1"."""

from __future__ import annotations

import importlib.util
import json
import tracemalloc
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import kodolly
from kodolly import api
from kodolly.cli import cli
from kodolly.converters import Reject
from kodolly.converters.html_text import render_blocks
from kodolly.converters.korquad2 import CONVERTER, convert
from kodolly.io.readers import Location
from kodolly.registry import get_converter

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "fixtures" / "korquad2"
SAMPLE = FIX / "KorQuAD_2.1_dev_sample.json"
NO_VERSION = FIX / "KorQuAD_2.1_test_no_version.json"

HISTORY = (
    "역사\n\n1917년 10월 7일 인도교로 처음 개통되었다. 1950년 6월 28일 한국 전쟁 중 국군에 의해 폭파되었다.\n\n"
    "1958년 5월 15일 복구되었고, 1981년 12월 30일 쌍둥이 다리가 완공되어 지금의 모습이 되었다."
)
SPEC_TABLE = "구분 | 길이 | 폭 | 높이\n북단 교량 | 440m | 19.9m | 332cm\n남단 교량 | 565m | 19.9m | 310cm"
LIST = "- 노들섬\n- 한강대교 전망 카페\n  - 직녀카페\n  - 견우카페\n- 용양봉저정"
INFOBOX = (
    "한강대교\n공식 명칭 | 한강대교\n위치 | 서울특별시 용산구 이촌동 ~ 동작구 본동\n길이 | 1,005m\n폭 | 19.9m\n개통일 | 1917년 10월 7일"
)
INTRO = "한강대교(漢江大橋)는 서울특별시 용산구 이촌동과 동작구 본동을 잇는 한강의 다리이다. 한강에 놓인 최초의 인도교이다."


def _run(path=SAMPLE, **options):
    rejects: list[dict] = []
    rows = {r["id"]: r for r in api.iter_rows(path, "korquad2", rejects=rejects, options=options or None)}
    return rows, rejects


@pytest.fixture(scope="module")
def sample():
    return _run()


def test_phrase_answer_context_is_its_section(sample):
    rows, _ = sample
    row = rows["43231-0"]
    assert (row["instruction"], row["response"], row["context"]) == ("한강대교가 한국 전쟁 중 폭파된 날은?", "1950년 6월 28일", HISTORY)
    assert row["category"] == "closed_qa" and row["license"] == "CC BY-ND 2.0 KR"
    assert row["meta"] == {
        "title": "한강대교", "url": "https://ko.wikipedia.org/wiki/한강대교", "question_id": "43231-0",
        "answer_type": "text", "file": str(SAMPLE), "index": 0,
    }


def test_table_answer_rendered_as_rows_with_header(sample):
    rows, _ = sample
    row = rows["43231-1"]
    assert row["response"] == SPEC_TABLE
    assert row["context"] == "제원\n\n" + SPEC_TABLE
    assert row["meta"]["answer_type"] == "table"


def test_list_answer_rendered_as_lines(sample):
    rows, _ = sample
    row = rows["43231-2"]
    assert (row["response"], row["context"], row["meta"]["answer_type"]) == (LIST, "주변 시설\n\n" + LIST, "list")


def test_paragraph_answer(sample):
    rows, _ = sample
    row = rows["43231-3"]
    assert row["response"] == "1917년 10월 7일 인도교로 처음 개통되었다. 1950년 6월 28일 한국 전쟁 중 국군에 의해 폭파되었다."
    assert row["context"] == HISTORY and row["meta"]["answer_type"] == "paragraph"


def test_offset_past_the_end_falls_back_to_the_answer_text(sample):
    rows, _ = sample
    row = rows["43231-4"]
    assert row["response"] == "1,005m" and row["meta"]["answer_offset_fixed"] is True
    assert row["context"] == "한강대교\n\n" + INFOBOX + "\n\n" + INTRO  # the top of the page, without its chrome


def test_nbsp_in_answer_and_page(sample):
    rows, _ = sample
    row = rows["43231-6"]
    assert row["response"] == "최초의 인도교" and row["response"] in row["context"]
    assert "\xa0" not in row["context"]


def test_offset_picks_the_right_occurrence(sample):
    rows, _ = sample
    # "1917년 10월 7일" is in the infobox (its offset) and in the history paragraph: the infobox is used
    assert rows["43231-7"]["context"].startswith("한강대교\n\n" + INFOBOX)
    assert "answer_offset_fixed" not in rows["43231-7"]["meta"]
    # a cell of the specs table: the context is that table
    assert rows["43231-8"]["response"] == "332cm" and rows["43231-8"]["context"] == "제원\n\n" + SPEC_TABLE


def test_answer_not_in_page_rejected_and_page_without_questions(sample):
    _, rejects = sample
    got = [(r["reason"], r["part"], r["index"]) for r in rejects]
    assert got == [("answer_not_in_context", "43231-5", 0), ("no_questions", "", 1)]
    assert rejects[0]["raw"]["id"] == "43231-5" and "context" not in rejects[0]["raw"]  # the question, not the page
    assert rejects[1]["raw"] == {"title": "빈_문서"}


def test_chrome_scripts_and_edit_links_never_reach_a_context(sample):
    rows, _ = sample
    for row in rows.values():
        for junk in ("[편집]", "편집]", "목차", "[1]", "둘러보기로 가기", "검색하러 가기", "우리 모두의 백과사전", "mw-parser-output", "<"):
            assert junk not in row["context"], (row["id"], junk)


def test_big_table_is_cut_around_the_answer_keeping_its_header(sample):
    rows, _ = sample
    row = rows["90001-0"]
    assert row["response"] == "2150년"
    lines = row["context"].split("\n")
    assert lines[0] == "연도 | 인구 | 비고" and "2150년 | 250명 | 관측소 250" in lines
    assert len(row["context"]) <= 4000 < len("\n".join(f"{1900 + i}년 | {i * 37 % 1000}명 | 관측소 {i}" for i in range(300)))
    assert row["meta"]["title"] == "어느 마을의 인구" and row["meta"]["title_raw"] == "어느_마을의_인구"


def test_raw_html_is_used_when_context_is_missing(sample):
    rows, _ = sample
    row = rows["43300-0"]
    assert row["response"] == "19.9m"
    assert row["context"] == INFOBOX + "\n\n" + INTRO  # the content root only: no title, scripts or navigation


def test_file_without_version_and_offsets_past_the_end():
    rows, rejects = _run(NO_VERSION)
    assert rejects == []
    assert [(r["id"], r["response"], r["context"], r["meta"]["answer_offset_fixed"]) for r in rows.values()] == [
        ("7001-0", "1443년", "개요\n\n세종대왕은 1443년 훈민정음을 창제하였다.\n\n- 집현전\n- 측우기", True),
        ("7001-1", "- 집현전\n- 측우기", "개요\n\n세종대왕은 1443년 훈민정음을 창제하였다.\n\n- 집현전\n- 측우기", True),
    ]


@pytest.mark.parametrize("bound", [4000, 300, 80])
def test_every_row_holds_its_answer_within_the_bound(bound):
    rows, rejects = _run(max_context_chars=bound)
    assert rows
    for row in rows.values():
        assert row["response"] in row["context"] and len(row["context"]) <= bound, row["id"]
    assert len(rows) + len(rejects) == 15


def test_bound_smaller_than_the_answer_rejects_answer_too_long():
    rows, rejects = _run(max_context_chars=len(SPEC_TABLE) - 1)
    assert "43231-1" not in rows
    assert ("answer_too_long", "43231-1") in [(r["reason"], r["part"]) for r in rejects]
    rows, _ = _run(max_context_chars=len(SPEC_TABLE))
    assert rows["43231-1"]["context"] == SPEC_TABLE


def test_malformed_questions_and_pages_do_not_crash():
    ctx = CONVERTER.context()
    loc = Location("t.json", 0)
    page = {"title": "t", "context": "<p>답은 서울</p>", "qas": [
        "not a question",
        {"id": "a", "question": "?"},
        {"id": "b", "question": "?", "answer": "서울"},
        {"id": "c", "answer": {"text": "서울", "answer_start": 3}},
        {"id": "d", "question": "?", "answer": {"text": "<p> </p>", "answer_start": 0}},
        {"id": "e", "question": "?", "answer": [{"text": "서울", "answer_start": "6"}]},
        {"id": "f", "question": "?", "answer": {"text": "서울", "answer_start": None}},
    ]}
    items = list(convert(page, loc, ctx))
    assert [(i.reason, i.part) if isinstance(i, Reject) else i["id"] for i in items] == [
        ("bad_type:question", "0"), ("missing_field:answer", "a"), ("bad_type:answer", "b"),
        ("missing_field:question", "c"), ("empty_field:response", "d"), "e", "f",
    ]
    no_html = list(convert({"title": "t", "qas": [{"id": "x", "question": "?", "answer": {"text": "a", "answer_start": 0}}]}, loc, ctx))
    assert [(i.reason, i.part) for i in no_html] == [("missing_field:context", "x")]
    assert [i.reason for i in convert(["a page?"], loc, ctx)] == ["bad_type:record"]


def test_registered_detected_and_cli(tmp_path):
    assert get_converter("korquad2") is CONVERTER
    found = api.inspect_file(SAMPLE)
    assert found.converter == "korquad2" and found.row["id"] == "43231-0"
    assert api.inspect_file(NO_VERSION).converter == "korquad2"
    runner = CliRunner()
    out = tmp_path / "kq2.parquet"
    res = runner.invoke(cli, ["convert", str(SAMPLE), "-o", str(out), "-O", "max_context_chars=300"])
    assert res.exit_code == 0, res.output
    assert "tally OK: read 15 = written 13 + rejected 2" in res.output
    manifest = json.loads((tmp_path / "kq2.manifest.json").read_text())
    assert manifest["converter"]["options"]["max_context_chars"] == 300
    assert max(len(c) for c in pq.read_table(out).column("context").to_pylist()) <= 300


def test_end_to_end_tally_and_parquet(tmp_path):
    out = tmp_path / "kq2.parquet"
    result = kodolly.convert(FIX, "korquad2", out)  # the folder: every JSON file, not its README
    table = pq.read_table(out)
    assert table.num_rows == 19 == result.tally.written  # 15 from the two samples + 4 from br_in_table_cell.json
    assert (result.tally.read, result.tally.rejected, result.tally.balanced) == (21, 2, True)
    assert len(result.rejects.read_bytes().splitlines()) == 2
    for row in table.to_pylist():
        assert row["response"] in row["context"] and len(row["context"]) <= 4000


def _generator():
    spec = importlib.util.spec_from_file_location("gen_korquad", ROOT / "benchmarks" / "gen_korquad.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _convert_traced(src: Path) -> tuple[list[dict], list[dict], int]:
    tracemalloc.start()
    try:
        rejects: list[dict] = []
        rows = []
        for row in api.iter_rows(src, "korquad2", rejects=rejects, batch_size=64):
            rows.append({"id": row["id"], "response": row["response"], "context": row["context"]})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return rows, rejects, peak


def test_generated_pages_every_row_within_bound_and_memory_bounded(tmp_path):
    gen = _generator()
    small, large = tmp_path / "KorQuAD_2.1_train_00.json", tmp_path / "KorQuAD_2.1_train_01.json"
    gen.write_korquad2(small, 8, seed=5, min_kb=60, max_kb=120)
    questions = gen.write_korquad2(large, 32, seed=5, min_kb=60, max_kb=120)
    _, _, peak_small = _convert_traced(small)
    rows, rejects, peak_large = _convert_traced(large)
    assert len(rows) + len(rejects) == questions
    assert len(rows) >= 0.9 * questions and {r["reason"] for r in rejects} <= {"answer_not_in_context", "answer_too_long"}
    for row in rows:
        assert row["response"] in row["context"] and len(row["context"]) <= 4000, row["id"]
    # pages are streamed one at a time: four times the pages, not four times the memory
    assert large.stat().st_size > 3 * small.stat().st_size
    assert peak_large < 1.5 * peak_small


def test_inspect_does_not_read_a_korquad_file_whole_for_converters_without_record_paths(monkeypatch):
    asked: list[str] = []
    real = api._first_record

    def spy(inp, conv):
        asked.append(conv.name if conv else "")
        return real(inp, conv)

    monkeypatch.setattr(api, "_first_record", spy)
    assert api.inspect_file(SAMPLE).converter == "korquad2"
    assert asked and all(get_converter(name).record_paths for name in asked)  # alpaca, dolly, sharegpt skipped


def test_the_marked_block_wins_over_an_earlier_block_with_the_same_text():
    html = "<html><body><p>첫 문단의 332cm</p><p>둘째 문단도 332cm</p></body></html>"
    page = {"title": "t", "context": html, "qas": [
        {"id": "q", "question": "?", "answer": {"text": "332cm", "answer_start": html.rindex("332cm")}}]}
    items = list(convert(page, Location("t.json", 0), CONVERTER.context({"max_context_chars": 15})))
    assert items[0]["context"] == "둘째 문단도 332cm" and "answer_offset_fixed" not in items[0]["meta"]


def test_bad_max_context_chars_is_a_one_line_config_error(tmp_path):
    res = CliRunner().invoke(cli, ["convert", "--from", "korquad2", str(SAMPLE), "-o", str(tmp_path / "x.parquet"), "-O", "max_context_chars=lots"])
    assert res.exit_code == 2
    assert "max_context_chars must be a positive whole number, not 'lots'" in res.output
    assert not (tmp_path / "x.parquet").exists()


def test_page_shaped_like_a_published_real_context(sample):
    """`예고범`: loose jump links, a TOC in a div with <input>, definition lists, <ol> in <li>, \xa0, int id."""
    rows, _ = sample
    got = {qid: (rows[qid]["response"], rows[qid]["context"]) for qid in ("8089", "8090", "8091")}
    assert got == {
        "8089": ("나카무라 요시히로, 히라바야시 카츠토시, 사와다 메구미",
                 "스태프\n\n- 원작 - 츠츠이 테츠야 《예고범》\n- 감독 - 나카무라 요시히로, 히라바야시 카츠토시, 사와다 메구미\n- 제작 - WOWOW"),
        "8090": ("예고범 그룹 〈신분시〉의 주범격",
                 "등장인물\n\n게이츠/오쿠다 히로아키\n예고범 그룹 〈신분시〉의 주범격.\n칸사이/카사이 토모히코\n오사카 출신."),
        "8091": ("ISBN 978-4-08-879310-8",
                 "서지 정보\n\n- 츠츠이 테츠야 《예고범》 슈에이샤 〈영 점프 코믹스〉 전 3권\n"
                 "  - 2012년 4월 10일 발매, ISBN 978-4-08-879310-8\n  - 2012년 12월 10일 발매, ISBN 978-4-08-879495-2"),
    }
    page = json.loads(SAMPLE.read_text())["data"][4]
    blocks, _ = render_blocks(page["context"])
    assert [b.text for b in blocks[:3]] == ["예고범", "《예고범》(일본어: 予告犯)은 츠츠이 테츠야의 만화 작품이다.", "등장인물"]


BR = FIX / "br_in_table_cell.json"
BR_META = {"title": "서울 지하철 1호선", "title_raw": "서울_지하철_1호선", "url": "https://ko.wikipedia.org/wiki/서울_지하철_1호선"}
STATIONS = "역 목록\n\n역명 | 환승 노선\n서울역 | 4호선 공항철도\n시청 | 2호선"
RUNNING = "운행\n\n- 평일 첫차 05:30\n- 주말\n\n열차는 매일\n새벽부터 운행한다."


def test_br_in_a_table_cell_or_list_item_is_a_space_in_answer_and_context_alike():
    rows, rejects = _run(BR)
    assert rejects == []
    assert [(r["id"], r["instruction"], r["response"], r["context"], {k: v for k, v in r["meta"].items() if k not in ("file", "index")})
            for r in rows.values()] == [
        ("br-0", "서울역에서 환승할 수 있는 노선은?", "4호선 공항철도", STATIONS, {**BR_META, "question_id": "br-0", "answer_type": "text"}),
        ("br-1", "평일 첫차 시간은?", "평일 첫차 05:30", RUNNING, {**BR_META, "question_id": "br-1", "answer_type": "text"}),
        # in a paragraph the <br> is a line break, in the context and the answer alike
        ("br-2", "열차는 언제부터 운행하나?", "매일\n새벽부터", RUNNING, {**BR_META, "question_id": "br-2", "answer_type": "text"}),
        ("br-3", "서울역 행의 환승 노선 칸은?", "4호선 공항철도", STATIONS, {**BR_META, "question_id": "br-3", "answer_type": "table"}),
    ]
