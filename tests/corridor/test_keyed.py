"""corridor/keyed.py: "earliest position wins" by hash partition gives exactly the decisions of the exact-dedup
filter deciding in one process, in position order, whatever the partition count and the shard cut."""

from __future__ import annotations

import random

import numpy as np
import pytest

from kodolly.corridor import keyed
from kodolly.filters.dedup import DedupFilter


def _rows(n: int, distinct: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [{"instruction": f"q{rng.randrange(distinct)}", "context": "", "response": "r", "id": f"row{i}"} for i in range(n)]


def _cluster_verdicts(rows: list[dict], shard_rows: int, partitions: int) -> list:
    flt = DedupFilter()
    shards = [(seq, rows[a : a + shard_rows]) for seq, a in enumerate(range(0, len(rows), shard_rows))]
    pieces: list[list] = [[] for _ in range(partitions)]
    for seq, part in shards:
        items = np.arange(len(part), dtype=np.int64) * 2 + 1  # item ordinals need not be dense (rejects between)
        for k, table in enumerate(keyed.partition(keyed.key_table(seq, items, flt.prepare(part)), partitions)):
            pieces[k].append(table)
    losers = [keyed.earliest_wins(p) for p in pieces]
    out = []
    for seq, part in shards:
        out += keyed.verdicts(seq, np.arange(len(part), dtype=np.int64) * 2 + 1, losers, flt.duplicate_reason)
    return out


@pytest.mark.parametrize("partitions", [1, 2, 5])
@pytest.mark.parametrize("shard_rows", [1, 37, 1000])
def test_the_same_decisions_as_one_process(partitions, shard_rows):
    rows = _rows(1000, 120, seed=partitions * 100 + shard_rows)
    expected = DedupFilter().apply(rows)
    assert sum(v is not None for v in expected) == 1000 - len({r["instruction"] for r in rows})
    assert _cluster_verdicts(rows, shard_rows, partitions) == expected


def test_losers_name_the_earliest_row_of_their_key():
    rows = [{"instruction": t, "context": "", "response": "r", "id": f"id{i}"} for i, t in enumerate("abacab")]
    assert _cluster_verdicts(rows, 2, 3) == [None, None, "duplicate_of:id0", None, "duplicate_of:id0", "duplicate_of:id1"]


def test_losers_between_and_empty_inputs():
    assert len(keyed.earliest_wins([])) == 0
    assert [len(t) for t in keyed.partition(keyed.KEY_SCHEMA.empty_table(), 3)] == [0, 0, 0]
    losers = keyed.earliest_wins([keyed.key_table(0, np.arange(4), [(b"k" * 16, f"i{j}") for j in range(4)])])
    assert losers.column("pos").to_pylist() == [1, 2, 3] and set(losers.column("kept_id").to_pylist()) == {"i0"}
    assert keyed.losers_between(losers, 2, 3).column("pos").to_pylist() == [2]
