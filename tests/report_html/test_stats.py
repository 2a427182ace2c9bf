"""The page's figures: exact length quantiles, the Hangul sample independent of batch sizes, the browser
harness itself (it does see a request and a console error when a page makes them)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from kodolly.normalize import hangul_share
from kodolly.hub.public import scrub_paths
from kodolly.report_html.stats import HANGUL_SAMPLE, Lengths, OutputStats

from .browser import find_browser, open_page


def test_lengths_are_exact():
    values = [0, 3, 3, 7, 10, 120, 5, 5, 5, 1]
    got = Lengths()
    got.add(np.array(values[:4]))
    got.add(np.array(values[4:]))
    assert got.summary() == {"rows": 10, "empty": 1, "mean": 15.9, "p50": 5, "p90": 10, "p99": 120, "max": 120}
    edges, counts = got.histogram()
    assert edges == [0, 1, 2, 5, 10, 20, 50, 100, 200]
    assert counts == [1, 1, 2, 4, 1, 0, 0, 1]  # 0 | 1 | 2-4 | 5-9 | 10-19 | 20-49 | 50-99 | 100-199


def table(n: int, start: int = 0) -> pa.Table:
    texts = [("한국어 문장" if i % 3 else "English only") + str(i) for i in range(start, start + n)]
    return pa.table({"instruction": texts, "context": [""] * n, "response": texts[::-1], "category": ["open_qa"] * n, "split": ["train"] * n})


@pytest.mark.parametrize("batch", [1000, 4096, 65536])
def test_the_same_figures_whatever_the_batch_size(batch):
    n = 2 * HANGUL_SAMPLE + 5000  # past the sample: the stride doubles once
    whole = table(n)
    one = OutputStats()
    one.add(whole)
    other = OutputStats()
    for offset in range(0, n, batch):
        other.add(whole.slice(offset, batch))
    assert one.as_dict() == other.as_dict()
    got = one.as_dict()["hangul"]["response"]
    assert got["stride"] == 2 and got["sampled"] == (n + 1) // 2
    expected = np.bincount(np.minimum((np.array([hangul_share(t) for t in whole.column("response").to_pylist()[::2]]) * 20).astype(int), 19), minlength=20)
    assert got["counts"] == expected.tolist()


def test_scrub_paths_keeps_urls():
    assert scrub_paths("cannot read /home/me/data/x.json (see https://example.com/a/b)") == "cannot read x.json (see https://example.com/a/b)"


def test_the_harness_sees_requests_and_errors(tmp_path):
    browser = find_browser()
    if browser is None:
        pytest.skip("no Chromium on this machine")
    page_file = tmp_path / "bad.html"
    page_file.write_text('<html><body><img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script></body></html>')
    with open_page(page_file.as_uri(), browser) as page:
        assert page.requests() == [page_file.as_uri(), "http://127.0.0.1:9/x.png"]
        errors = page.errors()
    assert ("console", "error", [{"type": "string", "value": "boom"}]) in errors
    assert any(e[0] == "log" and "x.png" in e[1].get("url", "") + e[1].get("text", "") for e in errors), errors  # the failed image load
