"""What a source's licence lets a user do with a published derivative.

Licences travel as plain strings (the row's ``license`` field, ``Converter.license`` and the
manifest; see CONTRACTS.md): ``"CC BY-ND 2.0 KR"``, ``"AI Hub terms"``, ``"CC BY 2.0 KR; OpenAI
terms"``, ``"CC BY-NC 4.0"``, ``"Apache-2.0"``, ``"CC BY-SA 3.0"``, ``""`` (unknown). A string may
name several licences joined by ``;``; it is as restricted as the most restricted of them.

Restrictions that matter for publishing a converted, filtered dataset:

``no-derivatives``     CC *-ND: a converted/filtered set is a derivative and may not be shared
``no-redistribution``  AI Hub terms: the data may not be handed on to third parties at all
``non-commercial``     CC *-NC: sharing is allowed only for non-commercial use

A public push of a set holding rows from any of these sources is refused unless the user says they
have permission (``kodolly push --i-have-permission``); a private push warns. This is a guard
against mistakes, not legal advice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NO_DERIVATIVES = "no-derivatives"
NO_REDISTRIBUTION = "no-redistribution"
NON_COMMERCIAL = "non-commercial"
RESTRICTIONS = (NO_DERIVATIVES, NO_REDISTRIBUTION, NON_COMMERCIAL)

_EXPLAIN = {
    NO_DERIVATIVES: "forbids sharing derivatives (a converted or filtered set is one)",
    NO_REDISTRIBUTION: "forbids redistributing the data",
    NON_COMMERCIAL: "allows non-commercial use only",
}

# Terms known to restrict redistribution outright (compared case-insensitively).
_NO_REDISTRIBUTION_TERMS = ("ai hub terms", "aihub terms", "ai-hub terms")
# Licences known to allow sharing derivatives (with attribution / share-alike where they say so).
_PERMISSIVE = re.compile(
    r"^(apache-?2(\.0)?|mit|bsd(-\d-clause)?|cc0(-1\.0)?|cc[ -]by( |-)?(sa)?[ -]?\d(\.\d)?( kr)?|"
    r"cc[ -]by( \d(\.\d)?)?( kr)?|cc-by-sa-\d\.\d|cc-by-\d\.\d|odc-by|openai terms|public domain|unlicense)$",
    re.IGNORECASE,
)

# Hub licence identifiers for the card's YAML (the Hub accepts only ids from its list).
_HUB_IDS = {
    "apache-2.0": "apache-2.0",
    "mit": "mit",
    "cc0-1.0": "cc0-1.0",
    "cc by 4.0": "cc-by-4.0",
    "cc by 3.0": "cc-by-3.0",
    "cc by 2.0": "cc-by-2.0",
    "cc by-sa 3.0": "cc-by-sa-3.0",
    "cc by-sa 4.0": "cc-by-sa-4.0",
    "cc by-nc 4.0": "cc-by-nc-4.0",
    "cc by-nc 3.0": "cc-by-nc-3.0",
    "cc by-nc 2.0": "cc-by-nc-2.0",
    "cc by-nd 4.0": "cc-by-nd-4.0",
    "cc by-nc-sa 4.0": "cc-by-nc-sa-4.0",
    "cc by-nc-nd 4.0": "cc-by-nc-nd-4.0",
}


def from_hub_id(hub_id: str) -> str:
    """A Hub licence id (a dataset card's ``license:``) as kodolly writes licences:
    ``cc-by-nc-4.0`` -> ``CC BY-NC 4.0``, ``apache-2.0`` -> ``Apache-2.0``; others unchanged."""
    key = hub_id.strip().lower()
    named = {"apache-2.0": "Apache-2.0", "mit": "MIT", "cc0-1.0": "CC0-1.0"}
    if key in named:
        return named[key]
    m = re.fullmatch(r"cc-(by(?:-(?:nc|nd|sa))*)-(\d\.\d)", key)
    if m:
        return f"CC {m.group(1).upper()} {m.group(2)}"
    return hub_id.strip()


def parts(license: str) -> list[str]:
    """The licences a licence string names: ``"CC BY 2.0 KR; OpenAI terms"`` -> two parts."""
    return [p.strip() for p in (license or "").split(";") if p.strip()]


def _part_restrictions(part: str) -> set[str]:
    low = part.lower()
    found: set[str] = set()
    if low in _NO_REDISTRIBUTION_TERMS or "no redistribution" in low or "no-redistribution" in low:
        found.add(NO_REDISTRIBUTION)
    if re.search(r"\bcc\b.*\bnd\b", low) or "noderiv" in low:
        found.add(NO_DERIVATIVES)
    if re.search(r"\bcc\b.*\bnc\b", low) or "noncommercial" in low or "non-commercial" in low:
        found.add(NON_COMMERCIAL)
    return found


def classify(license: str) -> frozenset[str]:
    """The restrictions a licence string carries (empty for permissive or unknown licences)."""
    found: set[str] = set()
    for part in parts(license):
        found |= _part_restrictions(part)
    return frozenset(found)


def is_known(license: str) -> bool:
    """Whether every part of the licence string is one kodolly recognises."""
    ps = parts(license)
    return bool(ps) and all(_part_restrictions(p) or _PERMISSIVE.match(p) for p in ps)


def hub_license_id(license: str) -> str:
    """The Hub's licence identifier for one licence part, or ``"other"``."""
    key = re.sub(r"\s+", " ", license.strip().lower())
    return _HUB_IDS.get(key, "other")


def hub_license_ids(licenses: list[str]) -> list[str]:
    """The card's ``license:`` list: one Hub id per distinct licence, ``unknown`` when none is known."""
    ids: list[str] = []
    for lic in licenses:
        for part in parts(lic) or [""]:
            hid = hub_license_id(part) if part else "unknown"
            if hid not in ids:
                ids.append(hid)
    return ids or ["unknown"]


def explain(restriction: str) -> str:
    return _EXPLAIN[restriction]


@dataclass
class SourceLicense:
    """One source of a dataset with its licence string and row count."""

    source: str
    license: str
    rows: int
    restrictions: frozenset[str] = field(default_factory=frozenset)


@dataclass
class LicenseReport:
    """The licences of a dataset's sources and which of them restrict publishing."""

    sources: list[SourceLicense]

    @property
    def restricted(self) -> list[SourceLicense]:
        return [s for s in self.sources if s.restrictions]

    @property
    def unknown(self) -> list[SourceLicense]:
        return [s for s in self.sources if not s.restrictions and not is_known(s.license)]

    def describe_restricted(self) -> str:
        """One line per restricted source: name, licence, rows, and what the licence forbids."""
        lines = []
        for s in self.restricted:
            why = "; ".join(explain(r) for r in RESTRICTIONS if r in s.restrictions)
            lines.append(f"  - {s.source} ({s.license}, {s.rows} rows): {why}")
        return "\n".join(lines)


def license_report(counts: dict[tuple[str, str], int]) -> LicenseReport:
    """Build a report from ``{(source, license): rows}``."""
    sources = [
        SourceLicense(source, lic, rows, classify(lic))
        for (source, lic), rows in sorted(counts.items())
    ]
    return LicenseReport(sources)
