"""A generated test set for the PII step: Korean sentences holding true identifiers at known spans,
and hard negatives (dates, prices, order numbers, 13-digit numbers failing the check digit,
phone-like product codes, URLs, version numbers) that must not be flagged.

``make_corpus(n, seed)`` returns ``[(text, [(start, end, kind), ...])]``; deterministic for a seed.
"""

from __future__ import annotations

import random

RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
BRN_WEIGHTS = (1, 3, 7, 1, 3, 7, 1, 3, 5)
NAMES = ["김민수", "이서연", "박지훈", "최유진", "정하늘", "강도윤"]
LEADS = ["제 {}입니다.", "연락은 {}로 주세요.", "고객님의 정보: {}", "{} 확인 부탁드립니다.", "담당자 {} 남김", "문의처는 {} 이고요"]


def birth(rng: random.Random) -> tuple[str, str]:
    """A real date as YYMMDD and the 7th digit for a Korean (1-4) citizen."""
    year = rng.randint(1940, 2019)
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    gender = rng.choice("12") if year < 2000 else rng.choice("34")
    return f"{year % 100:02d}{month:02d}{day:02d}", gender


def rrn(rng: random.Random, *, valid: bool = True, foreign: bool = False) -> str:
    ymd, g = birth(rng)
    if foreign:
        g = str(int(g) + 4)
    body = ymd + g + "".join(rng.choice("0123456789") for _ in range(5))
    s = sum(int(a) * w for a, w in zip(body, RRN_WEIGHTS))
    check = (13 - s % 11) % 10 if foreign else (11 - s % 11) % 10
    if not valid:
        check = (check + rng.randint(1, 9)) % 10
    return body + str(check)


def luhn_complete(prefix: str) -> str:
    for d in "0123456789":
        n = prefix + d
        total = 0
        for i, ch in enumerate(reversed(n)):
            v = int(ch) * (2 if i % 2 else 1)
            total += v - 9 if v > 9 else v
        if total % 10 == 0:
            return n
    raise AssertionError


def ean13(first12: str) -> str:
    total = sum(int(ch) * (3 if i % 2 else 1) for i, ch in enumerate(first12))
    return first12 + str((10 - total % 10) % 10)


def brn(rng: random.Random) -> str:
    body = "".join(rng.choice("0123456789") for _ in range(9))
    s = sum(int(a) * w for a, w in zip(body, BRN_WEIGHTS)) + (int(body[8]) * 5) // 10
    d = body + str((10 - s % 10) % 10)
    return f"{d[:3]}-{d[3:5]}-{d[5:]}"


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def positive(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["rrn", "rrn", "frn", "phone", "phone", "phone", "email", "email", "ipv4", "card", "brn", "passport"])
    if kind in ("rrn", "frn"):
        v = rrn(rng, foreign=kind == "frn")
        return kind, v if rng.random() < 0.3 else f"{v[:6]}-{v[6:]}"
    if kind == "phone":
        a, b = digits(rng, 4), digits(rng, 4)
        return kind, [
            f"010-{a}-{b}", f"010{a}{b}", f"+82 10 {a} {b}", f"+82-10-{a}-{b}",
            f"02-{digits(rng, 3)}-{b}", f"031-{a}-{b}", f"(02) {digits(rng, 3)}-{b}",
            f"010.{a}.{b}", f"010 {a} {b}", f"070-{a}-{b}",
        ][rng.randrange(10)]
    if kind == "email":
        user = rng.choice(["hong", "kim.minsu", "jy_park", "test+ko", "user01"])
        host = rng.choice(["example.com", "naver.com", "daum.net", "korea.ac.kr", "mail.example.co.kr"])
        return kind, f"{user}@{host}"
    if kind == "ipv4":
        return kind, ".".join(str(rng.randint(1, 254)) for _ in range(4))
    if kind == "card":
        n = luhn_complete(rng.choice("3456") + digits(rng, 14))
        return kind, " ".join(n[i : i + 4] for i in range(0, 16, 4)) if rng.random() < 0.5 else "-".join(n[i : i + 4] for i in range(0, 16, 4))
    if kind == "brn":
        return kind, brn(rng)
    return kind, rng.choice("MSR") + digits(rng, 8)


def _invalid_rrn(rng: random.Random) -> str:
    v = rrn(rng, valid=False)
    return v if rng.random() < 0.5 else f"{v[:6]}-{v[6:]}"


# The hard negatives, one maker a kind (picked by index, so a seed always gives the same corpus).
NEGATIVES = (
    lambda rng: f"{rng.randint(1990, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",  # a date
    lambda rng: f"{rng.randint(1, 999):,}{rng.randint(0, 999):03d}원",  # a price
    lambda rng: "주문번호 " + str(rng.randint(2019, 2024)) + digits(rng, 10),  # an order number
    _invalid_rrn,  # 13 digits failing the check digit
    lambda rng: f"모델 SKU010-{digits(rng, 4)}-{digits(rng, 4)}",  # a phone-like product code
    lambda rng: f"https://example.com/item/{digits(rng, 6)}?page={rng.randint(1, 9)}",
    lambda rng: f"버전 {rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}",
    lambda rng: f"품번 {digits(rng, 3)}-{digits(rng, 2)}-{digits(rng, 4)}",
    lambda rng: f"{rng.randint(1, 12)}월 {rng.randint(1, 28)}일 {rng.randint(1, 12)}시 {rng.randint(0, 59)}분",
    lambda rng: "바코드 " + ean13("880" + digits(rng, 9)),  # EAN-13 with Korea's prefix
    lambda rng: f"대표번호 1588-{digits(rng, 4)}",
)


def negative(rng: random.Random) -> str:
    return NEGATIVES[rng.randrange(len(NEGATIVES))](rng)


def make_corpus(n: int, seed: int = 0) -> list[tuple[str, list[tuple[int, int, str]]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = ""
        spans: list[tuple[int, int, str]] = []
        for piece in range(rng.randint(1, 3)):
            if piece:
                text += " "
            before, _, after = rng.choice(LEADS).partition("{}")
            name = rng.choice(NAMES) + "님, " if rng.random() < 0.3 else ""
            if rng.random() < 0.6:
                kind, value = positive(rng)
                if kind == "passport":
                    before = "여권번호는 "
                start = len(text) + len(name) + len(before)
                spans.append((start, start + len(value), kind))
            else:
                value = negative(rng)
            text += name + before + value + after
        out.append((text, spans))
    return out
