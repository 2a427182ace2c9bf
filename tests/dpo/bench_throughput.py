"""Throughput of build-dpo against the fake server with a fixed latency (not a test; run by hand):

    .venv/bin/python -m tests.dpo.bench_throughput [ROWS] [LATENCY_S] [CONCURRENCY]
"""

import os
import subprocess
import resource
import sys
import tempfile
import time
from pathlib import Path

from kodolly.dpo import build_dpo

from .conftest import korean_texts, write_rows


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    latency = float(sys.argv[2]) if len(sys.argv) > 2 else 0.2
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    # the server runs in its own process, as a real API would, so it does not share this one's GIL
    code = (f"from tests.dpo.fakeopenai import FakeOpenAI; import time; s = FakeOpenAI(latency={latency}).start(); "
            "print(s.base_url, flush=True); time.sleep(3600)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    base_url = proc.stdout.readline().strip()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    with tempfile.TemporaryDirectory() as tmp:
        src = write_rows(Path(tmp) / "in.jsonl", korean_texts(rows))
        start = time.perf_counter()
        res = build_dpo([src], Path(tmp) / "out.parquet", base_url=base_url, cache_path=str(Path(tmp) / "c.sqlite"),
                        concurrency=concurrency, progress=False)
        elapsed = time.perf_counter() - start
    proc.kill()
    proc.wait()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{res.tally.written} rows in {elapsed:.2f}s = {res.tally.written / elapsed:.1f} rows/s "
          f"(latency {latency * 1000:.0f} ms, concurrency {concurrency}, ideal {concurrency / latency if latency else float('inf'):.1f} rows/s); "
          f"peak RSS {rss:.0f} MiB; requests {res.report['requests']}")


if __name__ == "__main__":
    main()
