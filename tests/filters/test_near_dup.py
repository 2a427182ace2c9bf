"""Near-duplicates (filters/near_dup): shingles, exact reasons, order, batches, the planted set."""

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kodolly import api
from kodolly.errors import ConfigError
from kodolly.filters import build_filters
from kodolly.filters.near_dup import NearDupFilter
from kodolly.filters.near_dup.lsh import BandIndex, SortedBands, optimal_bands, pairs_within
from kodolly.filters.near_dup.shingles import encode, shingle_sets
from kodolly.pipeline import InputGroup, run
from kodolly.rows import make_row

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the benchmarks package
from benchmarks.near_dup_quality import evaluate, exact_pairs, planted_records  # noqa: E402

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine


def row(id="r", instruction="질문입니다", response="답입니다", **fields):
    """A row as the pipeline hands it to filters (already normalised)."""
    return make_row(instruction=instruction, response=response, source="test", id=id, **fields)


def _run(fixtures, threshold):
    return api.convert(fixtures / "filters" / "near_dup_pairs.jsonl", "alpaca", filters=[NearDupFilter(threshold)], output=None)


def test_pairs_that_differ_by_a_few_words_are_near_duplicates(fixtures):
    rejects = []
    rows = list(api.iter_rows(fixtures / "filters" / "near_dup_pairs.jsonl", "alpaca", filters=[NearDupFilter(0.7)], rejects=rejects))
    assert [r["id"] for r in rows] == ["n1", "n3", "n4", "n6"]
    assert [(r["id"], r["reason"]) for r in rejects] == [("n2", "near_duplicate_of:n1"), ("n5", "near_duplicate_of:n4")]


def test_pairs_below_the_threshold_are_kept(fixtures):
    # n1/n2 share ~86% of their 3-shingles, n4/n5 ~74%: a strict threshold keeps every row
    result = _run(fixtures, 0.95)
    assert [r["id"] for r in result.rows] == ["n1", "n2", "n3", "n4", "n5", "n6"]
    result = _run(fixtures, 0.8)
    assert [r["id"] for r in result.rows] == ["n1", "n3", "n4", "n5", "n6"]
    assert result.tally.by_reason == {"near_duplicate_of": 1}


def test_distinct_look_alikes_are_kept():
    # the same question and opening; the answers differ after that
    rows = [
        row("a", instruction="서울의 겨울 날씨를 알려 주세요.", response="서울의 겨울은 춥고 건조합니다. 1월 평균 기온은 영하 2도 정도이고 눈이 자주 내리지는 않습니다."),
        row("b", instruction="서울의 겨울 날씨를 알려 주세요.", response="서울의 겨울은 춥고 건조합니다. 한강이 얼 때도 있으며 바람이 강한 날에는 체감 온도가 크게 떨어집니다."),
        row("c", instruction="부산의 겨울 날씨를 알려 주세요.", response="부산의 겨울은 서울보다 따뜻합니다. 바닷바람 때문에 습도가 조금 높고 눈은 거의 오지 않습니다."),
    ]
    assert NearDupFilter(0.8).apply(rows) == [None, None, None]
    assert NearDupFilter(0.5).apply(rows) == [None, None, None]


def test_the_earliest_kept_row_is_named():
    text = "냄비에 돼지고기와 김치를 넣고 볶은 뒤 물을 붓고 끓입니다. 두부와 파를 넣고 한소끔 더 끓이면 완성입니다."
    rows = [row("x", instruction="김치찌개", response=text), row("y", instruction="김치찌개!", response=text + " "),
            row("z", instruction="김치 찌개", response=text.replace(" ", ""))]
    assert NearDupFilter(0.9).apply(rows) == [None, "near_duplicate_of:x", "near_duplicate_of:x"]


SEOUL = ["서울은 대한민국의 수도입니다.", "한강이 도시 한가운데를 흐릅니다.", "인구는 약 천만 명입니다.", "경복궁과 남산타워가 유명합니다.",
         "지하철이 잘 발달해 있습니다.", "봄에는 벚꽃이 아름답게 핍니다.", "여름에는 덥고 비가 많이 옵니다.", "가을 단풍은 북한산이 좋습니다.",
         "겨울에는 춥고 건조합니다.", "맛있는 음식점이 많습니다."]
TRAINS = ["부산행 고속열차는 두 시간 반 걸립니다.", "제주도에는 비행기로 한 시간이면 갑니다."]


def test_a_dropped_row_is_never_named():
    # exact Jaccard: x-y 0.81, y-z 0.81, x-z 0.65. y goes as a near-duplicate of x; z is close only to y,
    # which was dropped, so z is kept (a chain of edits does not drop rows far from every kept one)
    x, y, z = " ".join(SEOUL), " ".join(SEOUL[:9] + TRAINS[:1]), " ".join(SEOUL[:8] + TRAINS)
    sets = shingle_sets([["서울 소개"] * 3, [x, y, z]], 3)
    jac = [len(a & b) / len(a | b) for a, b in ((sets[0], sets[1]), (sets[1], sets[2]), (sets[0], sets[2]))]
    assert [round(j, 2) for j in jac] == [0.81, 0.81, 0.65]
    rows = [row(i, instruction="서울 소개", response=t) for i, t in zip("xyz", (x, y, z))]
    assert NearDupFilter(0.7).apply(rows) == [None, "near_duplicate_of:x", None]


def test_earliest_occurrence_is_kept_across_two_sources(fixtures, tmp_path):
    out = tmp_path / "two.parquet"
    result = api.convert(
        fixtures / "filters" / "near_dup_pairs.jsonl", "alpaca", out, filters=[NearDupFilter(0.8)],
        groups=[InputGroup([fixtures / "filters" / "near_dup_second_source.jsonl"], "dolly")],
    )
    table = pq.read_table(out)
    assert list(zip(table.column("source").to_pylist(), table.column("id").to_pylist())) == [
        ("alpaca", "n1"), ("alpaca", "n3"), ("alpaca", "n4"), ("alpaca", "n5"), ("alpaca", "n6"), ("dolly", "s2"),
    ]
    # s1 repeats n4 (one word changed); s3 is s2 with spacing and punctuation changed
    rejects = [json.loads(line) for line in result.rejects.read_text("utf-8").splitlines()]
    assert [(r["id"], r["reason"]) for r in rejects] == [
        ("n2", "near_duplicate_of:n1"), ("s1", "near_duplicate_of:n4"), ("s3", "near_duplicate_of:s2"),
    ]
    assert result.tally.balanced and result.tally.sources["dolly"].rejected == {"near_duplicate_of": 2}


def test_shingles_ignore_spacing_punctuation_and_case_and_stay_within_a_field():
    assert shingle_sets([["서울 은, 어디?"]], 3) == shingle_sets([["서울은어디"]], 3) == [{encode(s) for s in ("서울은", "울은어", "은어디")}]
    assert shingle_sets([["!!!", "AB", ""]], 3) == [set(), {encode("ab")}, set()]
    assert shingle_sets([["abcd"], ["XY"]], 3) == [{encode("abc"), encode("bcd"), encode("xy")}]  # no "cdx"
    assert shingle_sets([["ab😀cd"]], 2) == [{encode("ab", 2), encode("bc", 2), encode("cd", 2)}]  # outside the BMP: dropped
    long = shingle_sets([["abcdefg", "abcdefgh"]], 5)
    assert len(long[0]) == 3 and long[0] < long[1] and len(long[1]) == 4


def test_rows_without_letters_are_kept():
    assert NearDupFilter(0.5).apply([row("1", instruction="?", response="..."), row("2", instruction="!", response="...")]) == [None, None]


def test_apply_is_decide_of_prepare_and_prepare_table_agrees():
    records = planted_records(60, seed=3)
    rows = [row(r["id"], instruction=r["instruction"], response=r["output"]) for r in records]
    table = pa.Table.from_pylist(rows)
    flt = NearDupFilter(0.8)
    assert flt.prepare(rows) == flt.prepare_table(table)
    whole = NearDupFilter(0.8).apply(rows)
    assert any(whole) and NearDupFilter(0.8).decide(flt.prepare(rows)) == whole
    for size in (1, 7, 50):  # the verdicts do not depend on where the batches are cut
        flt = NearDupFilter(0.8)
        got = []
        for s in range(0, len(rows), size):
            got += flt.apply(rows[s : s + size])
        assert got == whole


def test_a_pickled_filter_carries_no_state():
    import pickle

    flt = NearDupFilter(0.8)
    flt.apply([row("1", response="같은 긴 답변이 여기에 있습니다 " * 3)])
    copy = pickle.loads(pickle.dumps(flt))
    assert copy.state_bytes == 0 and copy.settings() == flt.settings()
    assert copy.apply([row("2", response="같은 긴 답변이 여기에 있습니다 " * 3)]) == [None]


def test_planted_near_duplicates_are_found_with_high_precision_and_recall():
    records = planted_records(800)  # ~1,250 rows; the benchmark runs 5,000 originals
    result = evaluate(records, 0.8)
    assert result["dropped"] > 200 and result["should_drop"] > 200
    assert result["precision"] >= 0.95 and result["recall"] >= 0.9, result
    verdicts = {}
    flt = NearDupFilter(0.8)
    rows = [row(r["id"], instruction=r["instruction"], response=r["output"]) for r in records]
    for s in range(0, len(rows), 4096):
        verdicts.update(zip([r["id"] for r in rows[s : s + 4096]], flt.apply(rows[s : s + 4096])))
    spacing = [r for r in records if r["kind"] == "spacing"]
    assert spacing and all(verdicts[r["id"]] == "near_duplicate_of:" + r["of"] for r in spacing)


def test_exact_pairs_is_exact():
    records = planted_records(40, seed=5)
    sets = shingle_sets([[r["instruction"] for r in records], [r["output"] for r in records]], 3)
    brute = {}
    for i in range(len(sets)):
        for j in range(i):
            inter = len(sets[i] & sets[j])
            if inter / (len(sets[i]) + len(sets[j]) - inter) >= 0.5:
                brute[(i, j)] = inter / (len(sets[i]) + len(sets[j]) - inter)
    assert brute and exact_pairs(sets, 0.5) == brute


def test_band_choice_follows_the_threshold():
    assert optimal_bands(0.8, 128, (0.1, 0.9)) == (14, 9)  # datasketch's MinHashLSH picks the same
    assert optimal_bands(0.5, 128, (0.5, 0.5))[1] < optimal_bands(0.9, 128, (0.5, 0.5))[1]
    flt = NearDupFilter(0.9)
    assert (flt.settings()["lsh_bands"], flt.settings()["lsh_rows"]) == optimal_bands(0.9, 256, (0.1, 0.9))


def test_band_index_and_batch_pairs():
    import numpy as np

    keys = np.array([[1, 5], [2, 5], [1, 6], [3, 7]], dtype=np.uint32)
    later, earlier = pairs_within(SortedBands(keys))
    assert list(zip(later.tolist(), earlier.tolist())) == [(1, 0), (2, 0)]
    index = BandIndex(2)
    index.insert(SortedBands(keys[:2]), np.array([0, 1]))
    index.insert(SortedBands(keys[2:]), np.array([2, -1]))  # the second row was dropped: not indexed
    index.insert(SortedBands(keys[3:]), np.array([3]))
    index.insert(SortedBands(np.array([[1, 8]], dtype=np.uint32)), np.array([4]))
    assert [len(run[0]) for run in index.runs[0]] == [4, 1] and index.nbytes == 2 * 5 * 8  # runs merged: 2+1, +1, then 1
    q, kept = index.lookup(SortedBands(np.array([[1, 9], [9, 7], [4, 4]], dtype=np.uint32)))
    assert list(zip(q.tolist(), kept.tolist())) == [(0, 0), (0, 2), (0, 4), (1, 3)]


def test_settings_and_bad_values():
    flt = NearDupFilter(0.7, shingle=4, num_perm=64, fields="instruction,response")
    settings = flt.settings()
    assert {k: settings[k] for k in ("threshold", "shingle", "num_perm", "fields", "seed", "check_bits")} == {
        "threshold": 0.7, "shingle": 4, "num_perm": 64, "fields": ["instruction", "response"], "seed": 1, "check_bits": 4,
    }
    assert settings["minhash"].startswith("rensa RMinHash")
    with pytest.raises(ConfigError, match="threshold"):
        NearDupFilter(1.5)
    with pytest.raises(ConfigError, match="fields"):
        NearDupFilter(0.8, fields="answer")
    with pytest.raises(ConfigError, match="num_perm"):
        NearDupFilter(0.8, num_perm=8)


@pytest.mark.parametrize("with_ids", [True, False])
def test_same_kept_rows_and_reasons_for_one_and_two_workers(with_ids, tmp_path, monkeypatch):
    """Workers prepare (record by record when the lines carry ids, from the Arrow table when not);
    the main process decides in input order: the files are byte for byte those of one process."""
    import orjson

    from kodolly.corridor import jsonl

    monkeypatch.setattr(jsonl, "CHUNK_BYTES", 40_000)  # many shards, both workers busy
    records = planted_records(400, seed=9)
    src = tmp_path / "planted.jsonl"
    lines = []
    for r in records:
        rec = {"instruction": r["instruction"], "input": "", "output": r["output"]}
        lines.append(orjson.dumps({"id": r["id"], **rec} if with_ids else rec))
    lines[5] = lines[3]  # an exact duplicate: dedup drops it before near-dup sees it
    src.write_bytes(b"\n".join(lines) + b"\n")
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}" / "out.parquet"
        out.parent.mkdir()
        result = run([src], "alpaca", out, filters=build_filters({"near_dup": {"threshold": 0.8}}), workers=workers, batch_size=100,
                     engine="inline" if workers == 1 else "processes")
        outs.append(({p.name: p.read_bytes() for p in sorted(out.parent.iterdir()) if not p.name.endswith(".manifest.json")}, result.tally.as_dict()))
    assert outs[0] == outs[1]
    tally = outs[0][1]
    assert tally["balanced"] and tally["by_reason"]["near_duplicate_of"] > 80
    rejects = [json.loads(line) for line in (tmp_path / "w2" / "out.rejects.jsonl").read_text("utf-8").splitlines()]
    third = records[3]["id"] if with_ids else "planted.jsonl:3"
    assert [r["reason"] for r in rejects if r["index"] == 5] == ["duplicate_of:" + third]
    near = [r for r in rejects if r["reason"].startswith("near_duplicate_of:")]
    kept = set(pq.read_table(tmp_path / "w2" / "out.parquet").column("id").to_pylist())
    line_of = {r["id"]: i for i, r in enumerate(records)} if with_ids else None

    def index_of(rid: str) -> int:
        return line_of[rid] if with_ids else int(rid.rsplit(":", 1)[1])

    for r in near:  # the named row is kept and comes earlier in the input
        named = r["reason"].split(":", 1)[1]
        assert named in kept and index_of(named) < r["index"]


FORK_SCRIPT = """
import json, sys
import orjson
from kodolly.corridor import jsonl
from kodolly.filters import build_filters
from kodolly.pipeline import run
sys.path.insert(0, sys.argv[2])
from benchmarks.near_dup_quality import planted_records

tmp = sys.argv[1]
jsonl.CHUNK_BYTES = 1_000_000  # shards big enough for rensa to use its thread pool
records = [{"instruction": r["instruction"], "input": "", "output": r["output"]} for r in planted_records(5000, seed=4)]
with open(tmp + "/first.json", "wb") as f:
    f.write(orjson.dumps(records[:1500]))  # converted and prepared in the main process, before any fork
with open(tmp + "/second.jsonl", "wb") as f:
    f.write(b"\\n".join(orjson.dumps(r) for r in records[1500:]) + b"\\n")
result = run([tmp + "/first.json", tmp + "/second.jsonl"], "alpaca", tmp + "/out.parquet",
             filters=build_filters({"near_dup": {"threshold": 0.8}}), workers=2, engine="processes")
print(json.dumps({"records": len(records), "tally": result.tally.as_dict()}))
"""


def test_workers_forked_after_the_main_process_used_rensa_do_not_hang(tmp_path):
    """rensa's Rust thread pool does not survive fork(): a JSON array converted (and near-dup prepared)
    in the main process, then a JSONL input's workers forked, must still finish. In a fresh process,
    so the pool's state is this run's alone."""
    import os
    import signal
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "RAYON_NUM_THREADS"}
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", FORK_SCRIPT, str(tmp_path), str(root)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers
        proc.communicate()
        pytest.fail("the run hung: workers forked after rensa's thread pool started")
    assert proc.returncode == 0, err[-2000:]
    done = json.loads(out.strip().splitlines()[-1])
    tally = done["tally"]
    assert tally["balanced"] and tally["read"] == done["records"] and tally["by_reason"]["near_duplicate_of"] > 500


@pytest.mark.parametrize("partitions", [1, 2, 5])
def test_decisions_split_by_band_key_give_the_same_verdicts(partitions):
    """The cluster's split (the ray engine runs these same calls in its tasks): each shard's buckets
    dealt to partitions by (band, key), each partition finding and checking its pairs alone, one pass
    over all checked pairs in input order: exactly the streaming filter's verdicts, chains included."""
    import numpy as np

    from kodolly.corridor.keyed import position

    records = planted_records(300, seed=21)
    rows = [row(r["id"], instruction=r["instruction"], response=r["output"]) for r in records]
    x, y, z = " ".join(SEOUL), " ".join(SEOUL[:9] + TRAINS[:1]), " ".join(SEOUL[:8] + TRAINS)  # y near x, z near y only
    rows[10:10] = [row("x", instruction="서울 소개", response=x)]
    rows[200:200] = [row("y", instruction="서울 소개", response=y), row("empty", instruction="!!", response="?")]
    rows.append(row("z", instruction="서울 소개", response=z))
    flt = NearDupFilter(0.7)
    prepared = flt.prepare(rows)
    stream = NearDupFilter(0.7)
    streaming = []
    for s in range(0, len(rows), 100):
        streaming += stream.decide(prepared[s : s + 100])
    assert streaming[-1] is None and "near_duplicate_of:x" in streaming

    shards = [prepared[s : s + 70] for s in range(0, len(rows), 70)]
    pieces = [flt.shuffle_pieces(p, position(k, np.arange(len(p))), partitions) for k, p in enumerate(shards)]
    pairs, counts = zip(*(flt.checked_pairs([p[j] for p in pieces], np.zeros(0, np.int64)) for j in range(partitions)))
    dropped, kept_ids = NearDupFilter.earliest_kept(list(pairs))
    split = [None] * len(rows)
    for pos, kept in zip(dropped.tolist(), kept_ids):
        split[(pos >> 32) * 70 + (pos & 0xFFFFFFFF)] = "near_duplicate_of:" + kept
    assert sum(v is not None for v in split) > 30 and split == streaming
    # the buckets are dealt, not copied: each in exactly one partition
    whole = flt.checked_pairs([p for piece in (flt.shuffle_pieces(s, position(k, np.arange(len(s))), 1) for k, s in enumerate(shards))
                               for p in piece], np.zeros(0, np.int64))[1]
    assert sum(c["buckets"] for c in counts) == whole["buckets"]
    assert partitions == 1 or max(c["buckets"] for c in counts) < whole["buckets"] * 0.7
    # rows dropped earlier in the chain (exact dedup) are left out, as the streaming filter never sees them
    gone = position(0, np.array([10]))  # x: then y is nobody's near-duplicate and z goes as y's
    pairs = [flt.checked_pairs([p[j] for p in pieces], gone)[0] for j in range(partitions)]
    dropped, kept_ids = NearDupFilter.earliest_kept(pairs)
    without_x = dict(zip(dropped.tolist(), kept_ids))
    z_pos = int(position(len(shards) - 1, len(shards[-1]) - 1))
    assert without_x[z_pos] == "y" and int(position(200 // 70, 200 % 70)) not in without_x
