"""The PII step: detection quality on a generated set, masking spans, each action, placeholders, engines."""

from __future__ import annotations

import collections
import json

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import kodolly
from kodolly.cli import cli
from kodolly.errors import ConfigError
from kodolly.filters import build_filters
from kodolly.filters.pii import KINDS, PiiFilter, find_pii, luhn_ok, mask_text, PLACEHOLDERS, registration_kind
from kodolly.rows import make_row, rows_to_table
from pii_corpus import make_corpus, rrn
from support import FIXTURES, convert_to_parquet

CHAT = FIXTURES / "pii" / "chat.jsonl"


# ------------------------------------------------------------------------------- detection quality


def score(corpus, **kwargs):
    tp, fp, fn = collections.Counter(), collections.Counter(), collections.Counter()
    for text, spans in corpus:
        got = {(h.start, h.end, h.kind) for h in find_pii(text, **kwargs)}
        want = set(spans)
        for s in got & want:
            tp[s[2]] += 1
        for s in got - want:
            fp[s[2]] += 1
        for s in want - got:
            fn[s[2]] += 1
    return {k: (tp[k] / max(1, tp[k] + fp[k]), tp[k] / max(1, tp[k] + fn[k]), tp[k]) for k in KINDS}


def test_precision_and_recall_per_kind_on_the_generated_set():
    corpus = make_corpus(6000, seed=7)
    result = score(corpus)
    for kind in ("rrn", "phone", "email"):
        precision, recall, found = result[kind]
        assert found > 300, kind
        assert precision >= 0.99, (kind, precision)
        assert recall >= 0.95, (kind, recall)
    for kind in ("frn", "ipv4", "card", "brn", "passport"):
        precision, recall, found = result[kind]
        assert found > 100 and precision >= 0.95 and recall >= 0.9, (kind, result[kind])


def test_the_generated_set_really_holds_hard_negatives():
    corpus = make_corpus(2000, seed=3)
    text = " ".join(t for t, _ in corpus)
    for marker in ("바코드 880", "주문번호 20", "원", "https://example.com/item/", "버전 ", "SKU010-", "대표번호 1588-"):
        assert marker in text, marker
    bad_rrns = [rrn(__import__("random").Random(i), valid=False) for i in range(200)]
    assert all(registration_kind(v) is None for v in bad_rrns)


@pytest.mark.parametrize(
    "text, masked",
    [
        ("주민번호 900101-1234568 입니다", "주민번호 <주민번호> 입니다"),
        ("주민번호 9001011234568 입니다", "주민번호 <주민번호> 입니다"),
        ("외국인 900101-5234561", "외국인 <외국인번호>"),
        ("번호는010-1234-5678이에요", "번호는<전화번호>이에요"),
        ("01012345678 로", "<전화번호> 로"),
        ("+82 10 1234 5678 / +82-10-1234-5678", "<전화번호> / <전화번호>"),
        ("사무실 02-123-4567, 031-1234-5678, (02) 123-4567", "사무실 <전화번호>, <전화번호>, <전화번호>"),
        ("메일 kim.minsu@mail.example.co.kr 로", "메일 <이메일> 로"),
        ("서버 10.0.0.12 에", "서버 <IP주소> 에"),
        ("카드 4111-1111-1111-1111", "카드 <카드번호>"),
        ("사업자 220-81-62517", "사업자 <사업자번호>"),
        ("여권번호는 M12345678 입니다", "여권번호는 <여권번호> 입니다"),
    ],
)
def test_masks_exactly_the_identifier(text, masked):
    assert mask_text(text, find_pii(text), PLACEHOLDERS["ko"]) == masked


@pytest.mark.parametrize(
    "text",
    [
        "900101-1234567 은 검증 번호가 틀립니다",  # fails the RRN check digit
        "날짜 2023-01-05 10:30, 가격 1,200,000원",
        "주문번호 20231201123456789",
        "바코드 8801234567893",  # EAN-13 with a valid barcode check digit
        "모델 SKU010-1234-5678",
        "품번 123-45-6789, 대표번호 1588-1234",
        "버전 1.2.3.4.5",
        "카드 4111-1111-1111-1112",  # fails Luhn
        "사업자 220-81-62518",  # fails the check digit
        "M12345678 은 제품 코드입니다",  # no 여권 nearby
        "https://example.com/item/123456?page=2",
    ],
)
def test_hard_negatives_are_left_alone(text):
    assert find_pii(text) == []


def test_format_only_flags_a_registration_number_with_a_wrong_check_digit():
    assert find_pii("900101-1234567") == []
    assert [h.kind for h in find_pii("900101-1234567", format_only=True)] == ["rrn"]
    assert find_pii("901301-1234567", format_only=True) == []  # no 13th month, even format-only


def test_luhn():
    assert luhn_ok("4111 1111 1111 1111") and not luhn_ok("4111 1111 1111 1112")


# ---------------------------------------------------------------------------------- placeholders


def test_placeholders_are_left_alone_and_masking_is_idempotent():
    flt = PiiFilter("mask")
    rows = [make_row(instruction="<NAME>님 전화 010-1234-5678", response="<전화번호> 로 연락 #@이름#", source="t", id="1")]
    flt.apply(rows)
    once = rows[0]["instruction"], rows[0]["response"]
    assert once == ("<NAME>님 전화 <전화번호>", "<전화번호> 로 연락 #@이름#")
    assert rows[0]["meta"]["pii"] == {"phone": 1}
    again = [make_row(instruction=once[0], response=once[1], source="t", id="1")]
    flt.apply(again)
    assert (again[0]["instruction"], again[0]["response"]) == once
    assert "pii" not in again[0]["meta"]


def test_normalize_tags_rewrites_known_tags_to_the_scheme():
    flt = PiiFilter("mask", placeholders="en", normalize_tags=True)
    rows = [make_row(instruction="<이름>님과 #@주소# 그리고 <UNKNOWN_TAG>", response="메일 a@b.co 로", source="t", id="1")]
    flt.apply(rows)
    assert rows[0]["instruction"] == "<NAME>님과 <ADDRESS> 그리고 <UNKNOWN_TAG>"
    assert rows[0]["response"] == "메일 <EMAIL> 로"


def test_bad_settings_say_what_is_allowed():
    with pytest.raises(ConfigError, match="action 'hide' is not one of mask, reject, report"):
        PiiFilter("hide")
    with pytest.raises(ConfigError, match="unknown kind"):
        build_filters({"pii": {"action": "mask", "kinds": ["ssn"]}})
    with pytest.raises(ConfigError, match="unknown setting"):
        build_filters({"pii": {"action": "mask", "colour": "red"}})


def test_the_chain_order_puts_pii_before_dedup():
    names = [f.name for f in build_filters({"pii": {"action": "mask"}})]
    assert names == ["content", "pii", "dedup", "split"]


# ------------------------------------------------------------------------- rows == Arrow tables


@pytest.mark.parametrize("action", ["mask", "reject", "report"])
def test_apply_table_equals_apply(action):
    corpus = make_corpus(300, seed=11)
    rows = [make_row(instruction=f"질문 {i}", context=t if i % 2 else "", response=t, source="t", id=str(i))
            for i, (t, _) in enumerate(corpus)]
    flt = PiiFilter(action)
    table = rows_to_table(rows)
    verdicts_t, table_t = flt.apply_table(table)
    verdicts_r = flt.apply([dict(r, meta=dict(r["meta"])) for r in rows])
    assert verdicts_t == verdicts_r
    kept = [i for i, v in enumerate(verdicts_r) if v is None]
    rows_again = [dict(r, meta=dict(r["meta"])) for r in rows]
    flt.apply(rows_again)
    expected = rows_to_table([rows_again[i] for i in kept]).to_pylist()
    assert [table_t.to_pylist()[i] for i in kept] == expected
    if action == "reject":
        assert sum(v is not None for v in verdicts_r) > 100


# ------------------------------------------------------------------------------ actions in a run


def test_mask_run_writes_masked_rows_and_a_report(tmp_path):
    rows, rejects, result = convert_to_parquet(tmp_path, [CHAT], "alpaca", filters=build_filters({"pii": {"action": "mask"}}))
    by_id = {r["id"]: r for r in rows}
    assert [r["instruction"] for r in rows] == [
        "주민등록번호 <주민번호> 인 고객의 가입일을 알려주세요.", "배송 문의", "<NAME>님의 주소를 정리해 주세요.",
        "이 번호가 맞나요?", "서울의 인구는?", "환불 요청",
    ]
    second = rows[1]
    assert second["context"] == "연락처: <전화번호>, 메일 <이메일>"
    assert second["response"] == "확인 후 <전화번호> 번으로 연락드리겠습니다."
    assert json.loads(second["meta"])["pii"] == {"email": 1, "phone": 2}
    assert rows[3]["response"] == "900101-1234567 은 검증 번호가 맞지 않아 주민등록번호가 아닙니다."
    # the two refund rows differ only in a phone number: masked, they are one row
    assert [r["reason"] for r in rejects] == ["duplicate_of:" + rows[5]["id"]]
    report = json.loads(result.report.read_text())
    assert report["pii"]["action"] == "mask"
    assert report["pii"]["hits"] == {"email": 1, "phone": 3, "rrn": 1}
    assert report["pii"]["rows_with_hits"] == 3
    assert report["pii"]["examples"][0]["instruction"] == "주민등록번호 <주민번호> 인 고객의 가입일을 알려주세요."
    manifest = json.loads(result.manifest.read_text())
    assert [f["settings"]["action"] for f in manifest["filters"] if f["name"] == "pii"] == ["mask"]
    assert len(by_id) == 6


def test_reject_run_drops_rows_with_reasons_and_the_tally_adds_up(tmp_path):
    rows, rejects, result = convert_to_parquet(tmp_path, [CHAT], "alpaca", filters=build_filters({"pii": {"action": "reject"}}))
    assert [r["instruction"] for r in rows] == ["<NAME>님의 주소를 정리해 주세요.", "이 번호가 맞나요?", "서울의 인구는?"]
    assert [(r["reason"], r["line"]) for r in rejects] == [
        ("pii_rrn", 1), ("pii_phone", 2), ("pii_phone", 6), ("pii_phone", 7),
    ]
    assert result.tally.by_reason == {"pii_rrn": 1, "pii_phone": 3}
    assert (result.tally.read, result.tally.written, result.tally.rejected) == (7, 3, 4)
    report = json.loads(result.report.read_text())
    assert report["pii"]["rejected"] == {"phone": 3, "rrn": 1}


def test_report_run_keeps_rows_unchanged_and_counts(tmp_path):
    rows, _rejects, result = convert_to_parquet(tmp_path, [CHAT], "alpaca", filters=build_filters({"pii": {"action": "report", "kinds": ["phone"]}}))
    assert rows[1]["context"] == "연락처: 010-1234-5678, 메일 hong@example.co.kr"
    assert json.loads(rows[1]["meta"])["pii"] == {"phone": 2}
    assert "pii" not in json.loads(rows[0]["meta"])  # rrn is not among the kinds asked for
    report = json.loads(result.report.read_text())
    assert report["pii"]["hits"] == {"phone": 4}


def test_the_same_output_whatever_the_workers(tmp_path, monkeypatch):
    import kodolly.corridor.jsonl as jsonl

    big = tmp_path / "big.jsonl"
    with big.open("w") as f:
        for i, (text, _) in enumerate(make_corpus(3000, seed=5)):
            f.write(json.dumps({"instruction": f"질문 {i}", "input": "", "output": text}, ensure_ascii=False) + "\n")
    monkeypatch.setattr(jsonl, "CHUNK_BYTES", 40_000)
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        out.mkdir()
        for action in ("mask", "reject"):
            result = kodolly.convert([big], "alpaca", out / f"{action}.parquet", workers=workers,
                                     engine="inline" if workers == 1 else "processes",
                                     filters=build_filters({"pii": {"action": action}}))
            assert result.tally.balanced
        outputs.append([(out / n).read_bytes() for n in ("mask.parquet", "mask.rejects.jsonl", "reject.parquet", "reject.rejects.jsonl")])
    assert outputs[0] == outputs[1]
    masked = pq.read_table(tmp_path / "w1" / "mask.parquet", columns=["response"]).column(0).to_pylist()
    assert any("<전화번호>" in t for t in masked) and not any("010-" in t and find_pii(t) for t in masked)


# ----------------------------------------------------------------------------------- CLI, card, push


def test_cli_pii_option_and_run_config(tmp_path):
    out = tmp_path / "o.parquet"
    res = CliRunner().invoke(cli, ["convert", str(CHAT), "--from", "alpaca", "-o", str(out), "--pii", "mask", "--pii-placeholders", "en"])
    assert res.exit_code == 0, res.output
    assert pq.read_table(out).column("instruction")[0].as_py() == "주민등록번호 <RRN> 인 고객의 가입일을 알려주세요."
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[[inputs]]\nfrom = "alpaca"\npath = "{CHAT}"\n[output]\npath = "{tmp_path / "c.parquet"}"\n[pii]\naction = "reject"\n')
    res = CliRunner().invoke(cli, ["convert", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "pii_phone" in res.output
    assert pq.read_table(tmp_path / "c.parquet").num_rows == 3


def test_card_says_which_pii_handling_ran(tmp_path):

    out = tmp_path / "o.parquet"
    kodolly.convert([CHAT], "alpaca", out, filters=build_filters({"pii": {"action": "mask"}}))
    folder = tmp_path / "hub"
    res = CliRunner().invoke(cli, ["publish", str(out), "-o", str(folder)])
    assert res.exit_code == 0, res.output
    card = (folder / "README.md").read_text()
    assert "- Personal data: `mask` (rrn, frn, phone, email, ipv4, card, brn, passport; placeholders `ko`)" in card
    plain = tmp_path / "p.parquet"
    kodolly.convert([CHAT], "alpaca", plain)
    res = CliRunner().invoke(cli, ["publish", str(plain), "-o", str(tmp_path / "hub2")])
    assert "- Personal data: no PII step ran on these rows." in (tmp_path / "hub2" / "README.md").read_text()


def test_pii_warning_for_public_push_without_a_pii_step(tmp_path):
    from kodolly.hub.push import pii_warning

    for name, filters in (("with", build_filters({"pii": {"action": "mask"}})), ("without", build_filters())):
        out = tmp_path / f"{name}.parquet"
        kodolly.convert([CHAT], "alpaca", out, filters=filters)
        res = CliRunner().invoke(cli, ["publish", str(out), "-o", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
    assert pii_warning(tmp_path / "with") is None
    assert pii_warning(tmp_path / "without").startswith("public push: the manifest shows no personal-data step")
