"""Which rows to skip before translating, and whether a translation is usable.

Skip reasons (checked in this order, before any request):

``dpo_empty_response``     the response is empty
``dpo_asks_for_english``   the instruction asks for English or a translation (영어로, 영문, 번역, translate,
                           in English, ...): an English answer is right there, so it is no "rejected" answer
``dpo_code_response``      the response is mostly code (fenced blocks or code-like lines >= 50% of lines)
``dpo_not_korean``         the response is not Korean (Hangul share of its letters < 0.5)

Translation reasons (a bad translation is asked for once more, then rejected with its reason):

``dpo_translation_empty``      nothing came back
``dpo_translation_echo``       the Korean came back (mostly Hangul, or the same text)
``dpo_translation_not_latin``  less than 70% of the letters are Latin
``dpo_translation_refusal``    a refusal ("I'm sorry, but I can't ...") where the Korean was no refusal
"""

from __future__ import annotations

import re

from ..normalize import hangul_share
from ..scrub import scrub_secret

SKIP_REASONS = ("dpo_empty_response", "dpo_asks_for_english", "dpo_code_response", "dpo_not_korean")
TRANSLATION_REASONS = (
    "dpo_translation_empty",
    "dpo_translation_echo",
    "dpo_translation_not_latin",
    "dpo_translation_refusal",
)

_ASKS_FOR_ENGLISH = re.compile(
    r"영어로|영어 ?번역|영문|영작|번역|英語|"
    r"(?<![a-z])(translat(e|ion|ing)|in english|into english|english (version|translation))(?![a-z])",
    re.IGNORECASE,
)
_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import |#include|public |private |function |return\b|for \(|if \(|"
    r"while \(|const |let |var |SELECT |INSERT |<\w+[^>]*>|[}\]);]+$)"
    r"|[;{]\s*$|^\s*(//|/\*|\*)|=>|==|!=|\w+\(.*\)\s*[:;{]?\s*$",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry, (but )?i|i apologi[sz]e|i can(no|')t|i am unable|i'?m unable|"
    r"i'?m not able|i am not able|as an ai\b|unfortunately, i)",
    re.IGNORECASE,
)
_KOREAN_REFUSAL = re.compile(r"죄송|미안|할 수 없|드릴 수 없|불가능|어렵습니다")

MIN_HANGUL_SHARE = 0.5
MAX_CODE_SHARE = 0.5
MIN_LATIN_SHARE = 0.7
ECHO_HANGUL_SHARE = 0.5


def code_share(text: str) -> float:
    """Share of non-empty lines that are inside ``` fences or look like code."""
    lines = text.split("\n")
    total = code = 0
    fenced = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("```"):
            fenced = not fenced
            total += 1
            code += 1
            continue
        if not stripped:
            continue
        total += 1
        if fenced or _CODE_LINE.search(line):
            code += 1
    return code / total if total else 0.0


def skip_reason(instruction: str, response: str) -> str | None:
    """Why a row gets no translated ``rejected`` answer, or None to translate it."""
    if not response.strip():
        return "dpo_empty_response"
    if _ASKS_FOR_ENGLISH.search(instruction):
        return "dpo_asks_for_english"
    if code_share(response) >= MAX_CODE_SHARE:
        return "dpo_code_response"
    if hangul_share(response) < MIN_HANGUL_SHARE:
        return "dpo_not_korean"
    return None


def latin_share(text: str) -> float:
    letters = latin = 0
    for ch in text:
        if ch.isalpha():
            letters += 1
            if ch.isascii() or "\u00c0" <= ch <= "\u024f":
                latin += 1
    return latin / letters if letters else 0.0


def translation_problem(korean: str, english: str | None, secret: str | None = None) -> str | None:
    """Why ``english`` is not a usable translation of ``korean``, or None when it is. A translation that
    holds ``secret`` (the API key, in any form :mod:`kodolly.scrub` knows) never goes into a dataset."""
    text = (english or "").strip()
    if not text:
        return "dpo_translation_empty"
    if secret and scrub_secret(text, secret) != text:
        return "dpo_translation_has_key"
    if text == korean.strip() or hangul_share(text) >= ECHO_HANGUL_SHARE:
        return "dpo_translation_echo"
    if latin_share(text) < MIN_LATIN_SHARE:
        return "dpo_translation_not_latin"
    if _REFUSAL.search(text) and not _KOREAN_REFUSAL.search(korean):
        return "dpo_translation_refusal"
    return None
