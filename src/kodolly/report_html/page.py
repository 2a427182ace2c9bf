"""The HTML of a run's page: one self-contained file (inline CSS and SVG, no script, no external reference).

Every text that comes from data goes through :func:`html.escape`; the key figures carry ``data-key``
attributes (``read``, ``source.<name>.written``, ``reason.<reason>``, ``split.<name>`` ...) so a test, or a
person with the browser's inspector, can read them back and compare them with the report JSON.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from . import charts

CSS = """
:root { color-scheme: light; --fg:#1d2330; --muted:#5c6473; --line:#e2e5ea; --bg:#f7f8fa; --accent:#3b7dd8; --bad:#d9534f; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.5 system-ui, -apple-system, "Apple SD Gothic Neo", "Malgun Gothic", "Noto Sans CJK KR", "Noto Sans KR", NanumGothic, sans-serif; color:var(--fg); background:var(--bg); }
main { max-width: 1080px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 14px; margin: 16px 0 6px; }
p.sub, .muted { color: var(--muted); }
nav a { margin-right: 12px; color: var(--accent); text-decoration: none; font-size: 13px; }
.cards { display:flex; flex-wrap:wrap; gap:10px; margin:14px 0; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 14px; min-width:130px; }
.card b { display:block; font-size:22px; }
.card span { color:var(--muted); font-size:12px; }
.ok { color:#2a8a4a; } .bad { color: var(--bad); }
table { border-collapse: collapse; background:#fff; border:1px solid var(--line); margin: 6px 0 10px; font-size:13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align:left; vertical-align: top; }
td.n, th.n { text-align:right; font-variant-numeric: tabular-nums; }
.grid { display:grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 12px; }
figure { margin:0; background:#fff; border:1px solid var(--line); border-radius:8px; padding:8px; }
svg.chart { max-width:100%; height:auto; display:block; margin: 0 auto; }
pre { white-space: pre-wrap; word-break: break-word; background:#fff; border:1px solid var(--line); border-radius:6px; padding:8px; margin:4px 0; font: 12px/1.45 ui-monospace, "SFMono-Regular", Menlo, Consolas, "D2Coding", monospace; max-height: 260px; overflow:auto; }
details { margin: 4px 0 10px; } summary { cursor: pointer; }
code { font: 12px ui-monospace, Menlo, Consolas, monospace; background:#eef1f5; padding: 1px 4px; border-radius:4px; }
.pair { display:grid; grid-template-columns: 1fr 1fr; gap:8px; margin-bottom:12px; }
.pair h4 { margin: 2px 0; font-size: 12px; color: var(--muted); }
"""


def _n(value: Any) -> str:
    if isinstance(value, bool):
        return escape(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.2f}"
    return escape(str(value))


def _num(key: str, value: Any, cls: str = "n") -> str:
    """A table cell holding a key figure (its exact value in ``data-value``)."""
    return f'<td class="{cls}" data-key="{escape(key)}" data-value="{escape(str(value))}">{_n(value)}</td>'


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    th = "".join(f'<th class="n">{escape(h)}</th>' if i in numeric else f"<th>{escape(h)}</th>" for i, h in enumerate(head))
    return f"<table><thead><tr>{th}</tr></thead><tbody>" + "".join("<tr>" + "".join(r) + "</tr>" for r in rows) + "</tbody></table>"


def _td(text: Any) -> str:
    return f"<td>{escape(str(text))}</td>"


def _figure(name: str, svg: str) -> str:
    return f'<figure data-chart="{escape(name)}">{svg}</figure>'


def _grid(*figures: str) -> str:
    return f'<div class="grid">{"".join(figures)}</div>'


def _pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def _section(ident: str, title: str, body: str) -> str:
    return f'<section id="{ident}"><h2>{escape(title)}</h2>{body}</section>'


def render(page: dict[str, Any]) -> str:
    """The page for the figures ``page`` (:func:`kodolly.report_html.page_data`)."""
    counts = page["counts"]
    parts = [_header(page), _sources(page), _rejects(page), _lengths(page), _hangul(page), _labels(page), _dedup(page), _splits(page)]
    if page.get("dpo") is not None:
        parts.append(_dpo(page))
    parts.append(_settings(page))
    nav = "".join(f'<a href="#{i}">{t}</a>' for i, t in (
        ("sources", "sources"), ("rejects", "rejects"), ("lengths", "lengths"), ("hangul", "Hangul"), ("labels", "categories"),
        ("dedup", "dedup"), ("splits", "splits"), *((("dpo", "DPO"),) if page.get("dpo") is not None else ()), ("settings", "settings")))
    title = f"kodolly report — {page['output']}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="ko"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="kodolly {escape(page["kodolly_version"])}">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f'<body><main data-balanced="{str(counts.get("balanced")).lower()}"><h1>{escape(title)}</h1><nav>{nav}</nav>'
        + "".join(p for p in parts if p)
        + "</main></body></html>\n"
    )


def _header(page: dict[str, Any]) -> str:
    c = page["counts"]
    ok = c.get("balanced")
    cards = "".join(
        f'<div class="card"><b data-key="{key}" data-value="{c[key]}">{c[key]:,}</b><span>{label}</span></div>'
        for key, label in (("read", "items read"), ("written", "rows written"), ("rejected", "rejected"))
    )
    tally = (f'<p class="{"ok" if ok else "bad"}">tally {"OK" if ok else "MISMATCH"}: read {c["read"]:,} = written {c["written"]:,} '
             f'+ rejected {c["rejected"]:,}</p>')
    sub = f'<p class="sub">{escape(page["kind"])} run, {escape(page.get("created") or "")}, kodolly {escape(page["kodolly_version"])}</p>'
    return sub + f'<div class="cards">{cards}</div>' + tally + "".join(f'<p class="bad">warning: {escape(w)}</p>' for w in page.get("warnings") or [])


def _sources(page: dict[str, Any]) -> str:
    sources = page["counts"].get("sources") or {}
    rows = [
        [_td(name), _num(f"source.{name}.read", s["read"]), _num(f"source.{name}.written", s["written"]), _num(f"source.{name}.rejected", s["rejected"])]
        for name, s in sources.items()
    ]
    body = _table(["source", "read", "written", "rejected"], rows, {1, 2, 3})
    if sources:
        body = _grid(body, _figure("sources", charts.stacked(list(sources), {"written": [s["written"] for s in sources.values()],
                                                                             "rejected": [s["rejected"] for s in sources.values()]}, "rows per source")))
    inputs = page.get("inputs") or []
    if inputs:
        body += "<h3>inputs</h3>" + _table(
            ["input", "converter", "written", "rejected"],
            [[_td(i["file"]), _td(i["converter"]), _num(f"input.{i['file']}.written", i["written"]), _num(f"input.{i['file']}.rejected", i["rejected"])]
             for i in inputs], {2, 3})
    return _section("sources", "Per source", body)


def _reason_filter(reason: str, rejects: str) -> str:
    pattern = f'"reason":"{reason}:' if reason in ("duplicate_of", "near_duplicate_of") else f'"reason":"{reason}"'
    return f"grep -F '{pattern}' {rejects}"


def _rejects(page: dict[str, Any]) -> str:
    by_reason = page["counts"].get("by_reason") or {}
    if not by_reason:
        return _section("rejects", "Rejects", "<p>Nothing was rejected.</p>")
    ordered = sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    rejects = page.get("rejects_file") or "rejects.jsonl"
    link = f'<p>All rejects are in <a href="{escape(rejects)}">{escape(rejects)}</a>, one JSON line each (reason, source, file, line, raw record).</p>'
    body = link + _grid(
        _table(["reason", "rows", "show them"],
               [[_td(r), _num(f"reason.{r}", n), f"<td><code>{escape(_reason_filter(r, rejects))}</code></td>"] for r, n in ordered], {1}),
        _figure("rejects", charts.bars([r for r, _ in ordered], [n for _, n in ordered], "rejects per reason", color=charts.COLORS["rejected"])))
    examples = page["rejects"]["examples"]
    for reason, _n_ in ordered:
        items = examples.get(reason) or []
        if not items:
            continue
        body += f'<details data-reason="{escape(reason)}"><summary><b>{escape(reason)}</b> — first {len(items)} of {by_reason[reason]:,}</summary>'
        for ex in items:
            head = f"{ex['source']} {ex['where']}" + (f" id={ex['id']}" if ex["id"] else "") + (f" [{ex['reason']}]" if ex["reason"] != reason else "")
            body += f'<p class="muted">{escape(head)}{(" — " + escape(ex["detail"])) if ex["detail"] else ""}</p>' + _pre(ex["raw"])
        body += "</details>"
    return _section("rejects", "Rejects", body)


def _bin_labels(edges: list[int]) -> list[str]:
    labels = []
    for a, b in zip(edges, edges[1:]):
        labels.append(str(a) if b == a + 1 else f"{a}–{b - 1}")
    return labels


def _lengths(page: dict[str, Any]) -> str:
    stats = page["stats"]
    body = f'<p>{stats["rows"]:,} rows in <span data-key="rows" data-value="{stats["rows"]}">{escape(page["output"])}</span>.</p>'
    for kind, unit in (("lengths", "characters"), ("tokens", "tokens")):
        got = stats.get(kind) or {}
        if not got:
            continue
        if kind == "tokens":
            body += f"<h3>tokens ({escape(page.get('tokenizer') or '')})</h3>"
        rows = [[_td(name)] + [_num(f"{kind}.{name}.{k}", s.get(k, 0)) for k in ("mean", "p50", "p90", "p99", "max", "empty")] for name, s in got.items()]
        body += _table([f"{unit} of", "mean", "median", "p90", "p99", "max", "empty"], rows, {1, 2, 3, 4, 5, 6})
        figs = [_figure(f"{kind}-{name}", charts.histogram(_bin_labels(s["histogram"][0]), s["histogram"][1], f"{name}: {unit}", unit))
                for name, s in got.items() if s.get("rows")]
        body += f'<div class="grid">{"".join(figs)}</div>'
    return _section("lengths", "Lengths", body)


def _hangul(page: dict[str, Any]) -> str:
    got = page["stats"].get("hangul") or {}
    if not got:
        return ""
    n = len(next(iter(got.values()))["counts"])
    labels = [f"{i * 100 // n}–{(i + 1) * 100 // n}%" for i in range(n)]
    figs = [_figure(f"hangul-{name}", charts.histogram(labels, h["counts"], f"{name}: Hangul share of letters", "Hangul share", color=charts.COLORS["hangul"]))
            for name, h in got.items() if h["sampled"]]
    first = next(iter(got.values()))
    sample = ("every row" if first["stride"] == 1 else f"every {first['stride']}th row (a deterministic sample)")
    lines = []
    for name, h in got.items():
        low = sum(h["counts"][: n // 2])
        lines.append(f'{escape(name)}: <span data-key="hangul.{escape(name)}.below50" data-value="{low}">{low:,}</span> of '
                     f'<span data-key="hangul.{escape(name)}.sampled" data-value="{h["sampled"]}">{h["sampled"]:,}</span> under 50%')
    text = (f"<p>Share of Hangul among the letters of each non-empty text (as <code>--min-hangul</code> measures it), "
            f"computed for {sample}. " + "; ".join(lines) + ".</p>")
    return _section("hangul", "Hangul share", text + _grid(*figs))


def _labels(page: dict[str, Any]) -> str:
    counts = page["stats"].get("counts") or {}
    figs, tables = [], []
    for name, title in (("category", "categories"), ("domain", "domains")):
        got = counts.get(name)
        if not got:
            continue
        top = list(got.items())[:20]
        labels = [k if k else "(none)" for k, _ in top]
        figs.append(_figure(name, charts.bars(labels, [v for _, v in top], title + (f" (top 20 of {len(got)})" if len(got) > 20 else ""))))
        tables.append(_table([name, "rows"], [[_td(k if k else "(none)"), _num(f"{name}.{k}", v)] for k, v in top], {1}))
    if not figs:
        return ""
    return _section("labels", "Categories and domains", f'<div class="grid">{"".join(figs)}</div><div class="grid">{"".join(tables)}</div>')


def _dedup(page: dict[str, Any]) -> str:
    by_reason = page["counts"].get("by_reason") or {}
    rows = [[_td(label), _num(f"reason.{key}", by_reason.get(key, 0))] for key, label in (("duplicate_of", "exact duplicates dropped"),
                                                                                      ("near_duplicate_of", "near duplicates dropped"))]
    body = _table(["", "rows"], rows, {1})
    filters = {f["name"]: f.get("settings") for f in page.get("filters") or []}
    for name in ("dedup", "near_dup"):
        if name in filters:
            body += f'<p class="muted">{escape(name)}: <code>{escape(json.dumps(filters[name], ensure_ascii=False, sort_keys=True))}</code></p>'
    kept = page.get("kept") or {}
    for key, title in (("duplicate_of", "exact duplicates"), ("near_duplicate_of", "near duplicates")):
        items = page["rejects"]["duplicates"].get(key) or []
        if not items:
            continue
        body += f"<h3>{escape(title)}: kept and dropped</h3>"
        for ex in items:
            k = kept.get(ex["kept_id"])
            left = (f'<h4>kept: id={escape(ex["kept_id"])} {escape(k["where"]) if k else ""}</h4>'
                    + _pre(f"{k['instruction']}\n\n{k['context']}\n\n{k['response']}".replace("\n\n\n\n", "\n\n") if k else "(not in the output)"))
            right = f'<h4>dropped: {escape(ex["where"])}{(" id=" + escape(ex["id"])) if ex["id"] else ""}</h4>' + _pre(ex["raw"])
            body += f'<div class="pair"><div>{left}</div><div>{right}</div></div>'
    return _section("dedup", "Duplicates", body)


def _splits(page: dict[str, Any]) -> str:
    got = (page["stats"].get("counts") or {}).get("split") or {}
    if not got:
        return _section("splits", "Splits", "<p>The output has no split column.</p>")
    body = _grid(_table(["split", "rows"], [[_td(k), _num(f"split.{k}", v)] for k, v in got.items()], {1}),
                 _figure("splits", charts.bars(list(got), list(got.values()), "rows per split")))
    return _section("splits", "Splits", body)


def _dpo(page: dict[str, Any]) -> str:
    d = page["dpo"]
    tokens = d.get("tokens") or {}
    facts = [
        ("mode", d.get("mode")), ("model", d.get("model")), ("server", d.get("base_url_host")), ("layout", d.get("layout")),
        ("requests", d.get("requests")), ("cache hits", d.get("cache_hits")), ("retries", d.get("retries")),
        ("prompt tokens", tokens.get("prompt")), ("completion tokens", tokens.get("completion")),
        ("cost (USD)", d.get("cost_usd")), ("batch ids", ", ".join(d.get("batch_ids") or []) or "—"),
    ]
    keys = {"requests": "dpo.requests", "cache hits": "dpo.cache_hits", "prompt tokens": "dpo.tokens.prompt",
            "completion tokens": "dpo.tokens.completion", "cost (USD)": "dpo.cost_usd", "model": "dpo.model", "batch ids": "dpo.batch_ids"}
    rows = [[_td(k), _num(keys[k], v if v is not None else "—", "") if k in keys else _td(v if v is not None else "—")] for k, v in facts]
    body = _table(["", ""], rows)
    by_reason = page["counts"].get("by_reason") or {}
    dpo_reasons = sorted(((r, n) for r, n in by_reason.items() if r.startswith("dpo_")), key=lambda kv: (-kv[1], kv[0]))
    if dpo_reasons:
        kinds = [("check" if r.startswith("dpo_translation_") else "API" if r in ("dpo_api_error", "dpo_batch_failed", "dpo_budget_exceeded") else "skip")
                 for r, _ in dpo_reasons]
        body += "<h3>skipped and checked</h3>" + _grid(
            _table(["reason", "kind", "rows"], [[_td(r), _td(k), _num(f"reason.{r}", n)] for (r, n), k in zip(dpo_reasons, kinds)], {2}),
            _figure("dpo-reasons", charts.bars([r for r, _ in dpo_reasons], [n for _, n in dpo_reasons], "DPO skip and check reasons", color=charts.COLORS["dpo"])))
    pairs = page["stats"].get("pairs") or []
    if pairs:
        body += "<h3>pairs</h3>"
        for p in pairs:
            body += (f'<p class="muted">id={escape(p["id"])}</p>{_pre(p["prompt"])}<div class="pair" data-pair="{escape(p["id"])}">'
                     f'<div><h4>chosen</h4>{_pre(p["chosen"])}</div><div><h4>rejected</h4>{_pre(p["rejected"])}</div></div>')
    return _section("dpo", "DPO", body)


def _settings(page: dict[str, Any]) -> str:
    m = page["manifest"]
    facts = [("kodolly", m.get("kodolly_version")), ("python", m.get("python")), ("created", m.get("created")),
             ("engine", json.dumps(m.get("engine"), sort_keys=True) if m.get("engine") else "—"),
             ("output format", (m.get("output") or {}).get("format")), ("dolly only", (m.get("output") or {}).get("dolly_only"))]
    if page.get("tokenizer"):
        facts.append(("tokenizer", page["tokenizer"]))
    body = _table(["", ""], [[_td(k), _td(v)] for k, v in facts])
    inputs = m.get("inputs") or []
    if inputs:
        body += "<h3>inputs</h3>" + _table(["input", "bytes", "xxh3-128"], [[_td(i.get("name")), _num(f"inputs.{i.get('name')}.bytes", i.get("bytes")), _td(i.get("xxh3_128", ""))] for i in inputs], {1})
    files = [*((m.get("output") or {}).get("files") or []), *(m[k] for k in ("rejects", "report") if m.get(k))]
    if files:
        body += "<h3>files</h3>" + _table(["file", "rows", "bytes", "xxh3-128"],
                                          [[_td(f.get("path")), _td(f.get("rows", "")), _td(f.get("bytes")), _td(f.get("xxh3_128", ""))] for f in files])
    shown = {k: m[k] for k in ("converter", "groups", "filters", "limits") if m.get(k) is not None}
    if m.get("dpo") is None and m.get("converter", {}).get("name") == "build-dpo":
        shown.pop("groups", None)
    body += "<h3>converter and filters</h3>" + _pre(json.dumps(shown, ensure_ascii=False, indent=2, sort_keys=True))
    return _section("settings", "Settings and versions", body)


__all__ = ["render"]
