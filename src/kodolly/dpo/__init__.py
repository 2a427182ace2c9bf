"""The DPO builder (``kodolly build-dpo``): Korean response = ``chosen``, its English translation = ``rejected``.

Modules: :mod:`.client` (the translator and its retry policy), :mod:`.engine` (thread pool, in-flight
dedupe, budget, rate limits), :mod:`.cache` (SQLite), :mod:`.batch` (Batch API), :mod:`.checks` (skip
rules and translation checks), :mod:`.pricing` (price table, budget), :mod:`.ratelimit`, :mod:`.tokens`,
:mod:`.pairs` (ranked / existing pairs, no API), :mod:`.output` (layouts, writers), :mod:`.builder`.
Needs the ``dpo`` extra (``openai``, ``tiktoken``) for translation only.
"""

from .builder import DpoOptions, DpoResult, build_dpo

__all__ = ["DpoOptions", "DpoResult", "build_dpo"]
