"""Hansol Deco CSV (converters/hansol.py) in UTF-8, UTF-8 with BOM and cp949; answers modes; join_pairs."""

import random
from pathlib import Path

import pytest

import kodolly
from kodolly.errors import ConfigError

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine

HANSOL = Path(__file__).resolve().parents[2] / "fixtures" / "hansol"
Q0 = ("면진장치가 뭐야?", "면진장치에 대해 설명해줘.")
A0 = (
    "면진장치란 지반에서 오는 진동 에너지를 흡수하여 건물에 전달되는 진동을 줄여주는 장치입니다.",
    "면진장치는 건물과 지반 사이에 설치해 지진의 흔들림을 줄이는 장치입니다.",
)
Q1 = ("방청 페인트의 종류에는 어떤 것들이 있는지 알고 계신가요?", "방청 페인트는 어떤 종류가 있나요?")
A1 = "방청 페인트에는 광명단 페인트와 방청 산화철 페인트 등이 있습니다."
Q2 = "도배지에 녹은 자국이 생기는 원인은?"
A2 = ("도배지의 녹 자국은 벽 속 철재가 습기에 녹슬어 생깁니다.\n습기를 막고 방청 처리를 해야 합니다.", "철재의 녹이 번져 나온 것입니다.")

ALL_ROWS = [
    ("TRAIN_000:1.1", Q0[0], A0[0], "건축구조"),
    ("TRAIN_000:1.2", Q0[0], A0[1], "건축구조"),
    ("TRAIN_000:2.1", Q0[1], A0[0], "건축구조"),
    ("TRAIN_000:2.2", Q0[1], A0[1], "건축구조"),
    # 답변_1 is empty: the first answer is 답변_2
    ("TRAIN_001:1.2", Q1[0], A1, "마감재"),
    ("TRAIN_001:2.2", Q1[1], A1, "마감재"),
    # 질문_2 is empty: one reject, the other question still gives its rows; the newline in the answer is kept
    ("TRAIN_002:1.1", Q2, A2[0], "마감하자"),
    ("TRAIN_002:1.2", Q2, A2[1], "마감하자"),
]
# line = where the CSV row starts: TRAIN_002 starts on line 4 and its answer spans lines 4-5
ALL_REJECTS = [("missing_field:질문_2", "TRAIN_002", 4, "2"), ("no_answer", "TRAIN_003", 6, "")]


def convert(path, **options):
    rejects: list[dict] = []
    tally = kodolly.Tally()
    rows = list(kodolly.iter_rows(path, "hansol", options=options, rejects=rejects, tally=tally))
    assert tally.balanced and tally.read == len(rows) + len(rejects)
    return rows, rejects


def brief(row):
    return (row["id"], row["instruction"], row["response"], row["domain"])


def brief_reject(rej):
    return (rej["reason"], rej["raw"]["id"], rej["line"], rej["part"])


@pytest.mark.parametrize("name", ["train_utf8.csv", "train_utf8_bom.csv", "train_cp949.csv"])
def test_every_question_with_every_answer_in_each_encoding(name):
    raw = (HANSOL / name).read_bytes()
    if name == "train_cp949.csv":
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")  # really cp949, not UTF-8
    rows, rejects = convert(HANSOL / name)
    assert [brief(r) for r in rows] == ALL_ROWS
    assert [brief_reject(r) for r in rejects] == ALL_REJECTS
    assert {(r["category"], r["source"], r["context"]) for r in rows} == {("open_qa", "hansol", "")}
    assert rows[0]["meta"] == {"question": 1, "answer": 1, "file": str(HANSOL / name), "line": 2}


def test_first_answer_only():
    rows, rejects = convert(HANSOL / "train_utf8.csv", answers="first")
    assert [r["id"] for r in rows] == ["TRAIN_000:1.1", "TRAIN_000:2.1", "TRAIN_001:1.2", "TRAIN_001:2.2", "TRAIN_002:1.1"]
    assert [brief_reject(r) for r in rejects] == ALL_REJECTS


def test_test_set_rows_have_no_answer():
    rows, rejects = convert(HANSOL / "test_utf8.csv")
    assert rows == []
    assert [(r["reason"], r["raw"]["질문"]) for r in rejects] == [("no_answer", "면진장치가 뭐고 방청 페인트는 어떤 종류가 있나요?")]


def expected_joined(seed, n):
    """The documented pairing rule, written out independently of the converter."""
    kept = [("TRAIN_000", Q0, A0[0], "건축구조"), ("TRAIN_001", Q1, A1, "마감재"), ("TRAIN_002", (Q2,), A2[0], "마감하자")]
    rng = random.Random(seed)
    pairs = [(a, b) for a in range(3) for b in range(3) if a != b]
    out = []
    for code in rng.sample(range(len(pairs)), min(n, len(pairs))):
        a, b = kept[pairs[code][0]], kept[pairs[code][1]]
        qa, qb = rng.choice(a[1]), rng.choice(b[1])
        domain = a[3] if a[3] == b[3] else f"{a[3]}, {b[3]}"
        out.append((f"join:{a[0]}+{b[0]}", f"{qa} {qb}", f"{a[2]} {b[2]}", domain))
    return out


@pytest.mark.parametrize("seed", [0, 7])
def test_join_pairs_adds_rows_joining_two_different_questions(seed):
    rows, rejects = convert(HANSOL / "train_cp949.csv", join_pairs=3, seed=seed)
    assert [brief(r) for r in rows[: len(ALL_ROWS)]] == ALL_ROWS
    joined = rows[len(ALL_ROWS):]
    assert [brief(r) for r in joined] == expected_joined(seed, 3)
    for row in joined:
        a, b = row["meta"]["joined"]
        assert a != b and row["id"] == f"join:{a}+{b}"
    assert [brief_reject(r) for r in rejects] == ALL_REJECTS
    # same input and seed -> same rows
    again, _ = convert(HANSOL / "train_cp949.csv", join_pairs=3, seed=seed)
    assert [brief(r) for r in again] == [brief(r) for r in rows]


def test_join_pairs_is_capped_by_the_number_of_distinct_pairs(tmp_path):
    rows, _rejects = convert(HANSOL / "train_utf8.csv", join_pairs=50)
    joined = [r for r in rows if r["id"].startswith("join:")]
    assert len(joined) == 6  # 3 usable rows -> 3 x 2 ordered pairs
    assert len({r["id"] for r in joined}) == 6
    result = kodolly.convert(HANSOL / "train_utf8.csv", "hansol", tmp_path / "h.parquet", options={"join_pairs": 50})
    assert result.manifest_data["counts"]["written"] == 8 + 6
    assert result.manifest_data["converter"]["options"]["join_pairs"] == 50


@pytest.mark.parametrize("options", [{"answers": "some"}, {"join_pairs": -1}, {"join_pairs": "3"}, {"pairs": 3}])
def test_bad_options_are_config_errors(options):
    with pytest.raises(ConfigError):
        convert(HANSOL / "train_utf8.csv", **options)


def test_detect_knows_test_csv_but_not_other_korean_qa_files():
    from kodolly.converters.hansol import detect

    assert detect({"id": "TRAIN_000", "질문_1": "q", "질문_2": "q", "category": "c", "답변_1": "a"}) == 0.9
    assert detect({"id": "TEST_000", "질문": "면진장치가 뭐야?"}) == 0.6  # test.csv: ours, rejected no_answer
    assert detect({"id": "1", "질문": "q", "답변": "a"}) == 0.0  # someone else's question/answer file
    assert detect({"질문": "q"}) == 0.0


def test_train_csv_inside_the_competitions_open_zip(tmp_path):
    # as downloaded: open.zip holding open/train.csv; read in CSV ranges with their bytes, rows as the plain file's
    import json

    import pyarrow.parquet as pq

    from kodolly.corridor import execute, make_spec

    src = HANSOL.parent / "hansol_zip" / "open.zip"
    rows, rejects = convert(src)
    assert [brief(r) for r in rows] == ALL_ROWS
    assert [brief_reject(r) for r in rejects] == ALL_REJECTS
    assert rows[0]["meta"]["file"] == f"{src}!open/train.csv"
    result = execute(make_spec([src], "hansol", tmp_path / "out.parquet", filters=[], engine_options={"shard_bytes": 200}))
    kinds = [s["kind"] for s in result.manifest_data["shards"]]
    assert kinds == ["csv"] * (len(kinds) - 1) + ["combine"] and len(kinds) > 2, kinds  # combine: join_pairs (none asked)
    table = pq.read_table(tmp_path / "out.parquet")
    assert list(zip(table.column("id").to_pylist(), table.column("instruction").to_pylist())) == [r[:2] for r in ALL_ROWS]
    assert [(r["reason"], r["line"]) for r in map(json.loads, result.rejects.read_text().splitlines())] == [("missing_field:질문_2", 4), ("no_answer", 6)]
