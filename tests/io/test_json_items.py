"""The JSON item splitter: exact spans on tricky texts, the same at every block size, ranges = items."""

from __future__ import annotations

import io
import json
import random

import orjson
import pytest

from kodolly.io import json_items
from kodolly.io.json_items import ItemRange, JsonShapeError, Limits, items_of_bytes, iter_range, parse_record_paths, plan_ranges

TRICKY = b'{"k\\"": [1], "data" : [ {"a":"\\\\\\"]},"}, "\\\\", [1,[2]] , NaN, 3 ], "after": {"data": [9]}}'


def _values(data: bytes, paths=(("data",),), limits: Limits = Limits()) -> list:
    return [item.data for item in items_of_bytes(data, paths, limits)]


def test_items_of_an_envelope_with_escapes_and_brackets_in_strings():
    items = items_of_bytes(TRICKY, [("data",)])
    assert [i.index for i in items] == [0, 1, 2, 3, 4]
    assert [i.data for i in items] == [b' {"a":"\\\\\\"]},"}', b' "\\\\"', b" [1,[2]] ", b" NaN", b" 3 "]
    assert all(TRICKY[i.start : i.end] == i.data for i in items)


@pytest.mark.parametrize("block", [1, 2, 3, 5, 8, 64])
def test_block_size_does_not_change_the_items(monkeypatch, block):
    monkeypatch.setattr(json_items, "BLOCK_BYTES", block)
    assert _values(TRICKY) == [b' {"a":"\\\\\\"]},"}', b' "\\\\"', b" [1,[2]] ", b" NaN", b" 3 "]


def test_empty_arrays_trailing_comma_and_empty_items():
    assert _values(b"[]", ()) == []
    assert _values(b" [ \n ] ", ()) == []
    assert _values(b"[1,]", ()) == [b"1"]  # a trailing comma is no item
    assert _values(b"[1,,2]", ()) == [b"1", b"", b"2"]  # an empty item between commas is one (bad) item


def test_truncated_array_keeps_the_rest_as_its_last_item():
    assert _values(b'[1, {"a": 2', ()) == [b"1", b' {"a": 2']


def test_nested_key_paths_and_several_paths_in_file_order():
    data = b'{"x": [9], "a": {"q": 1, "b": [7, 8]}, "data": [1], "b": [5]}'
    assert _values(data, [("a", "b"), ("data",)]) == [b"7", b" 8", b"1"]
    assert _values(b'{"data": "not", "data": {"item": 1}, "data": [3]}') == [b"3"]
    assert parse_record_paths(["data.item", "a.b.item", "item"]) == (("data",), ("a", "b"), ())


def test_not_an_array_or_object():
    with pytest.raises(JsonShapeError):
        items_of_bytes(b'  , [1]', ())


def test_depth_and_size_limits_flag_items():
    items = items_of_bytes(b'[1, [2, [3, [4]]], {"a": {"b": 1}}, "' + b"x" * 100 + b'"]', (), Limits(max_depth=2, max_record_bytes=50, head_bytes=10))
    assert [(i.too_deep, i.too_large) for i in items] == [(False, False), (True, False), (False, False), (False, True)]
    assert items[3].data == b' "xxxxxxxx' and items[3].end - items[3].start == 103


def _random_value(rng: random.Random, depth: int = 0):
    alphabet = ["a", "|", '\\"', '"', "\\", ",", "[", "]", "{", "}", ":", " ", "가", "\n"]
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
    r = rng.random()
    if depth > 3 or r < 0.3:
        return rng.choice([1, 2.5, None, True, text])
    if r < 0.65:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {text: _random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def test_random_documents_split_like_json_parses_them(monkeypatch):
    rng = random.Random(7)
    for _ in range(300):
        items = [_random_value(rng) for _ in range(rng.randint(0, 5))]
        doc = {"pre": _random_value(rng), "data": items, "post": _random_value(rng)} if rng.random() < 0.5 else items
        data = json.dumps(doc, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1])).encode()
        monkeypatch.setattr(json_items, "BLOCK_BYTES", rng.choice([1, 3, 7, 1000]))
        assert [orjson.loads(d) for d in _values(data)] == items
        planned = list(plan_ranges(io.BytesIO(data), [("data",)], rng.choice([1, 10, 100])))
        ranges = [p.range for p in planned]
        assert [orjson.loads(i.data) for r in ranges for i in iter_range(io.BytesIO(data), r)] == items
        for p in planned:  # the commas between a range's items, where the worker cuts it
            assert len(p.seps) == p.range.count - 1 and all(data[p.range.start + k] == ord(",") for k in p.seps.tolist())


def test_plan_ranges_cover_every_item_once():
    data = json.dumps([{"i": i, "s": "a,b]\"" * (i % 5)} for i in range(200)]).encode()
    ranges = [p.range for p in plan_ranges(io.BytesIO(data), (), 500)]
    assert len(ranges) > 5 and sum(r.count for r in ranges) == 200
    assert [r.first_index for r in ranges] == [sum(q.count for q in ranges[:k]) for k in range(len(ranges))]
    items = [i for r in ranges for i in iter_range(io.BytesIO(data), r)]
    assert [i.index for i in items] == list(range(200))
    assert [orjson.loads(i.data)["i"] for i in items] == list(range(200))
    assert isinstance(ranges[0], ItemRange) and ranges[0].start == 1


def test_a_long_string_is_linear():
    import time

    data = b'[{"a": 1}, {"t": "' + b"x" * (20 << 20) + b'"}, 2]'
    start = time.process_time()
    items = items_of_bytes(data, ())
    assert [len(i.data) for i in items] == [8, (20 << 20) + 10, 2]
    assert time.process_time() - start < 2.0  # was 24 s through ijson (quadratic)


def _lines(*lines: str) -> bytes:
    return "\n".join(lines).encode() + b"\n"


@pytest.mark.parametrize("with_ends", [False, True])
def test_lines_within_depth_with_many_one_bracket_lines(with_ends):
    import numpy as np

    flat = ['{"a": "x"}'] * 300
    deep = '{"a": ' + "[" * 128 + "]" * 128 + "}"  # 129 levels
    brackets_in_text = '{"a": "' + "[" * 200 + '"}'  # brackets in a string: depth 1

    def within(data: bytes, depth: int = 128) -> bool:
        ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 0x0A) if with_ends else None
        return json_items.lines_within(data, depth, 1 << 20, ends)

    assert within(_lines(*flat))
    assert not within(_lines(*flat[:150], deep, *flat[150:]))
    assert within(_lines(*flat[:150], deep, *flat[150:]), 129)
    assert within(_lines(*flat, brackets_in_text))  # the bound fails, the exact scan passes it
    assert not within(_lines(*flat, "  " + deep))  # a line not starting with a bracket: the exact scan
    assert within(_lines(*flat, "", "  ", *flat))
    assert not within(_lines(*flat, "", "  " + deep, *flat))
    assert not json_items.lines_within(_lines(*flat, '{"a": "' + "x" * 100 + '"}'), 128, 50)
