"""Personal data: find Korean identifiers in instruction, context and response, and mask, reject or count them.

Kinds (``KINDS``), each found by a regular expression compiled once and, where the identifier has
one, confirmed by its checksum so shaped-alike noise is not flagged:

==============  ==========================================================================================
``rrn``         주민등록번호: ``YYMMDD-GNNNNNN`` with or without the hyphen; the birth date must exist (the
                century from the 7th digit: 1/2 → 1900s, 3/4 → 2000s, 9/0 → 1800s) and the check digit
                must hold (weights 2..9,2..5; ``(11 - sum % 11) % 10``)
``frn``         외국인등록번호: the same shape with 7th digit 5–8 and the foreigner check digit
                (``(13 - sum % 11) % 10``)
``phone``       mobile ``010-1234-5678`` / ``01012345678`` / ``+82 10 1234 5678``, landline ``02-123-4567``,
                ``031-123-4567``, ``(02) 123-4567``, ``070-1234-5678`` (landlines need a separator: a bare
                run of ten digits is too often an order number)
``email``       ``name@example.co.kr``
``ipv4``        four octets 0–255, not part of a longer dotted number
``card``        13–19 digits (groups of 4 with spaces or hyphens, or one run) starting 3–6, Luhn-valid
``brn``         사업자등록번호 ``123-45-67890`` with its check digit
``passport``    여권번호 ``M12345678`` / ``M123A4567`` after the word 여권 (or passport): alone it is
                indistinguishable from a product code
==============  ==========================================================================================

``format_only=True`` also flags RRN/FRN-shaped numbers whose check digit fails (RRNs issued since
October 2020 no longer carry a valid check digit); the birth date must still exist.

Placeholders already in the data — AI Hub's de-identification tags (``<NAME>``, ``<ADDRESS>``, ...),
``#@이름#``-style tags, and kodolly's own (``<전화번호>``, ``<PHONE>``) — are recognised: they hold no
digits, so they are never matched again (masking is idempotent), and with ``normalize_tags=True``
the known tags are rewritten to the chosen placeholder scheme.

Actions: ``mask`` replaces each hit with its typed placeholder (``PLACEHOLDERS['ko']`` or ``['en']``)
and records the counts in ``meta["pii"]``; ``reject`` drops the row with ``pii_<kind>`` (the first
hit in field order instruction, context, response); ``report`` keeps rows unchanged and records the
counts in ``meta["pii"]``. :func:`summarize` turns the output's ``meta["pii"]`` counts (or the
rejects' reasons) into the report's section.

Speed: the step is stateless (it runs in the workers). A superset pattern (``CANDIDATE_RE2``, no
look-arounds) is tested column-wise with ``pyarrow.compute`` (RE2) — on Arrow tables directly, on
row batches through one Arrow array per field — and only the candidate rows (well under 1% of
ordinary instruction data) go through the Python expressions and checksums.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..errors import ConfigError
from ..rows import messages_array
from ..turns import transcript

ACTIONS = ("mask", "reject", "report")
KINDS = ("rrn", "frn", "phone", "email", "ipv4", "card", "brn", "passport")
FIELDS = ("instruction", "context", "response")
PLACEHOLDERS: dict[str, dict[str, str]] = {
    "ko": {
        "rrn": "<주민번호>", "frn": "<외국인번호>", "phone": "<전화번호>", "email": "<이메일>",
        "ipv4": "<IP주소>", "card": "<카드번호>", "brn": "<사업자번호>", "passport": "<여권번호>",
        "name": "<이름>", "address": "<주소>",
    },
    "en": {
        "rrn": "<RRN>", "frn": "<FRN>", "phone": "<PHONE>", "email": "<EMAIL>",
        "ipv4": "<IP>", "card": "<CARD>", "brn": "<BRN>", "passport": "<PASSPORT>",
        "name": "<NAME>", "address": "<ADDRESS>",
    },
}

# Tags other de-identified corpora use, by what they stand for (normalised with normalize_tags).
KNOWN_TAGS: dict[str, str] = {
    "<NAME>": "name", "<PERSON>": "name", "<이름>": "name", "#@이름#": "name", "&name&": "name",
    "<ADDRESS>": "address", "<주소>": "address", "#@주소#": "address", "&address&": "address",
    "<PHONE>": "phone", "<TEL>": "phone", "<PHONE_NUMBER>": "phone", "<전화번호>": "phone", "#@전화번호#": "phone",
    "&tel-num&": "phone",
    "<EMAIL>": "email", "<이메일>": "email", "#@이메일#": "email", "&email&": "email",
    "<RRN>": "rrn", "<주민번호>": "rrn", "<주민등록번호>": "rrn", "#@주민번호#": "rrn",
    "<FRN>": "frn", "<외국인번호>": "frn",
    "<CARD>": "card", "<CARD_NUMBER>": "card", "<카드번호>": "card", "#@카드번호#": "card",
    "<ACCOUNT>": "account", "<계좌번호>": "account", "#@계좌번호#": "account",
    "<IP>": "ipv4", "<IP주소>": "ipv4", "<BRN>": "brn", "<사업자번호>": "brn",
    "<PASSPORT>": "passport", "<여권번호>": "passport",
}
TAG_RE = re.compile(r"<[A-Z][A-Z_]*\d*>|<[가-힣]+(?:주소|번호|이름)?>|#@[가-힣A-Za-z]+(?:#\d+)?#|&[a-z][a-z-]*&")

_NB = r"(?<![0-9A-Za-z])"  # not glued to a preceding ASCII letter or digit (Hangul may touch)
_NA = r"(?![0-9A-Za-z])"
_SEP = r"[-. ]"
_A = re.ASCII  # \\d is 0-9 only, as in RE2 (the column-wise pre-check)
_PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])", _A),
    "rrn": re.compile(_NB + r"\d{6}[-‐–]?\d{7}" + r"(?![0-9A-Za-z]|-\d)", _A),
    "card": re.compile(_NB + r"(?:[3-6]\d{3}(?:[ -]\d{4}){3}|3[47]\d{2}[ -]\d{6}[ -]\d{5}|[3-6]\d{13,18})"
                       + r"(?![0-9A-Za-z]|-\d)", _A),
    "brn": re.compile(_NB + r"\d{3}-\d{2}-\d{5}" + r"(?![0-9A-Za-z]|-\d)", _A),
    "phone": re.compile(
        r"(?:(?<![0-9A-Za-z+])\+82[- ]?(?:\(0\))?[- ]?(?:1[016789]|2|[3-6][1-5]|70)[-. ]?\d{3,4}[-. ]?\d{4}"
        r"|" + _NB + r"(?<!-)01[016789](?:" + _SEP + r"?)\d{3,4}(?:" + _SEP + r"?)\d{4}"
        r"|" + _NB + r"(?<!-)(?:\(0(?:2|[3-6][1-5]|70)\)\s?|0(?:2|[3-6][1-5]|70)" + _SEP + r")\d{3,4}" + _SEP + r"\d{4})"
        + r"(?![0-9A-Za-z]|-\d)",
        _A,
    ),
    "ipv4": re.compile(r"(?<![0-9.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![0-9]|\.\d)", _A),
    "passport": re.compile(r"(?:여권(?:\s?번호)?|[Pp]assport(?:\s?(?:[Nn]o\.?|[Nn]umber))?)\s*(?:는|은|:|：|#)?\s*"
                           r"(?P<value>[MSRODG]\d{8}|[MSRODG]\d{3}[A-Z]\d{4})" + _NA, _A),
}
_ORDER = ("email", "rrn", "card", "brn", "phone", "ipv4", "passport")  # priority where spans overlap
# Column-wise pre-check (RE2 syntax, for pyarrow.compute): a superset of every pattern above without
# the look-arounds and checksums; rows that do not match it cannot hold any kind and are skipped.
CANDIDATE_RE2 = "|".join([
    r"\d{6}[-‐–]?\d{7}",                                                      # rrn, frn
    r"[3-6]\d{3}[ -]?\d{4}[ -]?\d{4}[ -]?\d{2}", r"3[47]\d{2}[ -]\d{6}[ -]\d{5}",  # card
    r"\d{3}-\d{2}-\d{5}",                                                     # brn
    r"01[016789][-. ]?\d{3,4}[-. ]?\d{4}", r"\+82", r"\(0\d{1,2}\)", r"0\d{1,2}[-. ]\d{3,4}[-. ]\d{4}",  # phone
    r"@",                                                                    # email
    r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}",                                    # ipv4
    r"여권|[Pp]assport",                                                      # passport
])
TAG_CANDIDATE_RE2 = r"<|#@|&"

_RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
_BRN_WEIGHTS = (1, 3, 7, 1, 3, 7, 1, 3, 5)
_CENTURY = {"1": 1900, "2": 1900, "3": 2000, "4": 2000, "5": 1900, "6": 1900, "7": 2000, "8": 2000, "9": 1800, "0": 1800}


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _birth_date_ok(d: str) -> bool:
    century = _CENTURY[d[6]]
    try:
        born = _dt.date(century + int(d[0:2]), int(d[2:4]), int(d[4:6]))
    except ValueError:
        return False
    return born <= _dt.date.today()  # nobody is born in the future (an EAN-13 barcode 880... often is)


def registration_kind(text: str, *, format_only: bool = False) -> str | None:
    """``rrn``, ``frn`` or ``None`` for a 13-digit registration number (hyphen optional)."""
    d = _digits(text)
    if len(d) != 13 or not _birth_date_ok(d):
        return None
    if d.startswith("880") and d == text and ean13_ok(d) and not format_only:
        return None  # a bare 13-digit run from Korea's EAN-13 prefix with a valid barcode check digit
    total = sum(int(a) * w for a, w in zip(d, _RRN_WEIGHTS))
    foreign = d[6] in "5678"
    check = (13 - total % 11) % 10 if foreign else (11 - total % 11) % 10
    if check != int(d[12]) and not format_only:
        return None
    return "frn" if foreign else "rrn"


def ean13_ok(d: str) -> bool:
    total = sum(int(ch) * (3 if i % 2 else 1) for i, ch in enumerate(d[:12]))
    return (10 - total % 10) % 10 == int(d[12])


def luhn_ok(text: str) -> bool:
    d = _digits(text)
    if not 13 <= len(d) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(d)):
        n = int(ch)
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def brn_ok(text: str) -> bool:
    d = _digits(text)
    if len(d) != 10:
        return False
    total = sum(int(a) * w for a, w in zip(d, _BRN_WEIGHTS)) + (int(d[8]) * 5) // 10
    return (10 - total % 10) % 10 == int(d[9])


@dataclass(frozen=True, slots=True)
class Hit:
    start: int
    end: int
    kind: str


def find_pii(text: str, *, format_only: bool = False, kinds: Iterable[str] = KINDS) -> list[Hit]:
    """Every identifier in ``text``, as non-overlapping spans in text order."""
    if not text:
        return []
    wanted = set(kinds)
    found: list[tuple[int, int, int, str]] = []  # start, -length, priority, kind
    for prio, name in enumerate(_ORDER):
        check_rrn = name == "rrn" and ("rrn" in wanted or "frn" in wanted)
        if name not in wanted and not check_rrn:
            continue
        pattern = _PATTERNS[name]
        pos = 0
        while True:
            m = pattern.search(text, pos)
            if m is None:
                break
            start, end = m.span("value") if name == "passport" else m.span()
            value = text[start:end]
            kind = name
            if name == "rrn":
                kind = registration_kind(value, format_only=format_only)  # type: ignore[assignment]
                ok = kind is not None and kind in wanted
            elif name == "card":
                ok = luhn_ok(value)
            elif name == "brn":
                ok = brn_ok(value)
            else:
                ok = True
            if not ok:  # a failed check: look again from the next character (a real hit may overlap)
                pos = m.start() + 1
                continue
            pos = m.end()
            found.append((start, -(end - start), prio, kind))  # type: ignore[arg-type]
    found.sort()
    hits: list[Hit] = []
    last_end = -1
    for start, neg_len, _prio, kind in found:
        if start >= last_end:
            hits.append(Hit(start, start - neg_len, kind))
            last_end = start - neg_len
    return hits


def mask_text(text: str, hits: list[Hit], placeholders: Mapping[str, str]) -> str:
    out, at = [], 0
    for hit in hits:
        out.append(text[at : hit.start])
        out.append(placeholders[hit.kind])
        at = hit.end
    out.append(text[at:])
    return "".join(out)


def normalize_tags(text: str, placeholders: Mapping[str, str]) -> str:
    """Known de-identification tags rewritten to ``placeholders``; unknown tags left as they are."""
    if "<" not in text and "#@" not in text and "&" not in text:
        return text

    def swap(m: re.Match[str]) -> str:
        kind = KNOWN_TAGS.get(m.group(0))
        return placeholders.get(kind, m.group(0)) if kind else m.group(0)

    return TAG_RE.sub(swap, text)


class PiiFilter:
    """The ``pii`` step: ``mask``, ``reject`` or ``report`` personal identifiers (see the module docstring)."""

    name = "pii"
    stateless = True

    def __init__(
        self,
        action: str = "mask",
        *,
        placeholders: str = "ko",
        kinds: Iterable[str] | None = None,
        format_only: bool = False,
        normalize_tags: bool = False,
        fields: Iterable[str] = FIELDS,
    ) -> None:
        if action not in ACTIONS:
            raise ConfigError(f"pii: action {action!r} is not one of {', '.join(ACTIONS)}")
        if placeholders not in PLACEHOLDERS:
            raise ConfigError(f"pii: placeholders {placeholders!r} is not one of {', '.join(PLACEHOLDERS)}")
        self.kinds = tuple(kinds) if kinds is not None else KINDS
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ConfigError(f"pii: unknown kind(s) {', '.join(sorted(unknown))} (kinds: {', '.join(KINDS)})")
        self.fields = tuple(fields)
        bad = set(self.fields) - set(FIELDS)
        if bad:
            raise ConfigError(f"pii: unknown field(s) {', '.join(sorted(bad))} (fields: {', '.join(FIELDS)})")
        self.action = action
        self.placeholders = placeholders
        self.format_only = bool(format_only)
        self.normalize = bool(normalize_tags)
        self._marks = PLACEHOLDERS[placeholders]

    def settings(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "placeholders": self.placeholders,
            "kinds": list(self.kinds),
            "format_only": self.format_only,
            "normalize_tags": self.normalize,
            "fields": list(self.fields),
        }

    # -- one row ------------------------------------------------------------------------------

    def _row_texts(self, texts: dict[str, str]) -> tuple[str | None, dict[str, str], dict[str, int]]:
        """(reject reason or None, changed fields, counts per kind) for one row's texts."""
        counts: dict[str, int] = {}
        changed: dict[str, str] = {}
        first: str | None = None
        for name in self.fields:
            text = texts[name]
            hits = find_pii(text, format_only=self.format_only, kinds=self.kinds)
            for hit in hits:
                counts[hit.kind] = counts.get(hit.kind, 0) + 1
                if first is None:
                    first = hit.kind
            new = text
            if self.action == "mask":
                if hits:
                    new = mask_text(text, hits, self._marks)
                if self.normalize:
                    new = normalize_tags(new, self._marks)
            if new != text:
                changed[name] = new
        if self.action == "reject" and first is not None:
            return f"pii_{first}", {}, counts
        return None, changed, counts

    def _mask_turns(self, messages: list[dict[str, str]], meta: Any) -> tuple[list[dict[str, str]], str] | None:
        """A conversation row's earlier turns masked like its context, and the context again as their
        transcript (so the two still agree); ``None`` when nothing in them changes."""
        if self.action != "mask" or "context" not in self.fields or not messages:
            return None
        out, changed = [], False
        for m in messages:
            text = m["content"]
            hits = find_pii(text, format_only=self.format_only, kinds=self.kinds)
            new = mask_text(text, hits, self._marks) if hits else text
            if self.normalize:
                new = normalize_tags(new, self._marks)
            changed = changed or new != text
            out.append({"role": m["role"], "content": new})
        if not changed:
            return None
        return out, transcript(out, _load(meta).get("context_turns_dropped", 0))

    def _candidates(self, columns: Iterable[Any]) -> Any:
        """Rows (a numpy bool mask) where any of ``columns`` may hold a hit, tested column-wise with RE2."""
        import numpy as np
        import pyarrow.compute as pc

        mask = None
        for column in columns:
            hit = pc.match_substring_regex(column, CANDIDATE_RE2)
            if self.action == "mask" and self.normalize:
                hit = pc.or_(hit, pc.match_substring_regex(column, TAG_CANDIDATE_RE2))
            hit = np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)
            mask = hit if mask is None else mask | hit
        return mask

    def apply(self, rows: list[dict[str, Any]]) -> list[str | None]:
        import pyarrow as pa

        verdicts: list[str | None] = [None] * len(rows)
        if not rows:
            return verdicts
        candidate = self._candidates(pa.array([row[name] for row in rows], pa.string()) for name in self.fields)
        for i in candidate.nonzero()[0].tolist():
            row = rows[i]
            reason, changed, counts = self._row_texts({name: row[name] for name in self.fields})
            verdicts[i] = reason
            if reason is None:
                row.update(changed)
                turns = self._mask_turns(row.get("messages") or [], row["meta"]) if "context" in changed else None
                if turns is not None:
                    row["messages"], row["context"] = turns
                if counts:
                    meta = row["meta"] if isinstance(row["meta"], dict) else _load(row["meta"])
                    meta["pii"] = counts
                    row["meta"] = meta
        return verdicts

    # -- an Arrow table -----------------------------------------------------------------------

    def apply_table(self, table: Any) -> tuple[list[str | None], Any]:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(table)
        verdicts: list[str | None] = [None] * n
        if not n:
            return verdicts, table
        candidate = self._candidates(table.column(name) for name in self.fields)
        rows = np.flatnonzero(candidate)
        if not len(rows):
            return verdicts, table
        idx = pa.array(rows, pa.int64())
        texts = {name: table.column(name).take(idx).to_pylist() for name in self.fields}
        metas = table.column("meta").take(idx).to_pylist()
        new_texts = {name: list(values) for name, values in texts.items()}
        new_metas = list(metas)
        has_turns = "messages" in table.column_names
        turns_of = table.column("messages").take(idx).to_pylist() if has_turns else None
        new_turns: dict[int, list[dict[str, str]]] = {}  # candidate position -> masked earlier turns
        touched = False
        for k, row in enumerate(rows.tolist()):
            reason, changed, counts = self._row_texts({name: texts[name][k] for name in self.fields})
            if reason is not None:
                verdicts[row] = reason
                continue
            for name, value in changed.items():
                new_texts[name][k] = value
                touched = True
            turns = self._mask_turns(turns_of[k], metas[k]) if has_turns and "context" in changed else None
            if turns is not None:
                new_turns[row], new_texts["context"][k] = turns
            if counts:
                meta = _load(metas[k])
                meta["pii"] = counts
                new_metas[k] = _dump(meta)
                touched = True
        if not touched:
            return verdicts, table
        mask = pa.array(candidate)
        for name in (*self.fields, "meta"):
            values = new_metas if name == "meta" else new_texts[name]
            at = table.schema.get_field_index(name)
            column = pc.replace_with_mask(table.column(name).combine_chunks(), mask, pa.array(values, pa.string()))
            table = table.set_column(at, table.schema.field(at), column)
        if new_turns:
            column = table.column("messages").to_pylist()
            for row, turns in new_turns.items():
                column[row] = turns
            at = table.schema.get_field_index("messages")
            table = table.set_column(at, table.schema.field(at), messages_array(column))
        return verdicts, table


def _load(meta: Any) -> dict[str, Any]:
    import orjson

    if isinstance(meta, dict):
        return meta
    return orjson.loads(meta) if meta else {}


def _dump(meta: dict[str, Any]) -> str:
    import orjson

    return orjson.dumps(meta).decode()


# ------------------------------------------------------------------------------------ the report

EXAMPLES = 3


class PiiSummary:
    """The report's ``pii`` section, gathered from the kept rows as they are written (their
    ``meta["pii"]`` counts) and from the ``pii_<kind>`` reject counts of the tally."""

    def __init__(self, examples: int = EXAMPLES) -> None:
        self.hits: dict[str, int] = {}
        self.rows_with_hits = 0
        self.examples: list[dict[str, Any]] = []
        self.per = examples

    def _one(self, row_id: str, meta: dict[str, Any], texts: dict[str, str]) -> None:
        found = meta.get("pii") or {}
        if not found:
            return
        self.rows_with_hits += 1
        for kind, n in found.items():
            self.hits[kind] = self.hits.get(kind, 0) + int(n)
        if len(self.examples) < self.per:
            self.examples.append({"id": row_id, "kinds": sorted(found), **{k: _excerpt(v) for k, v in texts.items() if v}})

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            meta = _load(row.get("meta"))
            if meta.get("pii"):
                self._one(row["id"], meta, {name: row[name] for name in FIELDS})

    def add_table(self, table: Any) -> None:
        import pyarrow.compute as pc

        if not len(table) or "meta" not in table.column_names:
            return
        marked = pc.match_substring(table.column("meta"), '"pii":')
        if not pc.any(marked).as_py():
            return
        sub = table.filter(marked)
        columns = {name: sub.column(name).to_pylist() for name in ("id", "meta", *FIELDS)}
        for i, meta in enumerate(columns["meta"]):
            self._one(columns["id"][i], _load(meta), {name: columns[name][i] for name in FIELDS})

    def as_dict(self, pii: "PiiFilter", rejected: Mapping[str, int]) -> dict[str, Any]:
        return {
            "action": pii.action,
            "settings": pii.settings(),
            "hits": dict(sorted(self.hits.items())),
            "rows_with_hits": self.rows_with_hits,
            "rejected": {key[len("pii_"):]: n for key, n in sorted(rejected.items()) if key.startswith("pii_")},
            "examples": self.examples,
        }


def _excerpt(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
