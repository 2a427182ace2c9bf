"""Generate realistic-size KorQuAD 1.0, KorQuAD 2.1 and ShareGPT files (seeded, deterministic).

Usage::

    python benchmarks/gen_korquad.py korquad1 benchmarks/data/kq1.json --questions 60000
    python benchmarks/gen_korquad.py korquad2 benchmarks/data/kq2.json --pages 400
    python benchmarks/gen_korquad.py sharegpt benchmarks/data/sg.json --conversations 50000

The files reproduce the shapes and quirks of FORMATS.md: KorQuAD 1.0 as one line of pure ASCII
(``\\uXXXX`` escapes, no trailing newline) with both key orders, empty ``qas``, answers ending in a
space, ``_`` in titles, a few answers off their offset and a few not in their context; KorQuAD 2.1
pages of 50-200 KB of attribute-stripped HTML (``<h2><span></span>...`` headings with edit links,
infobox and data tables, nested lists, ``\\xa0``) plus a ``raw_html`` with attributes and scripts,
with phrase, paragraph, table and list answers and some offsets past the end; ShareGPT
conversations with ``\\r\\n``, leading assistant turns, repeated roles, empty turns, system turns,
several role names and long pasted documents. Tests import :func:`korquad1` and :func:`korquad2`
at small sizes.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SYLLABLES = "가나다라마바사아자차카타파하고노도로모보소오조초코토포호구누두루무부수우주추쿠투푸후기니디리미비시이지치키티피히한국서울대학교정부시민문화역사경제사회과학기술산업발전연구"
PARTICLES = ["은", "는", "이", "가", "을", "를", "의", "에", "에서", "으로", "와", "과", "도"]
ENDINGS = ["이다.", "하였다.", "되었다.", "있다.", "한다.", "없었다."]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))


def sentence(rng: random.Random, words: int | None = None) -> str:
    n = words or rng.randint(5, 14)
    parts = []
    for i in range(n):
        w = _word(rng)
        if rng.random() < 0.15:
            w = f"{rng.randint(1900, 2020)}년"
        if rng.random() < 0.5:
            w += rng.choice(PARTICLES)
        parts.append(w)
    return " ".join(parts) + " " + rng.choice(ENDINGS)


def paragraph_text(rng: random.Random, sentences: int) -> str:
    text = " ".join(sentence(rng) for _ in range(sentences))
    if rng.random() < 0.1:  # stray no-break space / double space, as in scraped text
        i = text.find(" ", len(text) // 2)
        text = text[:i] + rng.choice(["\xa0", "  "]) + text[i + 1 :] if i > 0 else text
    return text


# --------------------------------------------------------------------------------------- KorQuAD 1


def korquad1(n_questions: int, seed: int = 1) -> dict:
    rng = random.Random(seed)
    data, made, art = [], 0, 0
    while made < n_questions:
        art += 1
        title = "_".join(_word(rng) for _ in range(rng.randint(1, 3)))
        paragraphs = []
        for p in range(rng.randint(2, 6)):
            context = paragraph_text(rng, rng.randint(4, 9))
            qas = []
            if rng.random() > 0.02:
                for q in range(rng.randint(3, 6)):
                    words = context.split(" ")
                    k = rng.randrange(len(words) - 3)
                    answer = " ".join(words[k : k + rng.randint(1, 3)])
                    start = len(" ".join(words[:k])) + (1 if k else 0)
                    if rng.random() < 0.03 and context[start + len(answer) : start + len(answer) + 1] == " ":
                        answer += " "  # an answer that ends with a space
                    roll = rng.random()
                    if roll < 0.01:
                        start += rng.randint(1, 30)  # not at its offset, still in the context
                    elif roll < 0.015:
                        answer = "없는 답 " + _word(rng)  # not in the context at all
                    ans = {"text": answer, "answer_start": start}
                    if rng.random() < 0.5:
                        ans = {"answer_start": start, "text": answer}
                    qas.append({"id": f"{art}-{p}-{q}", "question": sentence(rng, 6).rstrip(".") + "?", "answers": [ans]})
                    made += 1
            para = {"context": context, "qas": qas} if rng.random() < 0.5 else {"qas": qas, "context": context}
            paragraphs.append(para)
        data.append({"title": title, "paragraphs": paragraphs})
    return {"version": "KorQuAD_v1.0_train", "data": data}


def write_korquad1(path: Path, doc: dict) -> None:
    text = json.dumps(doc, ensure_ascii=True, separators=(", ", ": "))
    path.write_text(text, encoding="ascii")  # one line, no trailing newline


# --------------------------------------------------------------------------------------- KorQuAD 2

EDIT = "<span><span>[</span><a>편집</a><span>]</span></span>"


def _table(rng: random.Random, rows: int, cols: int) -> str:
    head = "<tr>\n" + "\n".join(f"<th>{_word(rng)}</th>" for _ in range(cols)) + "</tr>\n"
    body = "".join(
        "<tr>\n" + "\n".join(f"<td>{rng.choice([_word(rng), str(rng.randint(1, 999)) + 'cm', sentence(rng, 3)])}</td>" for _ in range(cols)) + "</tr>\n"
        for _ in range(rows)
    )
    return f"<table>\n<tbody>{head}{body}</tbody></table>"


def _list(rng: random.Random, items: int) -> str:
    lis = []
    for _ in range(items):
        inner = sentence(rng, rng.randint(2, 6))
        if rng.random() < 0.2:
            inner += "\n<ul><li>" + "</li>\n<li>".join(_word(rng) for _ in range(3)) + "</li></ul>"
        lis.append(f"<li><a>{_word(rng)}</a> {inner}</li>")
    return "<ul>" + "\n".join(lis) + "</ul>"


def korquad2_page(rng: random.Random, n: int, target_bytes: int) -> dict:
    title = _word(rng) + "_" + _word(rng)
    parts = [f"<!DOCTYPE html>\n<html>\n<head>\n<meta>\n<title>{title} - 위키백과, 우리 모두의 백과사전</title>\n</head>\n<body>\n<div>\n<h1>{title}</h1>\n<div>\n<div>위키백과, 우리 모두의 백과사전.</div>\n<div><a>둘러보기로 가기</a>\n<a>검색하러 가기</a></div>\n<div><div>"]
    parts.append(_table(rng, 8, 2))
    pieces: list[tuple[str, str]] = []  # (kind, html) answer candidates
    size = sum(len(p.encode()) for p in parts)
    sec = 0
    while size < target_bytes:
        sec += 1
        block = [f"\n<h2><span></span><span>{_word(rng)} {sec}</span>{EDIT}</h2>\n"]
        for _ in range(rng.randint(2, 5)):
            roll = rng.random()
            if roll < 0.6:
                p = f"<p>{paragraph_text(rng, rng.randint(3, 8))}\n</p>"
                pieces.append(("paragraph", p))
            elif roll < 0.8:
                p = _list(rng, rng.randint(3, 8))
                pieces.append(("list", p))
            else:
                p = _table(rng, rng.randint(3, 15), rng.randint(2, 5))
                pieces.append(("table", p))
            block.append(p + "\n")
        chunk = "".join(block)
        parts.append(chunk)
        size += len(chunk.encode())
    parts.append("</div></div></div></div>\n</body>\n</html>")
    context = "".join(parts)
    raw_html = context.replace("<html>", '<html class="client-nojs" lang="ko" dir="ltr">').replace(
        "<head>\n<meta>", '<head>\n<meta charset="UTF-8"/><script>document.documentElement.className="client-js";RLCONF={"wgPageName":"' + title + '"};</script>'
    )
    qas = []
    for q in range(rng.randint(1, 4)):
        kind, html = rng.choice(pieces)
        if kind == "paragraph" and rng.random() < 0.6:  # a phrase from it
            words = html[3:-5].split(" ")
            k = rng.randrange(max(1, len(words) - 3))
            html = " ".join(words[k : k + rng.randint(1, 3)]).strip()
            kind = "text"
        start = context.find(html)
        if rng.random() < 0.03:
            start = len(context) + rng.randint(1, 5000)  # offset past the end
        qas.append({
            "question": sentence(rng, 6).rstrip(".") + "?", "id": f"{n}-{q}",
            "answer": {"text": html, "answer_start": start, "html_answer_start": raw_html.find(html), "html_answer_text": html},
        })
    return {"title": title, "url": f"https://ko.wikipedia.org/wiki/{title}", "context": context, "raw_html": raw_html, "qas": qas}


def write_korquad2(path: Path, n_pages: int, seed: int = 2, min_kb: int = 50, max_kb: int = 200, version: bool = True) -> int:
    """Write ``n_pages`` pages one at a time (the generator never holds the whole file); returns questions."""
    rng = random.Random(seed)
    questions = 0
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('{"version": "KorQuAD_2.1_train", "data": [' if version else '{"data": [')
        for n in range(n_pages):
            page = korquad2_page(rng, n, rng.randint(min_kb, max_kb) * 1024)  # size of the context HTML
            questions += len(page["qas"])
            fh.write(("," if n else "") + json.dumps(page, ensure_ascii=False))
        fh.write("]}")
    return questions


# ---------------------------------------------------------------------------------------- ShareGPT


def sharegpt(n_conversations: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for n in range(n_conversations):
        turns = []
        roles = rng.choice([("human", "gpt"), ("human", "gpt"), ("human", "gpt"), ("user", "assistant"), ("user", "chatgpt"), ("human", "bard")])
        if rng.random() < 0.05:
            turns.append({"from": "system", "value": sentence(rng)})
        if rng.random() < 0.03:
            turns.append({"from": roles[1], "value": sentence(rng)})  # starts with the assistant
        for _ in range(rng.randint(1, 5)):
            human = "\r\n".join(sentence(rng) for _ in range(rng.randint(1, 3)))
            if rng.random() < 0.02:
                human += "\r\n\r\n" + "\r\n".join(paragraph_text(rng, 8) for _ in range(30))  # a pasted document
            turns.append({"from": roles[0], "value": human})
            if rng.random() < 0.03:
                turns.append({"from": roles[0], "value": sentence(rng)})  # the same role twice
            answer = "\r\n\r\n".join(paragraph_text(rng, rng.randint(2, 6)) for _ in range(rng.randint(1, 4)))
            turns.append({"from": roles[1], "value": "" if rng.random() < 0.02 else answer})
        if rng.random() < 0.03:
            turns.append({"from": roles[0], "value": sentence(rng)})  # cut short: unanswered
        out.append({"id": f"conv{n:07d}_0", "conversations": turns})
    return out


def write_sharegpt(path: Path, conversations: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        if path.suffix == ".jsonl":
            for conv in conversations:
                fh.write(json.dumps(conv, ensure_ascii=False) + "\n")
        else:
            json.dump(conversations, fh, ensure_ascii=False, indent=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("kind", choices=["korquad1", "korquad2", "sharegpt"])
    ap.add_argument("output", type=Path)
    ap.add_argument("--questions", type=int, default=60407)
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--conversations", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.kind == "korquad1":
        write_korquad1(args.output, korquad1(args.questions, args.seed))
    elif args.kind == "korquad2":
        q = write_korquad2(args.output, args.pages, args.seed)
        print(f"{args.pages} pages, {q} questions")
    else:
        write_sharegpt(args.output, sharegpt(args.conversations, args.seed))
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
