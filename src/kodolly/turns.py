"""The earlier turns of a conversation row (its ``messages`` column) and what is derived from them.

A row made from a conversation keeps the turns before its exchange as a list of
``{"role": "system"|"user"|"assistant", "content": str}`` (:data:`kodolly.rows.MESSAGE_TYPE`);
single-turn rows have ``[]``. Two things are derived from that list, here and nowhere else:

- :func:`transcript`: the Dolly ``context`` of the row, one paragraph per turn labelled in Korean
  (``시스템: …``, ``사용자: …``, ``어시스턴트: …``), separated by a blank line. When a bound cut
  earlier turns (``meta.context_turns_dropped = N``) the paragraph ``(앞의 대화 N개 생략)`` stands
  where they were left out: after an opening system turn, else first.
- :func:`chat`: the conversation as a trainer wants it (system text, then strictly alternating
  user/assistant turns starting with the user), used by ``kodolly export`` and ``kodolly train``.
  Every system turn goes to the system text (joined by a blank line, in order); assistant turns
  before the first user turn go there too, labelled as in the transcript (``어시스턴트: …``):
  they are context the model reads, not answers it is trained on; consecutive turns of one role
  (a user turn that got no answer, then the next one) are joined by a blank line.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

ROLES = ("system", "user", "assistant")
LABELS = {"system": "시스템", "user": "사용자", "assistant": "어시스턴트"}
SEPARATOR = "\n\n"


def dropped_marker(n: int) -> str:
    return f"(앞의 대화 {n}개 생략)"


def paragraph(role: str, content: str) -> str:
    return f"{LABELS[role]}: {content}"


def transcript(messages: Sequence[Mapping[str, Any]], dropped: int = 0) -> str:
    """The Dolly ``context`` of a row whose earlier turns are ``messages`` (see the module docstring)."""
    paragraphs = [paragraph(m["role"], m["content"]) for m in messages if m["content"]]
    if dropped:
        at = 1 if messages and messages[0]["role"] == "system" and messages[0]["content"] else 0
        paragraphs.insert(at, dropped_marker(dropped))
    return SEPARATOR.join(paragraphs)


def transcript_size(sizes: Sequence[int], dropped: int = 0) -> int:
    """``len(transcript(...))`` without building it, from the sizes of its paragraphs
    (``len(paragraph(role, content))`` of each message with content, in order)."""
    marker = len(dropped_marker(dropped)) if dropped else 0
    paragraphs = len(sizes) + (1 if dropped else 0)
    return sum(sizes) + marker + len(SEPARATOR) * max(paragraphs - 1, 0)


def chat(messages: Iterable[Mapping[str, Any]]) -> tuple[str, list[dict[str, str]]]:
    """``(system text, alternating user/assistant turns)`` of ``messages`` (see the module docstring)."""
    system: list[str] = []
    turns: list[dict[str, str]] = []
    for m in messages:
        role, content = m["role"], m["content"]
        if not content:
            continue
        if role == "system":
            system.append(content)
        elif role == "assistant" and not turns:
            system.append(paragraph(role, content))
        elif turns and turns[-1]["role"] == role:
            turns[-1]["content"] += SEPARATOR + content
        else:
            turns.append({"role": role, "content": content})
    return SEPARATOR.join(system), turns


def history_of(row: Mapping[str, Any]) -> list[dict[str, str]]:
    """A row's ``messages`` as a list of plain dicts (``[]`` when the row has none or the column is absent)."""
    msgs = row.get("messages")
    if not msgs:
        return []
    return [{"role": str(m["role"]), "content": str(m["content"] or "")} for m in msgs]


def conversation_prompt(row: Mapping[str, Any]) -> list[dict[str, str]] | None:
    """A conversation row's prompt as chat messages: its system text (if any), then the alternating
    earlier turns and the row's instruction as the last user turn; ``None`` for a single-turn row."""
    history = history_of(row)
    if not history:
        return None
    system, turns = chat([*history, {"role": "user", "content": str(row.get("instruction") or "")}])
    return ([{"role": "system", "content": system}] if system else []) + turns
