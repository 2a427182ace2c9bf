"""Item ranges inside a zip member (or a gzip file): the planner reads the member once and hands each
range its bytes (``json_items.plan_range_bytes``); the worker converts a range column-wise
(``columnar.convert_columnar_spans``) or record by record. Every cut, engine and worker count gives the
bytes the member gives as one shard read whole (the record path), rejects and report included.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pytest

import kodolly
from kodolly.corridor import columnar, execute, make_spec, shards
from kodolly.io.limits import Limits
from support import output_files


def _record(n: int) -> dict:
    rec = {"data_id": f"id-{n:05d}", "data_category": {"main": "문어체" if n % 2 else "구어체", "middle": ("사회", "자연", "보건")[n % 3]},
           "question_type": "설명형", "question_count": 1, "question": f"질문 {n}: 지방자치제도의 장점은 무엇인가요?"}
    if n % 3 == 2:  # RM: five ranked answers (one blank, ranks out of order)
        for k, rank in enumerate((3, 1, 5, 2, 4), 1):
            rec[f"answer{k:02d}"] = {"answer_count": 1, "ranking": rank, "contents": "  " if k == 5 else f"답변 {n}-{k}\n\n\n둘째 줄  입니다. "}
    else:
        rec["answer"] = {"answer_count": 1, "contents": f"대답 {n}은 이렇습니다.\r\n자세히 설명하면 ..."}
    if n % 17 == 5:
        rec["answer"] = {"answer_count": 1, "contents": " " + rec["question"].replace(" ", "  ") + " \n"}  # answer_equals_question
        rec.pop("answer01", None)
    if n % 29 == 7:
        rec["question"] = " \u200b "  # empty once normalised
    if n % 31 == 3:
        rec["data_id"] = "  "  # the derived id
    if n % 3 == 2 and n % 19 == 4:  # equal ranks: answerNN order
        for k in range(2, 6):
            rec[f"answer{k:02d}"]["ranking"] = 1
    if n % 400 == 11:  # a meta text orjson escapes (its range takes the meta record by record)
        rec["question_type"] = '설명"형\\\t'
    if n % 37 == 1:
        rec["question"] = "\u1100\u1161 NFD 질문 " + str(n)  # decomposed Hangul
    return rec


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _envelope(records: list, indent: int | None = None) -> bytes:
    return json.dumps({"dataset_info": {"name": "t"}, "data_info": records}, ensure_ascii=False, indent=indent).encode()


def _files(out: Path) -> dict[str, bytes]:
    return output_files(out)


def _run(tmp: Path, tag: str, src, *, engine="inline", workers=1, shard_bytes=None, limits=None, converter="aihub"):
    out = tmp / tag / "out.parquet"
    out.parent.mkdir()
    options = {"shard_bytes": shard_bytes} if shard_bytes else None
    spec = make_spec([src], converter, out, engine=engine, workers=workers, engine_options=options, limits=limits)
    result = execute(spec)
    assert result.tally.balanced
    return _files(out), result


def _whole(tmp: Path, src, monkeypatch, **kwargs):
    """The output with every member one shard read whole by the record path (as before item ranges)."""
    with monkeypatch.context() as m:
        m.setattr(shards.json_items, "plan_range_bytes", lambda *a, **k: iter(()))
        files, result = _run(tmp, "whole", src, **kwargs)
    assert {s["kind"] for s in result.manifest_data["shards"]} == {"input"}
    return files


@pytest.fixture()
def aihub_zip(tmp_path):
    records = [_record(n) for n in range(1500)]
    return _zip(tmp_path / "set.zip", {
        "라벨/SFT_RM_001.json": _envelope(records[:900]),
        "라벨/SFT_RM_002.json": _envelope(records[900:], indent=2),  # indented, as AI Hub ships them
        "라벨/PPO.json": _envelope([{"data_id": "p1", "question": "질문만 있습니다"}, {"data_id": "p2", "question": "또"}]),
        "라벨/empty.json": _envelope([]),
    })


def test_ranges_inside_members_give_the_whole_member_bytes_on_every_engine(aihub_zip, tmp_path, monkeypatch):
    whole = _whole(tmp_path, aihub_zip, monkeypatch)
    spans = []
    real = columnar.convert_columnar_spans

    def spy(shard, *args):
        chunk = real(shard, *args)
        spans.append(chunk is not None)
        return chunk

    monkeypatch.setattr(columnar, "convert_columnar_spans", spy)
    for tag, engine, workers, shard_bytes in [("default", "inline", 1, None), ("tiny-inline", "inline", 1, 20_000),
                                              ("tiny-w1", "processes", 1, 20_000), ("tiny-w2", "processes", 2, 20_000)]:
        files, result = _run(tmp_path, tag, aihub_zip, engine=engine, workers=workers, shard_bytes=shard_bytes)
        assert files == whole, tag
        kinds = [(s["input"].rsplit("!", 1)[1], s["kind"]) for s in result.manifest_data["shards"]]
        assert ("라벨/empty.json", "input") in kinds  # no item: one shard (its no_records reject)
        if shard_bytes:
            assert kinds.count(("라벨/SFT_RM_001.json", "items")) > 5 and kinds.count(("라벨/SFT_RM_002.json", "items")) > 5
    # the columnar path ran on every range but the PPO member's (inline runs; worker processes' calls are not seen here)
    assert spans.count(False) == 2 and spans.count(True) > 10, spans
    rejects = [json.loads(line) for line in whole["out.rejects.jsonl"].splitlines()]
    reasons = {r["reason"] for r in rejects}
    assert {"answer_equals_question", "empty_field:instruction", "no_answer", "no_records"} <= reasons


def test_the_record_path_on_the_range_bytes_gives_the_same(aihub_zip, tmp_path, monkeypatch):
    whole = _whole(tmp_path, aihub_zip, monkeypatch)
    monkeypatch.setattr(columnar, "convert_columnar_spans", lambda *a: None)
    files, _ = _run(tmp_path, "records", aihub_zip, shard_bytes=20_000)
    assert files == whole


def test_a_member_too_small_to_cut_is_one_range(tmp_path, monkeypatch):
    src = _zip(tmp_path / "small.zip", {"a.json": _envelope([_record(n) for n in range(3)])})
    whole = _whole(tmp_path, src, monkeypatch)
    files, result = _run(tmp_path, "small", src)
    assert files == whole
    [shard] = result.manifest_data["shards"]
    assert (shard["kind"], shard["first_record"], shard["records"]) == ("items", 0, 3)
    rows = kodolly.read_rows(tmp_path / "small" / "out.parquet").to_pylist()
    assert [r["id"] for r in rows] == ["id-00000", "id-00001", "id-00002"]
    assert json.loads(rows[2]["meta"])["ranked_answers"][0] == {"rank": 1, "text": "답변 2-2\n\n둘째 줄 입니다."}


def test_a_broken_member_stops_the_run_with_one_line_naming_it(tmp_path):
    data = _envelope([_record(n) for n in range(3000)])
    src = tmp_path / "broken.zip"
    with zipfile.ZipFile(src, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("a.json", data)
    raw = bytearray(src.read_bytes())
    raw[raw.index(data[-200:]) + 5] ^= 0x01  # near the end: several ranges are planned before the bad CRC shows
    src.write_bytes(bytes(raw))
    for engine in ("inline", "processes"):
        out = tmp_path / engine
        out.mkdir()
        with pytest.raises(kodolly.InputError, match=r"broken\.zip!a\.json: corrupt compressed data \(Bad CRC-32"):
            execute(make_spec([src], "aihub", out / "o.parquet", engine=engine, engine_options={"shard_bytes": 20_000}))
        assert list(out.iterdir()) == []


@pytest.mark.parametrize("case", ["stopped-member", "item-over-the-limit"])
def test_where_the_plan_cannot_go_on_the_rest_is_one_shard_with_the_record_path(case, tmp_path, monkeypatch):
    """A member stopped by the decompression budget part-way (the records before it kept, one reject),
    or an item over the record limit (it would be buffered whole): the rest of the member from the first
    item not planned is one shard read again by the worker, and the output is the whole member's."""
    records = [_record(n) for n in range(12_000)]
    records[9000]["answer"] = {"answer_count": 1, "contents": "아주 긴 대답 " * 180_000}  # 3.2 MB: more than a range holds
    src = _zip(tmp_path / "set.zip", {"a.json": _envelope(records)})
    with zipfile.ZipFile(src) as archive:
        (info,) = archive.infolist()
    if case == "stopped-member":  # stopped at 60% of the member (after the first 1 MiB blocks)
        limits = Limits(max_expansion=int(0.6 * info.file_size / info.compress_size), expansion_floor=0)
    else:
        limits = Limits(max_record_bytes=3000)
    whole = _whole(tmp_path, src, monkeypatch, limits=limits)
    for engine, workers in (("inline", 1), ("processes", 2)):
        files, result = _run(tmp_path, f"rest-{engine}", src, engine=engine, workers=workers, shard_bytes=50_000, limits=limits)
        assert files == whole
        plan = result.manifest_data["shards"]
        assert plan[-1].get("rest") and len(plan) > 10
        assert result.manifest_data["inputs"] == _run(tmp_path, f"again-{engine}", src, limits=limits)[1].manifest_data["inputs"]
    reasons = [json.loads(line)["reason"] for line in whole["out.rejects.jsonl"].splitlines()]
    assert ("decompression_bomb" if case == "stopped-member" else "record_too_large") in reasons


def test_a_gzip_json_array_is_read_decompressed_in_ranges(tmp_path):
    """A ``.json.gz`` JSON array was planned as ranges of the plain file and re-read raw (every record
    lost as bad_encoding); it is read as a stream, like a zip member."""
    rows = [{"instruction": f"질문 {i}", "output": f"답 {i}"} for i in range(3000)]
    plain = tmp_path / "a.json"
    plain.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    packed = tmp_path / "b.json.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    _files_plain, base = _run(tmp_path, "plain", plain, converter="alpaca", shard_bytes=4096)
    files, result = _run(tmp_path, "gz", packed, converter="alpaca", shard_bytes=4096, engine="processes", workers=2)
    assert result.tally.written == base.tally.written == 3000
    got = kodolly.read_rows(tmp_path / "gz" / "out.parquet").to_pylist()
    assert [r["instruction"] for r in got] == [f"질문 {i}" for i in range(3000)]
    assert len(result.manifest_data["shards"]) > 5


def test_same_texts_decides_as_the_layout_check_does():
    """The column-wise ``same`` check (candidates from heads) gives what ``Layout.row``'s does."""
    import pyarrow as pa

    from kodolly.converters import Reject
    from kodolly.io.readers import Location
    from kodolly.layouts import shipped_layout
    from kodolly.normalize import normalize_text

    sft = shipped_layout("aihub-sft")
    layout, ctx = sft.convert, sft.context()

    def rejected(question: str, answer: str) -> bool:  # the record path's check (Layout.row)
        out = layout.row([{"question": question, "answer": {"contents": answer}}], "", Location("f", 0), ctx)
        return isinstance(out, Reject) and out.reason == "answer_equals_question"

    questions = ["가나다 라마바 사아자 차카타 파하", "짧은 질문", "가나다 라마바 사아자 차카타 파하", "", "ab", "같은 글"]
    answers = ["가나다\n\n라마바  사아자\t차카타 파하", "짧은  질문 \n", "가" + " \n\t" * 40 + "나다 라마바 사아자 차카타 파하",
               "", "a b c", "다른 글"]
    a = pa.array([normalize_text(t) for t in questions])
    b = pa.array([normalize_text(t) for t in answers])
    expected = [i for i, (q, r) in enumerate(zip(questions, answers)) if q and r and rejected(q, r)]
    assert expected == [0, 1, 2]
    assert columnar.same_texts(a, b).tolist() == expected


def test_korquad1_in_a_zip_is_cut_too_and_gives_the_plain_file_bytes(tmp_path):
    """A KorQuAD 1.0 file in a zip: ranges of articles with their bytes, through the nested columnar path."""
    from support import FIXTURES

    plain = FIXTURES / "korquad1" / "KorQuAD_v1.0_dev_sample.json"
    src = _zip(tmp_path / "k.zip", {"KorQuAD_v1.0_dev_sample.json": plain.read_bytes()})
    base, _ = _run(tmp_path, "plain", plain, converter="korquad1", shard_bytes=500)
    for engine, workers in (("inline", 1), ("processes", 2)):
        files, result = _run(tmp_path, f"zip-{engine}", src, converter="korquad1", shard_bytes=500, engine=engine, workers=workers)
        assert [s["kind"] for s in result.manifest_data["shards"]].count("items") > 1
        plain_rows = kodolly.read_rows(tmp_path / "plain" / "out.parquet").to_pylist()
        zip_rows = kodolly.read_rows(tmp_path / f"zip-{engine}" / "out.parquet").to_pylist()
        strip = lambda rows: [{k: v for k, v in r.items() if k != "meta"} for r in rows]  # noqa: E731 - meta names the file
        assert strip(zip_rows) == strip(plain_rows) and len(zip_rows) > 3


def test_worker_processes_get_members_planned_by_a_reader_process(aihub_zip, tmp_path, monkeypatch):
    """With worker processes (the processes engine) a zip member is inflated and cut by a reader process,
    not the driver: every range comes as a spooled file, the output and the manifest's inputs (sizes,
    hashes) are those of the whole member read by the record path, and the spool is gone at the end."""
    import os

    whole = _whole(tmp_path, aihub_zip, monkeypatch)
    inline_files, inline = _run(tmp_path, "inline", aihub_zip, shard_bytes=20_000)
    assert inline_files == whole
    in_driver = []
    real = shards.json_items.plan_range_bytes

    def spy(*args, **kwargs):
        in_driver.append(os.getpid())  # a reader process appends to its own copy
        return real(*args, **kwargs)

    monkeypatch.setattr(shards.json_items, "plan_range_bytes", spy)
    spools = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    for workers in (1, 2):
        files, result = _run(tmp_path, f"reader-w{workers}", aihub_zip, engine="processes", workers=workers, shard_bytes=20_000)
        assert files == whole
        assert result.manifest_data["inputs"] == inline.manifest_data["inputs"]
        assert result.manifest_data["shards"] == inline.manifest_data["shards"]
        assert sum(s["kind"] == "items" for s in result.manifest_data["shards"]) > 10  # each member cut across many ranges
    assert in_driver == []
    if spools or os.path.isdir("/dev/shm"):
        assert {n for n in os.listdir("/dev/shm") if n.startswith(f"kodolly-{os.getpid()}-")} <= spools


def test_a_reader_process_spools_a_few_ranges_ahead_and_lets_each_go(aihub_zip):
    """The reader stays at most AHEAD ranges beyond those taken; a released range's file is removed,
    the spool with the rest at close; the ranges are the driver's own plan, with the same bytes."""
    import os

    from kodolly.corridor import member_reader
    from kodolly.io import json_items
    from kodolly.io.sources import expand_inputs

    inp = next(i for i in expand_inputs([aihub_zip]) if i.name.endswith("SFT_RM_001.json"))
    paths = json_items.parse_record_paths(["data_info.item"])
    expected = list(shards.stream_item_shards(inp, paths, 0, 0, 0, 0, "utf-8", 20_000))
    digest = inp.content_hash()
    reader = member_reader.MemberReader()
    got = []
    try:
        for shard in reader.shards(inp, paths, 0, 0, 0, 0, "utf-8", 20_000):
            got.append(shard)
            spooled = set(os.listdir(reader.dir))
            assert len(spooled) <= len(got) + member_reader.AHEAD + 1
            assert shard.spooled and shard.data is None and shard.range_bytes() == expected[len(got) - 1].data
            if len(got) % 2:
                reader.release(shard.seq)
                assert os.path.basename(shard.path) not in os.listdir(reader.dir)
        assert [(s.items, s.plain) for s in got] == [(s.items, s.plain) for s in expected] and len(got) > 10
        assert all((a.seps == b.seps).all() for a, b in zip(got, expected))
        assert (inp.bytes_read, inp.content_hash()) == (inp.size, digest)
    finally:
        spool = reader.dir
        reader.close()
    assert not os.path.exists(spool)


@pytest.mark.parametrize("where", ["rm-answer", "sft-answer", "rm-answer-of-an-sft-record", "category"])
def test_invalid_utf8_in_any_text_of_a_range_gives_the_record_path_bytes(where, tmp_path, monkeypatch):
    """A byte that is not UTF-8 in a text the converter validates itself (an RM record's ranked answer,
    an SFT answer, an answerNN beside an SFT answer) or in one it leaves to the range's validation (a
    category): the range goes record by record and the output is the whole member's."""
    records = [_record(n) for n in range(60)]
    at = {"rm-answer": 8, "sft-answer": 9, "rm-answer-of-an-sft-record": 10, "category": 11}[where]
    marker = "@@BAD@@"
    if where == "rm-answer":
        records[at]["answer02"]["contents"] = f"답변 {marker} 끝"
    elif where == "sft-answer":
        records[at]["answer"]["contents"] = f"대답 {marker} 끝"
    elif where == "rm-answer-of-an-sft-record":
        records[at]["answer01"] = {"answer_count": 1, "ranking": 1, "contents": f"답변 {marker}"}
    else:
        records[at]["data_category"]["main"] = f"문어체{marker}"
    data = _envelope(records).replace(marker.encode(), b"\xff\xfe")
    src = _zip(tmp_path / "bad.zip", {"a.json": data})
    whole = _whole(tmp_path, src, monkeypatch)
    spans = []
    real = columnar.convert_columnar_spans

    def spy(shard, *args):
        chunk = real(shard, *args)
        spans.append(chunk is not None)
        return chunk

    monkeypatch.setattr(columnar, "convert_columnar_spans", spy)
    files, _ = _run(tmp_path, "ranges", src, shard_bytes=4_000)
    assert files == whole
    assert False in spans and True in spans  # the range with the bad byte went record by record, the others not
    assert "bad_encoding" in {json.loads(line)["reason"] for line in whole["out.rejects.jsonl"].splitlines()}
