"""The dataset card (``README.md``) of a Hub folder, generated from the manifest and the rows.

The YAML front matter is what the Hub and ``datasets`` read: ``configs`` (which files make which
split), ``dataset_info`` (features, per-split row counts and sizes), ``license``, ``language``,
``task_categories``, ``tags``. The body says what the set is, where its rows come from with their
licences and counts, which converter and filters made it with which settings, what was rejected
and why, and for DPO sets the translation model, batch ids and cost. Nothing here is hand-kept:
rebuild the folder and the card follows.

No secret goes in: converter and filter settings come from the manifest (which never holds one),
and any setting whose name looks like a credential is left out all the same.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from ..errors import require
from ..licenses import RESTRICTIONS, explain, hub_license_id, hub_license_ids, parts

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from .folder import FolderResult

# Secrets are matched by value, never by a setting's name (a dedup `key` is no secret): the values of the
# environment variables kodolly reads secrets from, and anything shaped like an OpenAI or Hub token.
SECRET_ENV_VARS = ("OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
_TOKEN_SHAPES = re.compile(r"\b(?:sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,})")

_FIELD_DOCS = {
    "instruction": "the user's request",
    "context": "supporting text the answer is drawn from (`\"\"` when none)",
    "response": "the answer",
    "category": "Dolly task type (`open_qa`, `closed_qa`, ...)",
    "source": "the kodolly converter / source dataset the row came from",
    "id": "stable id: the source's own id where it has one, else derived from the record's place",
    "domain": "the source's subject label where it has one",
    "score": "the source's quality score where it has one, else null",
    "license": "the licence of the row's source",
    "meta": "JSON string: anything else worth keeping (title, url, file and line, ...)",
    "messages": "the earlier turns of a conversation row as `[{role, content}]` (system / user / assistant); `[]` for single-turn rows",
    "rejected": "the dispreferred answer of a preference pair",
    "prompt": "the prompt of a preference pair",
    "chosen": "the preferred answer of a preference pair",
}


def size_category(rows: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]
    for bound, label in bounds:
        if rows < bound:
            return label
    return "100M<n<1B"


def _redact(value: Any, secrets: tuple[str, ...] | None = None) -> Any:
    if secrets is None:
        import os

        secrets = tuple(v for v in (os.environ.get(name, "") for name in SECRET_ENV_VARS) if len(v) >= 8)
    if isinstance(value, dict):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "<redacted>")
        return _TOKEN_SHAPES.sub("<redacted>", value)
    return value


def _json(value: Any) -> str:
    return json.dumps(_redact(value), ensure_ascii=False, sort_keys=True)


def is_dpo(result: "FolderResult") -> bool:
    return "dpo" in result.manifest or ("chosen" in result.schema.names and "rejected" in result.schema.names) or (
        "rejected" in result.schema.names and "response" in result.schema.names
    )


def card_features(schema: "pa.Schema") -> list[dict[str, Any]]:
    """The card's ``dataset_info.features``: the columns as ``datasets`` reads them back from the YAML.

    ``datasets`` has no public call for this YAML form, so it is built here from the public
    ``Features.to_dict()`` of the schema: a value is ``dtype: string``, a list ``list: <item>`` (a list of
    one dtype as ``list: string``, a list of structs as ``list: [fields]``), a struct ``struct: [fields]``,
    each field ``{name, ...}`` in column order. A feature kind kodolly never writes (class labels, images,
    ...) is refused rather than written wrong.
    """
    datasets = require("datasets", "hub")
    features = datasets.Features.from_arrow_schema(schema).to_dict()
    return [{"name": name, **_yaml_feature(name, f)} for name, f in features.items()]


_LIST_KEYS = {"List": "list", "LargeList": "large_list", "Sequence": "sequence"}


def _yaml_feature(name: str, feature: Any) -> dict[str, Any]:
    if isinstance(feature, list) and len(feature) == 1:  # datasets 3: `[feature]` is a list of it
        return _yaml_list("list", name, feature[0], -1)
    kind = feature.get("_type") if isinstance(feature, dict) else None
    if kind == "Value":
        return {"dtype": feature["dtype"]}
    if kind in _LIST_KEYS:
        return _yaml_list(_LIST_KEYS[kind], name, feature["feature"], feature.get("length", -1))
    if kind is None and isinstance(feature, dict):  # a struct: its fields by name
        return {"struct": [{"name": k, **_yaml_feature(k, v)} for k, v in feature.items()]}
    raise ValueError(f"column {name!r}: no dataset card YAML for a {kind or type(feature).__name__} feature")


def _yaml_list(key: str, name: str, item: Any, length: int | None) -> dict[str, Any]:
    inner = _yaml_feature(name, item)
    if list(inner) == ["dtype"]:
        inner = inner["dtype"]
    elif list(inner) == ["struct"]:
        inner = inner["struct"]
    out: dict[str, Any] = {key: inner}
    if length not in (None, -1):
        out["length"] = length
    return out


def front_matter(result: "FolderResult", title: str) -> dict[str, Any]:
    dpo = is_dpo(result)
    licenses = sorted({s.license for s in result.licenses.sources})
    tags = ["kodolly", "korean", "instruction-tuning"] + (["dpo", "preference"] if dpo else ["dolly"])
    info: dict[str, Any] = {
        "features": card_features(result.schema),
        "splits": [{"name": s.name, "num_bytes": s.num_bytes, "num_examples": s.rows} for s in result.splits.values()],
        "download_size": sum(s.file_bytes for s in result.splits.values()),
        "dataset_size": sum(s.num_bytes for s in result.splits.values()),
    }
    meta: dict[str, Any] = {
        "pretty_name": title,
        "language": ["ko"],
        "license": hub_license_ids(licenses),
        "task_categories": ["text-generation"] if dpo else ["text-generation", "question-answering"],
        "size_categories": [size_category(result.rows)],
        "tags": tags,
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s.name, "path": f"data/{s.name}-*"} for s in result.splits.values()],
            }
        ],
        "dataset_info": info,
    }
    others = [p for lic in licenses for p in parts(lic) if hub_license_id(p) == "other"]
    if others:  # the Hub asks for a name for licences outside its list
        meta["license_name"] = "-".join(re.sub(r"[^a-z0-9.]+", "-", p.lower()).strip("-") for p in others)
    return meta


def render_card(result: "FolderResult", *, title: str | None = None, repo_id: str | None = None) -> str:
    """The whole README.md: YAML front matter and a Markdown body."""
    yaml = require("yaml", "hub")
    title = title or (repo_id.split("/")[-1] if repo_id else result.folder.name)
    meta = front_matter(result, title)
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{head}---\n\n" + _body(result, title, repo_id)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return out


def _body(result: "FolderResult", title: str, repo_id: str | None) -> str:
    m = result.manifest
    counts = m.get("counts", {})
    conv = m.get("converter") or {}
    dpo = is_dpo(result)
    kind = "Korean preference pairs (DPO)" if dpo else "Korean instruction data in Dolly format"
    lines = [f"# {title}", ""]
    lines.append(
        f"{kind}: {result.rows:,} rows, built with kodolly "
        f"{m.get('kodolly_version', '?')} on {m.get('created', '?')} from {len(m.get('inputs', []))} input file(s). "
        "This card is generated from the run's manifest (`kodolly.manifest.json` in this repository); "
        "rebuild the folder rather than editing it."
    )
    lines += ["", "## Splits", ""]
    lines += _table(["split", "rows", "shards"], [[s.name, f"{s.rows:,}", len(s.shards)] for s in result.splits.values()])

    lines += ["", "## Sources and licences", ""]
    per_source = counts.get("sources", {})
    rows = []
    for s in result.licenses.sources:
        t = per_source.get(s.source, {})
        restr = ", ".join(r for r in RESTRICTIONS if r in s.restrictions) or "-"
        rows.append([s.source or "(none)", s.license or "unknown", f"{s.rows:,}", t.get("read", "-"), t.get("rejected", "-"), restr])
    lines += _table(["source", "licence", "rows here", "read", "rejected", "restrictions"], rows)
    if result.licenses.restricted:
        lines += ["", "**Licence restrictions.** Some sources restrict what may be done with this set:", ""]
        for s in result.licenses.restricted:
            why = "; ".join(explain(r) for r in RESTRICTIONS if r in s.restrictions)
            lines.append(f"- `{s.source}` ({s.license}): {why}.")
        lines += ["", "Check the source licences before using or sharing this dataset."]
    if result.licenses.unknown:
        lines += ["", "Sources with no known licence: " + ", ".join(f"`{s.source or '(none)'}`" for s in result.licenses.unknown) + "."]

    lines += ["", "## How it was made", ""]
    if conv:
        lines.append(f"- Converter: `{conv.get('name', '?')}` with options `{_json(conv.get('options', {}))}`")
        if conv.get("category_override"):
            lines.append(f"- Category override: `{conv['category_override']}`")
    filters = m.get("filters") or []
    if filters:
        lines.append("- Filters, in order:")
        for f in filters:
            lines.append(f"  - `{f.get('name')}`: `{_json(f.get('settings', {}))}`")
    else:
        lines.append("- Filters: none")
    pii = next((f for f in filters if f.get("name") == "pii"), None)
    if pii:
        ps = pii.get("settings", {})
        lines.append(f"- Personal data: `{ps.get('action')}` ({', '.join(ps.get('kinds', []))}; placeholders `{ps.get('placeholders')}`)")
    else:
        lines.append("- Personal data: no PII step ran on these rows.")
    out = m.get("output") or {}
    if out.get("dolly_only"):
        lines.append("- Only the four Dolly fields were written (`--dolly-only`).")
    lines += ["", "### Counts", ""]
    lines.append(
        f"Read {counts.get('read', '?'):,} items from {counts.get('records', '?'):,} input records; "
        f"wrote {counts.get('written', '?'):,}; rejected {counts.get('rejected', '?'):,}."
        if all(isinstance(counts.get(k), int) for k in ("read", "records", "written", "rejected"))
        else f"Counts: `{_json(counts)}`"
    )
    by_reason = counts.get("by_reason") or {}
    dups = sum(n for r, n in by_reason.items() if "dup" in r)
    if by_reason:
        lines.append(f"Duplicates removed: {dups:,}.")
        lines += [""] + _table(["reject reason", "rows"], [[r, f"{n:,}"] for r, n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))])
    else:
        lines.append("Nothing was rejected.")

    dpo_info = m.get("dpo")
    if dpo_info:
        lines += ["", "## Preference pairs", ""]
        tokens = dpo_info.get("tokens") or {}
        lines.append(f"- Mode: `{dpo_info.get('mode')}`; layout: `{dpo_info.get('layout')}`")
        if dpo_info.get("model"):
            host = f" via `{dpo_info['base_url_host']}`" if dpo_info.get("base_url_host") else ""
            lines.append(f"- Translation model: `{dpo_info['model']}`{host}")
        if dpo_info.get("batch_ids"):
            lines.append("- Batch ids: " + ", ".join(f"`{b}`" for b in dpo_info["batch_ids"]))
        lines.append(
            f"- Requests: {dpo_info.get('requests', 0):,} (cache hits {dpo_info.get('cache_hits', 0):,}, "
            f"retries {dpo_info.get('retries', 0):,}); tokens: {tokens.get('prompt', 0):,} prompt + "
            f"{tokens.get('completion', 0):,} completion"
        )
        cost = dpo_info.get("cost_usd")
        if cost is not None:
            lines.append(f"- Cost: ${cost:,.4f} (USD, from kodolly's price table)")

    lines += ["", "## Fields", ""]
    lines += _table(["field", "type", "meaning"], [[f.name, str(f.type), _FIELD_DOCS.get(f.name, "")] for f in result.schema])

    lines += ["", "## Inputs", ""]
    lines += _table(["input", "bytes", "xxh3-128"], [[i.get("name"), f"{i.get('bytes', 0):,}", f"`{i.get('xxh3_128', '')}`"] for i in m.get("inputs", [])])

    lines += ["", "## Use", "", "```python", "from datasets import load_dataset", ""]
    lines.append(f'ds = load_dataset("{repo_id}")' if repo_id else 'ds = load_dataset("path/to/this/folder")')
    lines += ["```", ""]
    return "\n".join(lines)
