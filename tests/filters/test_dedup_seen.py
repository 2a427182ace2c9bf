"""DedupFilter.decide on its compact state (SeenKeys) gives what a dict of digest -> first id gives, batch
after batch, including keys whose first 8 bytes are equal and copies inside one batch."""

import random

import xxhash

from kodolly.filters.dedup import DedupFilter, SeenKeys


def _dict_decide(seen: dict, prepared):
    out = []
    for digest, rid in prepared:
        first = seen.get(digest)
        if first is None:
            seen[digest] = rid
            out.append(None)
        else:
            out.append("duplicate_of:" + first)
    return out


def test_decide_matches_a_dict_batch_after_batch():
    rng = random.Random(5)
    base = [xxhash.xxh3_128_digest(str(i).encode()) for i in range(2000)]
    # keys that share their first half with another key (the runs are sorted by it)
    twins = [base[0][:8] + bytes(8), base[0][:8] + b"\x01" * 8, base[1][:8] + b"\x02" * 8, base[0][:8] + b"\x03" * 8]
    pool = base + twins * 200
    flt, seen = DedupFilter(), {}
    for b in range(400):
        batch = [(rng.choice(pool), f"id{b}.{k}" + ("\udc80한" if k % 7 == 0 else "")) for k in range(rng.randint(0, 80))]
        assert flt.decide(batch) == _dict_decide(seen, batch), b
    assert flt.distinct == len(seen)


def test_seen_keys_merge_their_runs():
    import numpy as np

    seen = SeenKeys()
    for b in range(64):
        hi = np.arange(b, 6400, 64, dtype=np.uint64)  # sorted, new
        seen.add([f"r{b}.{k}" for k in range(len(hi))], hi, hi * 3, np.arange(len(hi)))
    assert len(seen) == 6400 and len(seen.runs) <= 7  # O(log n) runs, each sorted
    assert all((np.diff(run[0].astype(np.int64)) >= 0).all() for run in seen.runs)
    refs = seen.find(np.array([70, 6399, 6400], dtype=np.uint64), np.array([210, 6399 * 3, 0], dtype=np.uint64))
    assert [seen.id_of(int(r)) for r in refs[:2]] == ["r6.1", "r63.99"] and refs[2] == -1


def test_seen_keys_start_empty_in_a_pickled_filter():
    import pickle

    flt = DedupFilter()
    flt.decide([(b"k" * 16, "a")])
    assert flt.distinct == 1
    again = pickle.loads(pickle.dumps(flt))
    assert again.distinct == 0
