"""The run's HTML page (``<out>.report.html``), opened in a real headless Chromium over the DevTools protocol.

Every browser test asserts: the only request is the page's own file, no console error, warning or
exception, every chart a non-empty SVG with a size, and the figures on the page (``data-key``) equal the
report JSON / manifest and the output's rows as computed here independently; a screenshot is saved
beside the test's files (``<tmp>/page.png``).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from kodolly.cli import cli
from kodolly.io.commit import set_state
from kodolly.io.writers import file_hash, output_paths
from kodolly.normalize import hangul_share
from support import FIXTURES

from .browser import find_browser, open_page

MIXED = FIXTURES / "report_html" / "mixed.jsonl"
MAP = ["--map", "id=id", "--map", "instruction=q", "--map", "context=ctx", "--map", "response=a", "--map", "category=c", "--map", "domain=d"]
CHARTS = {"sources", "rejects", "lengths-instruction", "lengths-context", "lengths-response", "hangul-instruction", "hangul-response",
          "category", "domain", "splits"}

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture(scope="module")
def browser():
    found = find_browser()
    if found is None:
        pytest.skip("no Chromium on this machine: apt-get install -y chromium fonts-noto-cjk (as .ci/run does)")
    return found


def run(*args: str, cwd: Path | None = None) -> str:
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        got = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    assert got.exit_code == 0, got.output
    return got.output


def convert(tmp_path: Path, engine: str, *extra: str, name: str = "out.parquet") -> Path:
    src = tmp_path / "in" / "mixed.jsonl"  # an absolute input path: the page must name it by its name only
    src.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(MIXED, src)
    out = tmp_path / "run" / name
    run("convert", str(src), *MAP, "--near-dup", "0.8", "--split", "train=0.6,validation=0.4", "--engine", engine, "-o", str(out), *extra)
    return out


def figures(page) -> dict[str, str]:
    return dict(page.evaluate("[...document.querySelectorAll('[data-key]')].map(e => [e.dataset.key, e.dataset.value])"))


def charts_drawn(page) -> dict[str, list]:
    """Per chart: [number of SVG elements inside it, its drawn width, its drawn height]."""
    return dict(page.evaluate("""[...document.querySelectorAll('figure[data-chart]')].map(f => {
        const svg = f.querySelector('svg'); const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
        return [f.dataset.chart, [svg ? svg.querySelectorAll('path, rect, text, use, g').length : 0, r.width, r.height]]; })"""))


def quantile(values: list[int], q: float) -> int:
    """The smallest value with at least a share q of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def assert_private(html: str, tmp_path: Path) -> None:
    assert str(tmp_path) not in html and os.getcwd() not in html
    assert not re.search(r"(/tmp/|/home/|/work/|/root/|/Users/|[A-Z]:\\\\)", html), re.search(r".{40}(/tmp/|/home/|/work/|/root/).{40}", html)


def test_the_convert_page_in_a_browser(tmp_path, engine, browser):
    out = convert(tmp_path, engine)
    paths = output_paths(out, None)
    html = paths.report_html.read_text(encoding="utf-8")
    report = json.loads(paths.report.read_text(encoding="utf-8"))
    manifest = json.loads(paths.manifest.read_text(encoding="utf-8"))
    # committed with the set: the manifest lists the page with its size and hash
    assert manifest["report_html"] == {"path": str(paths.report_html), "bytes": len(html.encode()), "xxh3_128": file_hash(paths.report_html)}
    assert set_state(paths, hashes=True).kind == "committed"
    assert_private(html, tmp_path)

    url = paths.report_html.as_uri()
    with open_page(url, browser) as page:
        assert page.requests() == [url]
        assert page.errors() == []
        drawn = charts_drawn(page)
        assert set(drawn) == CHARTS
        for name, (elements, width, height) in drawn.items():
            assert elements > 10 and width > 100 and height > 50, (name, elements, width, height)
        got = figures(page)
        shot = page.screenshot(tmp_path / "page.png")
        lang = page.evaluate("document.documentElement.lang")
    assert shot.stat().st_size > 10_000 and lang == "ko"
    # chart labels are SVG text (drawn by the browser with the page's fonts), Korean ones included
    domain_svg = re.search(r'<figure data-chart="domain">(.*?)</figure>', html, re.S).group(1)
    assert re.search(r"<text [^>]*font-family:system-ui[^>]*>역사</text>", domain_svg)

    counts = report["counts"]
    assert counts == manifest["counts"]
    assert (counts["read"], counts["written"], counts["rejected"]) == (13, 9, 4)
    assert got["read"] == "13" and got["written"] == "9" and got["rejected"] == "4"
    for name, s in counts["sources"].items():
        assert [got[f"source.{name}.{k}"] for k in ("read", "written", "rejected")] == [str(s["read"]), str(s["written"]), str(s["rejected"])]
    assert counts["by_reason"] == {"bad_json": 1, "duplicate_of": 1, "empty_field:response": 1, "near_duplicate_of": 1}
    for reason, n in counts["by_reason"].items():
        assert got[f"reason.{reason}"] == str(n)
    assert got["input.mixed.jsonl.written"] == "9" and got["input.mixed.jsonl.rejected"] == "4"

    rows = pq.read_table(out).to_pylist()
    assert got["rows"] == str(len(rows)) == "9"
    for split in {r["split"] for r in rows}:
        assert got[f"split.{split}"] == str(sum(r["split"] == split for r in rows))
    assert sum(int(v) for k, v in got.items() if k.startswith("split.")) == 9
    for field in ("category", "domain"):
        for value in {r[field] for r in rows}:
            assert got[f"{field}.{value}"] == str(sum(r[field] == value for r in rows))
    for field in ("instruction", "context", "response"):
        lengths = [len(r[field]) for r in rows]
        assert got[f"lengths.{field}.p50"] == str(quantile(lengths, 0.5))
        assert got[f"lengths.{field}.p90"] == str(quantile(lengths, 0.9))
        assert got[f"lengths.{field}.max"] == str(max(lengths))
        assert got[f"lengths.{field}.empty"] == str(lengths.count(0))
        assert got[f"lengths.{field}.mean"] == str(round(sum(lengths) / len(lengths), 1))
    for field in ("instruction", "response"):
        shares = [hangul_share(r[field]) for r in rows if r[field]]
        assert got[f"hangul.{field}.sampled"] == str(len(shares))
        assert got[f"hangul.{field}.below50"] == str(sum(s < 0.5 for s in shares))
    assert got["hangul.instruction.below50"] == "1"  # r06, the English question

    # each reason with its first examples (file name and line, the raw record) and a way to list them all
    for reason, where in (("bad_json", "mixed.jsonl:13"), ("duplicate_of", "mixed.jsonl:3"), ("empty_field:response", "mixed.jsonl:5"),
                          ("near_duplicate_of", "mixed.jsonl:4")):
        block = re.search(rf'<details data-reason="{re.escape(reason)}">(.*?)</details>', html, re.S).group(1)
        assert where in block
    assert "grep -F &#x27;&quot;reason&quot;:&quot;duplicate_of:&#x27; out.rejects.jsonl" in html
    assert "&quot;a&quot;: &quot;&quot;" in html  # r05's raw record, its empty answer
    # the kept and the dropped copy side by side
    dedup = html[html.index('<section id="dedup">'):html.index('<section id="splits">')]
    assert "kept: id=r01 mixed.jsonl:1" in dedup and "dropped: mixed.jsonl:3 id=r03" in dedup
    assert "kept: id=r02 mixed.jsonl:2" in dedup and "dropped: mixed.jsonl:4 id=r04" in dedup
    # the settings and versions, from the manifest
    settings = html[html.index('<section id="settings">'):]
    assert f"<td>{manifest['kodolly_version']}</td>" in settings and "near_dup" in settings and "xxh3_128" in settings


def test_no_html_report_writes_none(tmp_path, engine):
    out = convert(tmp_path, engine, "--no-html-report")
    paths = output_paths(out, None)
    assert not paths.report_html.exists()
    assert "report_html" not in json.loads(paths.manifest.read_text())
    assert sorted(p.name for p in paths.output.parent.iterdir()) == ["out.manifest.json", "out.parquet", "out.rejects.jsonl", "out.report.json"]


@pytest.mark.parametrize("name", ["out.parquet", "out.jsonl", "out"])
def test_kodolly_report_builds_the_same_page_again(tmp_path, engine, name):
    extra = ("--format", "datasets") if name == "out" else ()
    out = convert(tmp_path, engine, *extra, name=name)
    paths = output_paths(out, "datasets" if name == "out" else None)
    page, manifest = paths.report_html.read_bytes(), paths.manifest.read_bytes()
    # the run fed the figures from the rows it wrote; `kodolly report` reads the output: the same bytes
    assert run("report", str(out)) == f"page {paths.report_html}\n"
    assert paths.report_html.read_bytes() == page
    assert paths.manifest.read_bytes() == manifest


def test_kodolly_report_writes_a_page_for_a_run_without_one(tmp_path, engine):
    with_page = convert(tmp_path / "a", engine)
    without = convert(tmp_path / "b", engine, "--no-html-report")
    run("report", str(without))
    paths = output_paths(without, None)
    assert set_state(paths, hashes=True).kind == "committed"
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["report_html"]["xxh3_128"] == file_hash(paths.report_html)
    # the same page as the run's own but for the run's time and, in the settings, the files' hashes (the
    # rows' meta.file names another input folder)
    created = json.loads(output_paths(with_page, None).manifest.read_text())["created"]
    a = output_paths(with_page, None).report_html.read_text().replace(created, "T")
    b = paths.report_html.read_text().replace(manifest["created"], "T")
    cut = '<section id="settings">'
    assert a.count("T") > 0 and a[: a.index(cut)] == b[: b.index(cut)]


def test_kodolly_report_refuses_an_unfinished_or_foreign_output(tmp_path):
    plain = tmp_path / "plain.parquet"
    shutil.copy(convert(tmp_path, "inline", "--no-html-report"), plain)
    got = CliRunner().invoke(cli, ["report", str(plain)])
    assert got.exit_code != 0 and "no manifest beside it (plain.manifest.json)" in got.output


def test_token_counts_with_a_local_tokenizer(tmp_path, engine, browser):
    pytest.importorskip("transformers")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
    from tiny_model import build_tokenizer

    # one token per character of the fixture: token counts equal character counts
    tok_dir = tmp_path / "tok"
    build_tokenizer(MIXED.read_text(encoding="utf-8")).save_pretrained(str(tok_dir))
    out = convert(tmp_path, engine, "--tokenizer", str(tok_dir))
    paths = output_paths(out, None)
    html = paths.report_html.read_text()
    assert str(tok_dir) not in html and "<h3>tokens (tok)</h3>" in html
    with open_page(paths.report_html.as_uri(), browser) as page:
        assert page.errors() == [] and page.requests() == [paths.report_html.as_uri()]
        got = figures(page)
        drawn = charts_drawn(page)
    assert {f"tokens-{f}" for f in ("instruction", "context", "response")} <= set(drawn)
    for field in ("instruction", "context", "response"):
        for k in ("p50", "p90", "max", "mean"):
            assert got[f"tokens.{field}.{k}"] == got[f"lengths.{field}.{k}"]
    # `kodolly report` with the same tokenizer: the same page
    page = paths.report_html.read_bytes()
    run("report", str(out), "--tokenizer", str(tok_dir))
    assert paths.report_html.read_bytes() == page
