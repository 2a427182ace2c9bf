"""Throughput and peak memory of the korquad1, korquad2 and sharegpt converters through `kodolly convert`.

Generate the inputs first (see gen_korquad.py), then::

    python benchmarks/bench_converters.py            # all three, files under benchmarks/data/

Each run is a whole `kodolly convert ... -o out.parquet` process measured with ``/usr/bin/time -v``
(wall seconds, maximum resident set size); rows/s counts items read (rows written + rejected).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RUNS = [
    ("korquad1", DATA / "KorQuAD_v1.0_train.json"),
    ("korquad2", DATA / "KorQuAD_2.1_train_00.json"),
    ("sharegpt", DATA / "ko_dataset.json"),
]


def measure(converter: str, src: Path) -> dict:
    kodolly = Path(sys.executable).with_name("kodolly")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["/usr/bin/time", "-v", str(kodolly), "convert", "--from", converter, str(src), "-o", f"{tmp}/out.parquet", "--no-progress"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    err, out = proc.stderr, proc.stdout
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", err)
    seconds = (int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))) if wall else float("nan")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
    tally = re.search(r"tally OK: read (\d+) = written (\d+) \+ rejected (\d+)", out)
    read, written, rejected = (int(x) for x in tally.groups())
    return {
        "converter": converter, "input_mb": src.stat().st_size / 1e6, "seconds": seconds, "read": read,
        "written": written, "rejected": rejected, "rows_per_s": read / seconds, "peak_rss_mb": rss_kb / 1024,
    }


def main() -> None:
    wanted = set(sys.argv[1:])
    print(f"{'converter':<10}{'input MB':>10}{'items':>9}{'written':>9}{'wall s':>8}{'items/s':>10}{'peak RSS MB':>13}")
    for converter, src in RUNS:
        if wanted and converter not in wanted:
            continue
        r = measure(converter, src)
        print(f"{r['converter']:<10}{r['input_mb']:>10.1f}{r['read']:>9}{r['written']:>9}{r['seconds']:>8.1f}{r['rows_per_s']:>10.0f}{r['peak_rss_mb']:>13.0f}")


if __name__ == "__main__":
    main()
