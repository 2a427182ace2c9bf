"""A build-dpo run's page: translation cost, model, batch ids, skip and check reasons, chosen/rejected pairs
side by side — against the local OpenAI-compatible server of the DPO tests, with a key that must not appear."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dpo.fakeopenai import FakeOpenAI
from kodolly.cli import cli
from kodolly.io.commit import set_state
from kodolly.io.writers import output_paths
from support import FIXTURES

from .browser import find_browser, open_page
from .test_page import assert_private, charts_drawn, figures

KEY = "sk-test-kodolly-PAGE-SECRET-51c2e8"


@pytest.fixture
def server():
    srv = FakeOpenAI().start()
    yield srv
    srv.stop()


def build(tmp_path, server, *extra):
    out = tmp_path / "run" / "dpo.parquet"
    got = CliRunner().invoke(cli, ["build-dpo", str(FIXTURES / "dpo" / "rows.jsonl"), "-o", str(out), "--base-url", server.base_url,
                                   "--cache", str(tmp_path / "cache.sqlite"), "--retry-base-delay", "0.01", "--no-progress", *extra],
                             catch_exceptions=False)
    assert got.exit_code == 0, got.output
    return out, got.output


def test_the_dpo_page_in_a_browser(tmp_path, server, monkeypatch):
    browser = find_browser()
    if browser is None:
        pytest.skip("no Chromium on this machine: apt-get install -y chromium fonts-noto-cjk (as .ci/run does)")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.fault("제주", "refusal", "refusal")  # a translation the checks reject (retried once, then rejected)
    out, printed = build(tmp_path, server)
    paths = output_paths(out, None)
    assert f"page {paths.report_html}" in printed
    html = paths.report_html.read_text(encoding="utf-8")
    manifest = json.loads(paths.manifest.read_text())
    assert KEY not in html and KEY not in paths.manifest.read_text()
    assert_private(html, tmp_path)
    assert manifest["report_html"]["bytes"] == len(html.encode()) and set_state(paths, hashes=True).kind == "committed"
    assert not paths.report.exists()  # build-dpo writes no report JSON: the page's counts are the manifest's

    with open_page(paths.report_html.as_uri(), browser) as page:
        assert page.requests() == [paths.report_html.as_uri()]
        assert page.errors() == []
        got = figures(page)
        drawn = charts_drawn(page)
        pairs = page.evaluate("[...document.querySelectorAll('[data-pair]')].map(e => [e.dataset.pair, [...e.querySelectorAll('pre')].map(p => p.textContent)])")
        page.screenshot(tmp_path / "page.png")
    assert "dpo-reasons" in drawn and all(v[0] > 10 and v[1] > 100 for v in drawn.values())
    counts, dpo = manifest["counts"], manifest["dpo"]
    assert got["read"] == str(counts["read"]) and got["written"] == str(counts["written"]) and got["rejected"] == str(counts["rejected"])
    assert counts["by_reason"]["dpo_translation_refusal"] == 1 and counts["by_reason"]["dpo_asks_for_english"] >= 1
    for reason, n in counts["by_reason"].items():
        assert got[f"reason.{reason}"] == str(n)
    assert got["dpo.model"] == "gpt-4o-mini" == dpo["model"]
    assert got["dpo.requests"] == str(dpo["requests"]) and got["dpo.cost_usd"] == str(dpo["cost_usd"])
    assert got["dpo.tokens.prompt"] == str(dpo["tokens"]["prompt"]) and got["dpo.tokens.completion"] == str(dpo["tokens"]["completion"])
    rows = pq.read_table(out).to_pylist()
    assert pairs == [[r["id"], [r["response"], r["rejected"]]] for r in rows[:3]]
    assert ">check</td>" in html and ">skip</td>" in html


def test_batch_ids_on_the_page(tmp_path, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    out, _ = build(tmp_path, server, "--batch", "--poll-interval", "0.05")
    paths = output_paths(out, None)
    ids = json.loads(paths.manifest.read_text())["dpo"]["batch_ids"]
    html = paths.report_html.read_text()
    assert ids and f'data-key="dpo.batch_ids" data-value="{", ".join(ids)}"' in html
    # and `kodolly report` builds the same page again from the DPO output
    page = paths.report_html.read_bytes()
    assert CliRunner().invoke(cli, ["report", str(out)]).exit_code == 0
    assert paths.report_html.read_bytes() == page


def test_no_html_report_for_build_dpo(tmp_path, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    out, printed = build(tmp_path, server, "--no-html-report")
    paths = output_paths(out, None)
    assert not paths.report_html.exists() and "report_html" not in json.loads(paths.manifest.read_text()) and "page " not in printed
