"""Preference pairs without any API: from ranked answers (AI Hub RM) or from an existing ``rejected``.

``ranked`` reads ``meta["ranked_answers"] = [{"rank": 1, "text": ...}, ...]`` (1 = best): by default one
pair, best vs worst; with ``all_pairs`` every ordered pair (better, worse), each with the id
``<id>:<rank_better>><rank_worse>``. ``existing`` reads ``meta["rejected"]`` or a ``rejected`` column;
``chosen`` is the row's ``response``.

Reasons: ``dpo_no_ranked_answers`` (fewer than two usable answers), ``dpo_no_rejected`` (no rejected
answer), ``dpo_rejected_equals_chosen`` (nothing to prefer).
"""

from __future__ import annotations

from typing import Any

from ..rows import load_meta

PAIR_REASONS = ("dpo_no_ranked_answers", "dpo_no_rejected", "dpo_rejected_equals_chosen")


def ranked_pairs(row: dict[str, Any], all_pairs: bool = False) -> list[tuple[str, str, str]] | str:
    """``[(chosen, rejected, id), ...]`` or a reason."""
    answers = load_meta(row).get("ranked_answers") or []
    usable = []
    for a in answers:
        if isinstance(a, dict) and isinstance(a.get("text"), str) and a["text"].strip():
            try:
                usable.append((int(a.get("rank")), a["text"].strip()))
            except (TypeError, ValueError):
                continue
    usable.sort(key=lambda a: a[0])
    if len(usable) < 2:
        return "dpo_no_ranked_answers"
    rid = row.get("id", "")
    if not all_pairs:
        best, worst = usable[0][1], usable[-1][1]
        if best == worst:
            return "dpo_rejected_equals_chosen"
        return [(best, worst, rid)]
    pairs = []
    for i, (rank_i, better) in enumerate(usable):
        for rank_j, worse in usable[i + 1:]:
            if better != worse and rank_i != rank_j:
                pairs.append((better, worse, f"{rid}:{rank_i}>{rank_j}"))
    return pairs or "dpo_rejected_equals_chosen"


def existing_pair(row: dict[str, Any]) -> list[tuple[str, str, str]] | str:
    rejected = row.get("rejected")
    if not isinstance(rejected, str) or not rejected.strip():
        rejected = load_meta(row).get("rejected")
    if not isinstance(rejected, str) or not rejected.strip():
        return "dpo_no_rejected"
    chosen = row.get("response") or ""
    if chosen.strip() == rejected.strip():
        return "dpo_rejected_equals_chosen"
    return [(chosen, rejected.strip(), row.get("id", ""))]
