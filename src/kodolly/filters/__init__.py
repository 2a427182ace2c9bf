"""Filters, deduplication and the split step, and the one list of the reasons they give.

Every filter implements the pipeline's ``Filter`` seam (``name``, ``settings()``,
``apply(rows) -> [reason | None]``). :func:`build_filters` turns settings (from the API, the
command line or a run config file, all the same shape) into the chain a run uses, in this order —
cheap checks first, stateful ones last, so a row rejected for its content never takes a place in
the dedup state:

    score -> category -> domain -> content -> pii -> dedup -> near_dup -> split

(``pii`` masks before dedup, so rows that differ only in a phone number become one row.)

=====================================  ==================================================================
reason                                 meaning
=====================================  ==================================================================
``no_score``                           score filter on, the row has no score (unless ``keep_unscored``)
``score_below``                        ``score <= min_score`` (rows are kept when ``score > min_score``)
``category_excluded``                  the row's category is in the exclude list
``category_not_included``              an include list is given and the row's category is not in it
``domain_excluded``                    the row's domain is in the exclude list
``domain_not_included``                an include list is given and the row's domain is not in it
``content_empty_instruction``          empty instruction (rows given to the filter directly)
``content_empty_response``             empty response (rows given to the filter directly)
``content_lfs_pointer``                a text field is a Git-LFS pointer, not data
``content_response_equals_instruction``  the response repeats the instruction
``content_too_short:<field>``          shorter than ``min_chars`` (field, or ``total``)
``content_too_long:<field>``           longer than ``max_chars`` (field, or ``total``)
``content_hangul_share:<field>``       Hangul share of the field's letters below ``min_hangul``
``pii_<kind>``                         ``pii`` with ``action = "reject"``: the row holds a ``<kind>`` identifier
``duplicate_of:<id>``                  same normalised key as the earlier row ``<id>`` (tally: ``duplicate_of``)
``near_duplicate_of:<id>``             MinHash-similar to the earlier row ``<id>`` (tally: ``near_duplicate_of``)
=====================================  ==================================================================
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import ConfigError
from .content import ContentFilter
from .dedup import DedupFilter
from .labels import LabelFilter
from .pii import PiiFilter
from .score import ScoreFilter

REASONS: dict[str, str] = {
    "no_score": "score filter on, the row has no score (kept with keep_unscored)",
    "score_below": "score <= min_score (rows are kept when score > min_score)",
    "category_excluded": "the row's category is in the exclude list",
    "category_not_included": "an include list is given and the row's category is not in it",
    "domain_excluded": "the row's domain is in the exclude list",
    "domain_not_included": "an include list is given and the row's domain is not in it",
    "content_empty_instruction": "empty instruction",
    "content_empty_response": "empty response",
    "content_lfs_pointer": "a text field is a Git-LFS pointer, not data",
    "content_response_equals_instruction": "the response repeats the instruction",
    "content_too_short:<field>": "shorter than min_chars for the field (instruction, context, response or total)",
    "content_too_long:<field>": "longer than max_chars for the field (instruction, context, response or total)",
    "content_hangul_share:<field>": "the Hangul share of the field's letters is below min_hangul",
    "pii_<kind>": "pii step with action reject: the row holds a personal identifier of <kind> (rrn, frn, phone, email, ipv4, card, brn, passport)",
    "duplicate_of:<id>": "the same normalised key as the earlier row <id> (tallied as duplicate_of)",
    "near_duplicate_of:<id>": "MinHash-similar to the earlier row <id> (tallied as near_duplicate_of)",
}

FILTER_ORDER = ("score", "category", "domain", "content", "pii", "dedup", "near_dup", "split")
SECTIONS = frozenset(FILTER_ORDER)


def build_filters(settings: Mapping[str, Any] | None = None) -> list[Any]:
    """The filter chain for ``settings``: a mapping with any of these sections (all optional)::

        score    = {min = 30, keep_unscored = false}
        category = {include = [...], exclude = [...]}
        domain   = {include = [...], exclude = ["예체능", "종교", "보건"]}
        content  = {min_chars = {response = 2}, max_chars = {total = 8000},
                    min_hangul = {response = 0.5}, lfs_pointers = true, echo = true}
        pii      = {action = "mask", placeholders = "ko", format_only = false, normalize_tags = false}
        dedup    = {enabled = true, key = ["instruction", "context", "response"]}
        near_dup = {threshold = 0.8, shingle = 3, num_perm = 256, check_bits = 4, fields = ["instruction", "response"]}
        split    = {train = 0.9, validation = 0.1}

    Defaults: no score, label, PII or near-dup filter; the content filter with only the LFS-pointer and
    echo checks; exact dedup on the default key; every row in ``train``. A section set to
    ``false`` (or ``{enabled = false}``) turns that step off.
    """
    settings = dict(settings or {})
    unknown = set(settings) - SECTIONS
    if unknown:
        raise ConfigError(f"unknown filter section(s) {', '.join(sorted(unknown))} (sections: {', '.join(FILTER_ORDER)})")
    chain: list[Any] = []

    score = _section(settings, "score", default=None)
    if score is not None:
        if "min" not in score:
            raise ConfigError("score filter: give the minimum as min = T (rows with score > T are kept)")
        chain.append(ScoreFilter(score["min"], keep_unscored=score.get("keep_unscored", False)))
    for name in ("category", "domain"):
        labels = _section(settings, name, default=None)
        if labels is not None and (labels.get("include") or labels.get("exclude")):
            chain.append(LabelFilter(name, include=labels.get("include"), exclude=labels.get("exclude")))
    content = _section(settings, "content", default={})
    if content is not None:
        chain.append(ContentFilter(**_only(content, "content", ("min_chars", "max_chars", "min_hangul", "lfs_pointers", "echo"))))
    pii = _section(settings, "pii", default=None)
    if pii is not None:
        chain.append(PiiFilter(**_only(pii, "pii", ("action", "placeholders", "kinds", "format_only", "normalize_tags", "fields"))))
    dedup = _section(settings, "dedup", default={})
    if dedup is not None:
        chain.append(DedupFilter(**_only(dedup, "dedup", ("key",))))
    near = _section(settings, "near_dup", default=None)
    if near is not None:
        from .near_dup import NearDupFilter

        if "threshold" not in near:
            raise ConfigError("near_dup: give the Jaccard threshold, e.g. threshold = 0.8 (--near-dup 0.8)")
        chain.append(NearDupFilter(**_only(near, "near_dup", ("threshold", "shingle", "num_perm", "check_bits", "fields"))))
    split = settings.get("split")
    if split is not False:
        from ..splits import Splitter

        chain.append(Splitter(split or None))
    return chain


def _section(settings: Mapping[str, Any], name: str, *, default: Any) -> dict[str, Any] | None:
    value = settings.get(name, default)
    if value is None or value is False:
        return None
    if value is True:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"filter section {name!r} must be a table of settings, true or false, not {value!r}")
    value = dict(value)
    if value.pop("enabled", True) is False:
        return None
    return value


def _only(section: dict[str, Any], name: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    unknown = set(section) - set(allowed)
    if unknown:
        raise ConfigError(f"{name}: unknown setting(s) {', '.join(sorted(unknown))} (settings: {', '.join(allowed)})")
    return section


__all__ = [
    "REASONS", "FILTER_ORDER", "build_filters",
    "ScoreFilter", "LabelFilter", "ContentFilter", "DedupFilter", "PiiFilter",
]
