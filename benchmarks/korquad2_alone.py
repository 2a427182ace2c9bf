"""The KorQuAD 2 converter alone, in one process: CPU seconds per page and rows per CPU second.

Usage::

    python benchmarks/gen_korquad.py korquad2 /tmp/kq2-150.json --pages 150 --seed 11
    python benchmarks/korquad2_alone.py /tmp/kq2-150.json            # best of 3 runs
    python benchmarks/korquad2_alone.py /tmp/kq2-150.json --phases   # where a page's time goes

The pages are loaded first (``json.load``, not timed); each run converts every page with
``korquad2.convert`` and nothing else (no reader, no filters, no writer). ``--phases`` times the parts
with ``time.process_time`` around each (a little overhead of its own; the parts add up to the total).
The printed digest of the rows and rejects compares two versions of the code on the same file.
``--phases`` also prints what decoding each page's JSON costs (not part of the converter's time):
``orjson.loads`` on the page's bytes as the corridor reads them (``json_items``), and on the same
page written again without ``raw_html`` (what skipping that field could save at most).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import time
from typing import Any

import orjson

from kodolly.converters import Context, Reject
from kodolly.converters import html_text as H
from kodolly.converters import korquad2 as K
from kodolly.io import json_items
from kodolly.io.readers import Location

PHASES = [
    (H.Page, "__init__", "parse the page + cut it into units"),
    (K, "_place_marks", "place the markers"),
    (H.Page, "unit_of", "find each marker's unit"),
    (H.Page, "_reach", "render the units around the answer"),
    (H.Page, "window", "finish the window's blocks"),
    (K, "render_fragment", "render the answer (parse + walk)"),
    (H.Page, "may_hold", "one-line check of table/list answers (page-wide)"),
]


def run(pages: list[Any], ctx: Context, path: str) -> list[Any]:
    out = []
    for i, page in enumerate(pages):
        out.extend(K.convert(page, Location(path, i), ctx))
    return out


def digest(out: list[Any]) -> str:
    h = hashlib.sha256()
    for r in out:
        h.update((repr((r.reason, r.detail, r.part)) if isinstance(r, Reject) else json.dumps(r, ensure_ascii=False, sort_keys=True, default=str)).encode())
    return h.hexdigest()[:16]


def decoding(path: str, runs: int) -> tuple[float, float]:
    """Best CPU seconds of ``orjson.loads`` over every page's bytes, and over the pages without ``raw_html``."""
    with open(path, "rb") as fh:
        items = [item.data for item in json_items.iter_items(fh, json_items.parse_record_paths(K.CONVERTER.record_paths))]
    lean = [orjson.dumps({k: v for k, v in orjson.loads(data).items() if k != "raw_html"}) for data in items]
    best = []
    for datas in (items, lean):
        times = []
        for _ in range(runs):
            t = time.process_time()
            for data in datas:
                orjson.loads(data)
            times.append(time.process_time() - t)
        best.append(min(times))
    return best[0], best[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--phases", action="store_true")
    args = ap.parse_args(argv)
    with open(args.path, encoding="utf-8") as fh:
        pages = json.load(fh)["data"]
    ctx = Context(source="korquad2", options=K.CONVERTER.options, license=K.CONVERTER.license)
    spent: collections.Counter[str] = collections.Counter()
    if args.phases:
        for owner, name, label in PHASES:
            fn = getattr(owner, name)

            def timed(*a: Any, _fn: Any = fn, _label: str = label, **kw: Any) -> Any:
                t = time.process_time()
                try:
                    return _fn(*a, **kw)
                finally:
                    spent[_label] += time.process_time() - t

            setattr(owner, name, timed)
    best, best_spent, out = None, {}, []
    for _ in range(args.runs):
        spent.clear()
        t = time.process_time()
        out = run(pages, ctx, args.path)
        cpu = time.process_time() - t
        if best is None or cpu < best:
            best, best_spent = cpu, dict(spent)
    rows = sum(1 for r in out if not isinstance(r, Reject))
    n = len(pages)
    print(f"{n} pages, {sum(len(p.get('qas') or []) for p in pages)} questions, {rows} rows, {len(out) - rows} rejects; digest {digest(out)}")
    print(f"best of {args.runs}: {best:.3f} CPU s = {best * 1000 / n:.2f} ms a page, {rows / best:,.0f} rows per CPU second")
    if args.phases:
        for _, _, label in PHASES:  # may_hold renders units of its own: counted there, not in the window's
            print(f"  {label:<52}{best_spent.get(label, 0.0) * 1000 / n:6.2f} ms a page")
        print(f"  {'the rest (search, widen, rows, ...)':<52}{(best - sum(best_spent.values())) * 1000 / n:6.2f} ms a page")
        whole, lean = decoding(args.path, args.runs)
        print(f"decoding the pages' JSON (orjson, outside the converter): {whole * 1000 / n:.2f} ms a page, "
              f"{lean * 1000 / n:.2f} without raw_html")


if __name__ == "__main__":
    main()
