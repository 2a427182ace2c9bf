"""kodolly.corridor.csv_ranges: CSV ranges read exactly as the sequential reader reads the whole file,
whatever the cut points (a newline inside quotes is no record end), in UTF-8, UTF-8 with BOM and cp949;
where the file could read differently in pieces, the rest is one sequential tail."""

from __future__ import annotations

from pathlib import Path

import pytest

from kodolly.corridor import csv_ranges, execute, make_spec, shards
from kodolly.io.readers import read_records, sniff
from kodolly.io.sources import expand_inputs

HEADER = "id,질문_1,질문_2,category,답변_1,답변_2,답변_3,답변_4,답변_5"
ROWS = [
    'T0,면진장치가 뭐야?,"면진장치에 대해, 설명해줘.",건축구조,"첫 줄\n둘째 줄","""인용"" 답",,,',
    "",  # a blank line: no record
    'T1,방청 페인트는?,종류는?,마감재,,광명단 페인트입니다.,,,\r',  # CRLF
    'T2,"여러\r\n줄의\n질문",,마감하자,"""","답 ""둘""\n끝",,,',
    "T3,열이 모자란 행,,",  # wrong number of columns: one reject
    "T4,녹 자국?,원인?,마감하자,철재의 녹입니다.,,,,",
    '"T5","따옴표 ""가득""","",누수,"\n","\n\n",,,',
]


def _text(final_newline: bool = True) -> str:
    return "\n".join([HEADER, *ROWS * 3]) + ("\n" if final_newline else "")


def _write(path: Path, text: str, encoding: str) -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _pieces(inp, chunk_bytes: int, max_records: int | None, encoding: str) -> list:
    assert sniff(inp).encoding == encoding
    return list(csv_ranges.cut_csv_ranges(inp, inp.open(), max_bytes=chunk_bytes, max_records=max_records, encoding=encoding))


def _read_pieces(inp, pieces, encoding: str) -> list:
    got = []
    for piece in pieces:
        if isinstance(piece, csv_ranges.Tail):
            got += [(repr(r), loc) for r, loc in read_records(inp) if loc.index >= piece.index]
        else:
            records = list(csv_ranges.iter_csv_range(piece, inp.name, encoding, ","))
            assert sum(1 for _ in records) == piece.records or piece is pieces[-1]
            got += [(repr(r), loc) for r, loc in records]
    return got


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949"])
@pytest.mark.parametrize("final_newline", [True, False])
@pytest.mark.parametrize("max_records", [None, 1, 2])
def test_ranges_at_every_cut_yield_what_the_reader_yields(tmp_path, encoding, final_newline, max_records):
    path = _write(tmp_path / "train.csv", _text(final_newline), encoding)
    inp = expand_inputs([path])[0]
    expected = [(repr(r), loc) for r, loc in read_records(inp)]
    # T1 "starts" on the blank line 4 before it, T2 on line 6 (T1 ends with \r\n), T3 on 10 (T2 spans 6-9)
    assert len(expected) == 18 and [loc.line for _r, loc in expected[:4]] == [2, 4, 6, 10]
    data = path.read_bytes()
    for chunk_bytes in range(1, len(data) + 2, 5):
        pieces = _pieces(inp, chunk_bytes, max_records, encoding)
        assert all(isinstance(p, csv_ranges.Range) for p in pieces)
        assert b"".join(p.read() for p in pieces) == data  # the ranges tile the file
        assert _read_pieces(inp, pieces, encoding) == expected, chunk_bytes


def test_a_cut_right_after_a_quoted_newline_is_not_made(tmp_path):
    text = HEADER + "\n" + 'Q0,"질문\n",둘,분류,"답\n""\n",,,,\n' + "Q1,질문,둘,분류,답,,,,\n"
    path = _write(tmp_path / "train.csv", text, "cp949")
    inp = expand_inputs([path])[0]
    data = path.read_bytes()
    inside = data.index("질문\n".encode("cp949")) + len("질문\n".encode("cp949"))  # a block ends just after the quoted newline
    pieces = _pieces(inp, inside, 1, "cp949")
    assert all(p.offset + p.length != inside for p in pieces)
    ends = {p.offset + p.length for p in pieces}
    assert ends == {data.index(b"Q0"), data.index(b"Q1"), len(data)}  # header, Q0, Q1
    assert _read_pieces(inp, pieces, "cp949") == [(repr(r), loc) for r, loc in read_records(inp)]


@pytest.mark.parametrize(
    "trouble",
    [
        b'T9,5" nails,,x,y,,,,\n',  # a quote inside an unquoted field: the reader takes it as a character
        b'T9,"closed"then more,,x,y,,,,\n',  # text after a closing quote
        b"T9,lone\rcarriage,,x,y,,,,\n",  # a lone \r ends a record
        b"T9,\xff\xfe,,x,y,,,,\n",  # does not decode
    ],
)
def test_trouble_ends_the_cutting_with_a_sequential_tail(tmp_path, monkeypatch, trouble):
    # the reader decodes 8 KiB ahead of the records it gives: the tail starts more than that before the trouble
    monkeypatch.setattr(csv_ranges, "LOOKAHEAD", 16 << 10)
    good = "".join(f"G{n},질문 {n},,분류,답 {n},,,,\n" for n in range(700)).encode("utf-8")
    path = tmp_path / "train.csv"
    path.write_bytes(HEADER.encode() + b"\n" + good + trouble + good.replace(b"G", b"H") + b'H99,"a\n""b",,c,d,,,,\n')
    inp = expand_inputs([path])[0]
    pieces = _pieces(inp, 4096, None, "utf-8")
    tail = pieces[-1]
    assert isinstance(tail, csv_ranges.Tail) and len(pieces) >= 2
    assert all(isinstance(p, csv_ranges.Range) for p in pieces[:-1])
    assert pieces[-2].offset + pieces[-2].length == tail.offset and tail.offset + (16 << 10) <= path.read_bytes().index(b"T9")
    assert _read_pieces(inp, pieces, "utf-8") == [(repr(r), loc) for r, loc in read_records(inp)]


def _outputs(src: Path, out: Path, engine: str, workers: int, **kwargs) -> dict[str, bytes]:
    out.parent.mkdir()
    result = execute(make_spec([src], "hansol", out, engine=engine, workers=workers, **kwargs))
    kinds = [s["kind"] for s in result.manifest_data["shards"]]
    files = {p.name: p.read_bytes() for p in sorted(out.parent.iterdir()) if p.suffix != ".html" and not p.name.endswith(".manifest.json")}
    return files | {"kinds": " ".join(sorted(set(kinds))).encode(), "n": str(kinds.count("csv")).encode()}


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp949"])
@pytest.mark.parametrize("trouble", [b"", b'T9,5" nails,,x,y,,,,\n'])
def test_csv_shards_give_the_bytes_of_one_sequential_read(tmp_path, monkeypatch, encoding, trouble):
    monkeypatch.setattr(csv_ranges, "LOOKAHEAD", 64)
    path = _write(tmp_path / "train.csv", _text(), encoding)
    path.write_bytes(path.read_bytes() + trouble + _text().split("\n", 1)[1].replace("T", "U").encode(encoding))
    options = {"options": {"join_pairs": 7, "seed": 3}, "engine_options": {"shard_bytes": 96}}
    runs = {(engine, workers): _outputs(path, tmp_path / f"{engine}{workers}" / "out.parquet", engine, workers, **options)
            for engine, workers in [("inline", 1), ("processes", 1), ("processes", 2)]}
    monkeypatch.setattr(shards, "csv_splittable", lambda inp, encoding: False)  # main's way: the input as one shard
    whole = _outputs(path, tmp_path / "whole" / "out.parquet", "inline", 1, **options)
    assert whole["kinds"] == b"combine input"
    for files in runs.values():
        assert int(files.pop("n")) > 5 and files.pop("kinds") == (b"combine csv input" if trouble else b"combine csv")
        assert files == {k: v for k, v in whole.items() if k not in ("n", "kinds")}
    assert whole["out.rejects.jsonl"].count(b"bad_csv_row") == 6


def _packed(tmp_path: Path, data: bytes, container: str) -> Path:
    """``data`` as ``train.csv`` in a zip (a competition's ``open.zip``) or as ``train.csv.gz``."""
    import gzip
    import zipfile

    if container == "gz":
        path = tmp_path / "train.csv.gz"
        path.write_bytes(gzip.compress(data))
        return path
    path = tmp_path / "open.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("open/train.csv", data)
    return path


@pytest.mark.parametrize("container", ["zip", "gz"])
@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp949"])
def test_a_streams_ranges_carry_their_bytes_and_read_as_the_reader_reads(tmp_path, container, encoding):
    src = _packed(tmp_path, _text().encode(encoding), container)
    (inp,) = expand_inputs([src])
    pieces = _pieces(inp, 40, None, encoding)
    assert len(pieces) > 5 and all(isinstance(p, csv_ranges.Range) and p.path is None and p.data is not None for p in pieces)
    assert all(p.head == _text().encode(encoding)[: p.header] for p in pieces) and pieces[0].header > 0
    assert _read_pieces(inp, pieces, encoding) == [(repr(r), loc) for r, loc in read_records(inp)]


@pytest.mark.parametrize("container", ["zip", "gz"])
@pytest.mark.parametrize("trouble", [b"", b'T9,5" nails,,x,y,,,,\n'])
def test_a_csv_in_a_zip_or_gzip_gives_the_bytes_of_one_sequential_read(tmp_path, monkeypatch, container, trouble):
    monkeypatch.setattr(csv_ranges, "LOOKAHEAD", 64)
    data = _text().encode("cp949") + trouble + _text().split("\n", 1)[1].replace("T", "U").encode("cp949")
    src = _packed(tmp_path, data, container)
    options = {"options": {"join_pairs": 7, "seed": 3}, "engine_options": {"shard_bytes": 96}}
    runs = {(engine, workers): _outputs(src, tmp_path / f"{engine}{workers}" / "out.parquet", engine, workers, **options)
            for engine, workers in [("inline", 1), ("processes", 2)]}
    monkeypatch.setattr(shards, "csv_splittable", lambda inp, encoding: False)  # the input as one shard
    whole = _outputs(src, tmp_path / "whole" / "out.parquet", "inline", 1, **options)
    for files in runs.values():
        assert int(files.pop("n")) > 5 and files.pop("kinds") == (b"combine csv input" if trouble else b"combine csv")
        assert files == {k: v for k, v in whole.items() if k not in ("n", "kinds")}
    assert whole["out.rejects.jsonl"].count(b"bad_csv_row") == 6


def test_a_gzip_stopped_by_the_decompression_budget_ends_in_the_tail(tmp_path, monkeypatch):
    # the planner's read stops part-way: the rest is the tail, which stops where a whole read stops (one reject)
    from kodolly.io.limits import Limits

    monkeypatch.setattr(csv_ranges, "LOOKAHEAD", 64)
    rows = "".join(f"T{n},질문 {n} 입니다,,분류,답 {n} {'가나다라' * (n % 7)},,,,\n" for n in range(3000))
    data = (HEADER + "\n" + rows).encode("utf-8")
    src = _packed(tmp_path, data, "gz")
    budget = int(0.6 * len(data) / src.stat().st_size)
    limits = Limits(max_expansion=budget, expansion_floor=0)
    runs = [_outputs(src, tmp_path / f"{engine}" / "out.parquet", engine, workers, limits=limits, engine_options={"shard_bytes": 4096})
            for engine, workers in [("inline", 1), ("processes", 2)]]
    monkeypatch.setattr(shards, "csv_splittable", lambda inp, encoding: False)
    whole = _outputs(src, tmp_path / "whole" / "out.parquet", "inline", 1, limits=limits)
    assert whole["out.rejects.jsonl"].count(b"decompression_bomb") == 1
    for files in runs:
        assert int(files.pop("n")) > 2 and files.pop("kinds") == b"combine csv input"
        assert files == {k: v for k, v in whole.items() if k not in ("n", "kinds")}
