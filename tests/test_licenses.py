"""Licence classification (the strings of CONTRACTS.md)."""

from __future__ import annotations

import pytest

from kodolly.licenses import (
    NO_DERIVATIVES,
    NO_REDISTRIBUTION,
    NON_COMMERCIAL,
    classify,
    hub_license_ids,
    is_known,
    license_report,
)


@pytest.mark.parametrize(
    ("license", "restrictions", "known"),
    [
        ("CC BY-ND 2.0 KR", {NO_DERIVATIVES}, True),
        ("AI Hub terms", {NO_REDISTRIBUTION}, True),
        ("CC BY-NC 4.0", {NON_COMMERCIAL}, True),
        ("CC BY-NC-ND 4.0", {NON_COMMERCIAL, NO_DERIVATIVES}, True),
        ("CC BY 2.0 KR; OpenAI terms", set(), True),
        ("Apache-2.0", set(), True),
        ("CC BY-SA 3.0", set(), True),
        ("MIT", set(), True),
        ("", set(), False),
        ("my lab's licence", set(), False),
        ("Apache-2.0; AI Hub terms", {NO_REDISTRIBUTION}, True),
    ],
)
def test_classify(license, restrictions, known):
    assert classify(license) == frozenset(restrictions)
    assert is_known(license) is known


def test_hub_license_ids():
    assert hub_license_ids(["Apache-2.0", "CC BY-SA 3.0", "CC BY-NC 4.0"]) == ["apache-2.0", "cc-by-sa-3.0", "cc-by-nc-4.0"]
    assert hub_license_ids(["CC BY-ND 2.0 KR", "AI Hub terms"]) == ["other"]
    assert hub_license_ids([""]) == ["unknown"]
    assert hub_license_ids([]) == ["unknown"]


def test_report_lists_restricted_and_unknown_sources():
    report = license_report({("korquad1", "CC BY-ND 2.0 KR"): 3, ("kullm", "Apache-2.0"): 5, ("csv", ""): 2})
    assert [s.source for s in report.restricted] == ["korquad1"]
    assert [s.source for s in report.unknown] == ["csv"]
    assert report.describe_restricted() == (
        "  - korquad1 (CC BY-ND 2.0 KR, 3 rows): forbids sharing derivatives (a converted or filtered set is one)"
    )
