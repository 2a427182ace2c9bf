"""ShareGPT / KoVicuna multi-turn conversations, and the OpenAI ``messages`` shape.

Shapes read (FORMATS.md "ShareGPT / KoVicuna"), in JSON arrays or JSONL:

- ``{"id", "conversations": [{"from": "human"|"gpt"|..., "value": "..."}, ...]}``
- ``{"messages": [{"role": "user"|"assistant"|"system", "content": "..."}, ...]}`` (``content`` may
  also be a list of ``{"type": "text", "text": ...}`` parts)

Roles (case-insensitive): ``human`` / ``user`` are the **user** -> ``instruction``;
``gpt`` / ``assistant`` / ``chatgpt`` / ``bard`` are the **assistant** -> ``response``
(never the reverse); ``system`` is kept in ``context``.

The rule for turning a conversation into rows:

1. Consecutive turns with the same role are merged into one, their texts joined by a blank line.
   Empty (whitespace-only) turns are dropped from the merge; a merged turn whose turns were all
   empty is an *empty side*.
2. Each user turn followed by an assistant turn is an *exchange*, numbered from 0. It becomes one
   row: ``instruction`` = the user turn, ``response`` = the assistant turn, ``messages`` = the
   turns before it in the conversation (``{role, content}``, roles ``system`` / ``user`` /
   ``assistant``), ``context`` = their transcript (:func:`kodolly.turns.transcript`). An exchange with an empty side is
   rejected as ``empty_turn`` (and left out of later transcripts).
3. The transcript is one paragraph per turn, separated by a blank line, labelled in Korean:
   ``시스템: ...`` (system), ``사용자: ...`` (user), ``어시스턴트: ...`` (assistant).
4. System turns are never rows; they go into the transcript where they stand.
5. A conversation that starts with the assistant: those leading assistant turns are not an
   exchange; they go into the transcript (context) of the exchanges that follow.
6. A user turn with text but no assistant turn after it: ``no_assistant_turn`` when the
   conversation has no exchange at all (one reject for the whole conversation), else one
   ``unanswered_turn`` reject for it (typically the trailing question of a dump cut short).
   A conversation of assistant and system turns only is rejected as ``no_user_turn``.
7. ``turns`` (option) chooses the rows: ``each`` (default) one row per exchange; ``last`` one row
   per conversation, its last exchange with both sides, whose history is everything before it
   (earlier exchanges are not rows of their own; an empty one is still rejected as
   ``empty_turn``); ``first`` only exchange 0 (a row, or its reject), its context then holding only
   system and leading assistant turns. ``first_turn_only=True`` (the older option) means
   ``turns=first``.
8. Whole-conversation rejects: ``missing_field:conversations`` (neither ``conversations`` nor
   ``messages``), ``bad_type:conversations``, ``empty_conversation`` (no turn with text),
   ``bad_type:turn`` (a turn that is not an object), ``missing_field:from`` / ``missing_field:role``,
   ``bad_type:value`` / ``bad_type:content`` (text that is not a string), ``unknown_role:<name>``
   (a role outside the lists above: the transcript cannot be trusted, so no row is made).

9. ``max_context_chars`` (option, default 8000; ``0`` = no bound): when the transcript of the
   turns before an exchange is longer than this, only whole turns are kept: the conversation's
   opening system turn first (if it fits), then the most recent turns that still fit, newest
   last (``messages`` holds the same kept turns). The cut is marked by a paragraph ``(앞의 대화 N개 생략)`` (N = turns left out, counted
   after rule 1's merge) where the turns were left out, and by ``meta.context_turns_dropped = N``.
   The kept context, marker included, is at most ``max_context_chars`` long (a bound smaller than
   the marker, about 13 characters, still gets the marker); if not even the latest turn fits, the
   context is the marker alone. The instruction and response are never cut.
   Without the bound, a long conversation with pasted documents repeats the whole transcript in
   every row (quadratic growth); 8000 characters is about 2-3 pages of Korean text, enough for the
   recent exchanges a reply depends on.

``id`` is ``<conversation id>:<exchange index>`` (the conversation id is the record's ``id``, else
derived from its place in the input); ``meta`` has ``turn`` (the exchange index),
``conversation_id`` and ``exchanges`` (how many the conversation has), and
``context_turns_dropped`` when rule 9 cut the context. ``category`` is ``open_qa``.
``\\r\\n`` in turns becomes ``\\n`` (the pipeline then normalises the text as usual).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from ..errors import ConfigError
from ..io.readers import Location
from ..rows import make_row
from ..turns import LABELS, SEPARATOR, dropped_marker, transcript, transcript_size
from . import Context, Converter, LazyRecord, Reject

LICENSE = "CC BY 2.0 KR; OpenAI terms"

USER_ROLES = frozenset({"human", "user"})
ASSISTANT_ROLES = frozenset({"gpt", "assistant", "chatgpt", "bard"})
SYSTEM_ROLES = frozenset({"system"})

ID_KEYS = ("id", "conversation_id", "idx")

DEFAULT_MAX_CONTEXT_CHARS = 8000
TURNS = ("each", "last", "first")


@dataclass(slots=True)
class Turn:
    """Consecutive source turns of one role, merged."""

    role: str
    texts: list[Any] = field(default_factory=list)  # its source turns' texts (on the columnar path: their places in ``source``)
    index: int = 0  # index of its first source turn
    pos: int = 0  # its place among the conversation's merged turns
    size: int = 0  # characters of ``text``
    source: Any = None  # the column the texts are in (columnar path: ``value(i)`` gives text i)
    _message: dict[str, str] | None = None

    @property
    def text(self) -> str:
        if self.source is not None:
            return "\n\n".join([self.source.value(i) for i in self.texts])
        return "\n\n".join(self.texts)

    @property
    def message(self) -> dict[str, str]:
        """``{role, content}``, made once: every later row's history shares it (and its text)."""
        if self._message is None:
            self._message = {"role": self.role, "content": self.text}
        return self._message


def _role(name: Any, n: int, key: str) -> str | Reject:
    """The role of source turn ``n`` from its role name."""
    if not isinstance(name, str) or not name.strip():
        return Reject(f"missing_field:{key}", f"turn {n} has no role")
    name = name.strip().lower()
    if name in USER_ROLES:
        return "user"
    if name in ASSISTANT_ROLES:
        return "assistant"
    if name in SYSTEM_ROLES:
        return "system"
    return Reject(f"unknown_role:{name}", f"turn {n}")


def _merge(merged: list[Turn], n: int, role: str, text: Any, size: int, source: Any = None) -> None:
    """Source turn ``n`` added to the merged turns (rule 1); ``text`` None when it is empty."""
    if merged and merged[-1].role == role:
        current = merged[-1]
    else:
        current = Turn(role, index=n, pos=len(merged), source=source)
        merged.append(current)
    if text is not None:
        current.size += size + (2 if current.texts else 0)  # joined by a blank line
        current.texts.append(text)


def _conversation_id(record: dict[str, Any], loc: Location, ctx: Context) -> str:
    for key in ID_KEYS:
        value = record.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return ctx.derived_id(loc)


def _turn_text(turn: dict[str, Any], key: str) -> str | Reject:
    value = turn.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # OpenAI content parts
        parts = []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                return Reject(f"bad_type:{key}", "a content part without text")
        return "\n".join(parts)
    return Reject(f"bad_type:{key}", f"expected text, got {type(value).__name__}")


def parse_turns(record: dict[str, Any]) -> list[Turn] | Reject:
    """The conversation's turns with roles mapped and consecutive same-role turns merged."""
    if "conversations" in record or "messages" not in record:
        key, role_key, text_key = "conversations", "from", "value"
    else:
        key, role_key, text_key = "messages", "role", "content"
    turns = record.get(key)
    if turns is None:
        return Reject("missing_field:conversations", "neither 'conversations' nor 'messages'")
    if not isinstance(turns, list):
        return Reject(f"bad_type:{key}", f"expected a list of turns, got {type(turns).__name__}")
    merged: list[Turn] = []
    for n, turn in enumerate(turns):
        if not isinstance(turn, dict):
            return Reject("bad_type:turn", f"turn {n} is not an object")
        rk, tk = role_key, text_key
        if rk not in turn and text_key not in turn and ("role" in turn or "from" in turn):
            rk, tk = ("role", "content") if "role" in turn else ("from", "value")  # shapes mixed up
        role = _role(turn.get(rk), n, rk)
        if isinstance(role, Reject):
            return role
        text = _turn_text(turn, tk)
        if isinstance(text, Reject):
            return Reject(text.reason, f"turn {n}: {text.detail}")
        if "\r" in text:  # once per turn here, rather than in every transcript that repeats it
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        _merge(merged, n, role, text if text.strip() else None, len(text))
    return merged


def bounded_history(turns: list[Turn], limit: int) -> tuple[list[Turn], int]:
    """The turns before an exchange that have text, whole turns only, whose transcript fits ``limit`` (rule 9).

    Returns the kept turns and how many turns were left out (0 when everything fits); the context
    is :func:`kodolly.turns.transcript` of their messages and that number.
    """
    kept_all = [t for t in turns if t.texts]
    if not limit:
        return kept_all, 0
    sep = len(SEPARATOR)
    lengths = [len(LABELS[t.role]) + 2 + t.size for t in kept_all]  # len(paragraph(...)), unbuilt
    if transcript_size(lengths, 0) <= limit:  # the whole transcript fits
        return kept_all, 0

    def fill(head: int) -> tuple[list[Turn], int, int]:
        rest = len(lengths) - head
        # the marker's width depends on N; size it for the largest N possible (all of the rest)
        used = sum(n + sep for n in lengths[:head]) + len(dropped_marker(rest))
        first = len(lengths)
        while first > head and used + sep + lengths[first - 1] <= limit:
            first -= 1
            used += sep + lengths[first]
        dropped = first - head
        return kept_all[:head] + kept_all[first:], dropped, transcript_size(lengths[:head] + lengths[first:], dropped)

    if kept_all[0].role == "system":  # the opening system turn first, if it fits beside the marker
        kept, dropped, size = fill(1)
        if size <= limit:
            return kept, dropped
    kept, dropped, _ = fill(0)
    return kept, dropped


def _turns_option(ctx: Context) -> str:
    """``each`` / ``last`` / ``first`` from ``turns`` (and the older ``first_turn_only``, which means ``first``)."""
    cut = ctx.options.get("turns", "each")
    if cut not in TURNS:
        raise ConfigError(f"sharegpt: turns must be one of {', '.join(TURNS)}, not {cut!r}")
    first_only = ctx.options.get("first_turn_only", False)
    if not isinstance(first_only, bool):
        raise ConfigError(f"sharegpt: first_turn_only must be true or false, not {first_only!r}")
    if first_only:
        if cut == "last":
            raise ConfigError("sharegpt: first_turn_only=true and turns=last contradict each other; use turns=first")
        cut = "first"
    return cut


def _max_context_chars(ctx: Context) -> int:
    limit = ctx.options.get("max_context_chars", DEFAULT_MAX_CONTEXT_CHARS)
    if limit is None:
        return 0
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigError(f"sharegpt: max_context_chars must be a whole number (0 = no bound), not {limit!r}")
    return limit


CATEGORY = "open_qa"


@dataclass(slots=True)
class Exchange:
    """An exchange that becomes a row (rule 2), before it is one: :meth:`row` makes the row dict of the
    record path; the corridor's bulk path (:mod:`kodolly.corridor.exchanges`) builds the rows of many
    exchanges at once as Arrow columns, each turn's text normalised once for every row that holds it."""

    turns: list[Turn]  # the conversation's merged turns, shared by its exchanges (``Turn.pos`` indexes it)
    user: Turn
    assistant: Turn
    history: list[Turn]  # the kept turns before it (rule 9), each with text, in order
    dropped: int  # turns left out of the history (``meta.context_turns_dropped``)
    id: str
    meta: dict[str, Any]
    category: str = CATEGORY

    def row(self, ctx: Context) -> dict[str, Any]:
        messages = [t.message for t in self.history]
        return make_row(
            instruction=self.user.text,
            context=transcript(messages, self.dropped),
            response=self.assistant.text,
            category=self.category,
            source=ctx.source,
            id=self.id,
            license=ctx.license,
            meta=self.meta,
            messages=messages,
        )


def convert(record: Any, loc: Location, ctx: Context) -> Iterator[dict[str, Any] | Reject]:
    for out in exchanges(record, loc, ctx):
        yield out if isinstance(out, Reject) else out.row(ctx)


def exchanges(record: Any, loc: Location, ctx: Context) -> Iterator[Exchange | Reject]:
    """The record's exchanges that become rows and its rejects, in the order :func:`convert` yields them
    (``record``: a dict, or a :class:`Conversation` parsed column-wise)."""
    if isinstance(record, Conversation):
        turns, ids = record.turns, {"id": record.id}
    elif not isinstance(record, dict):
        yield Reject("bad_type:record", f"expected an object, got {type(record).__name__}")
        return
    else:
        turns, ids = parse_turns(record), record
    if isinstance(turns, Reject):
        yield turns
        return
    if not any(t.texts for t in turns):
        yield Reject("empty_conversation", "no turn has text")
        return
    cid = _conversation_id(ids, loc, ctx)
    cut = _turns_option(ctx)
    first_only = cut == "first"
    limit = _max_context_chars(ctx)

    # Pair user turns with the assistant turn that follows them (system turns do not break a pair).
    history: list[Turn] = []  # turns that go into later transcripts
    pending: Turn | None = None
    pairs: list[tuple[Turn, Turn, list[Turn]]] = []
    unanswered: list[Turn] = []
    for turn in turns:
        if turn.role == "system":
            history.append(turn)
        elif turn.role == "user":
            if pending is not None:  # user, system, user: the first one got no answer
                unanswered.append(pending)
                history.append(pending)
            pending = turn
        else:  # assistant
            if pending is None:  # leading (or orphan) assistant turn: context only
                history.append(turn)
                continue
            pairs.append((pending, turn, list(history)))
            if pending.texts and turn.texts:
                history.extend((pending, turn))
            pending = None
    if pending is not None:
        unanswered.append(pending)

    if not pairs:
        if any(t.role == "user" and t.texts for t in turns):
            yield Reject("no_assistant_turn", "no user turn is followed by an assistant turn")
        else:
            yield Reject("no_user_turn", "the conversation has no user turn with text")
        return
    total = len(pairs)
    last = max((k for k, (u, a, _) in enumerate(pairs) if u.texts and a.texts), default=-1) if cut == "last" else -1
    for k, (user, assistant, before) in enumerate(pairs):
        if first_only and k > 0:
            break
        part = str(k)
        if not user.texts or not assistant.texts:
            side = "user" if not user.texts else "assistant"
            yield Reject("empty_turn", f"exchange {k}: the {side} turn is empty", part=part,
                         raw={"id": cid, "turn": k, "user": user.text, "assistant": assistant.text})
            continue
        if cut == "last" and k != last:
            continue  # in the history of the last exchange's row
        kept, dropped = bounded_history(before, limit)
        meta: dict[str, Any] = {"conversation_id": cid, "turn": k, "exchanges": total}
        if dropped:
            meta["context_turns_dropped"] = dropped
        yield Exchange(turns, user, assistant, kept, dropped, f"{cid}:{k}", meta)
    if not first_only:
        for turn in unanswered:
            if not turn.texts:  # an empty turn is dropped (rule 1), not a question
                continue
            yield Reject("unanswered_turn", f"turn {turn.index}: a user turn with no assistant turn after it",
                         part=f"turn:{turn.index}", raw={"id": cid, "user": turn.text})


class Conversation(LazyRecord):
    """A plain ShareGPT record parsed column-wise (:func:`conversations_of`): its merged turns (or the
    reject of its turns) and its ``id`` value; :meth:`load` gives the record itself."""

    __slots__ = ("turns", "id", "_load", "_at")

    def __init__(self, turns: list[Turn] | Reject, id: Any, load: Any, at: int) -> None:
        self.turns, self.id, self._load, self._at = turns, id, load, at

    def load(self) -> Any:
        return self._load(self._at)


class TextColumn:
    """The turn texts of a table (``\\r\\n`` and ``\\r`` made ``\\n``, as :func:`parse_turns` does), for ``Turn.text``."""

    __slots__ = ("column",)

    def __init__(self, column: Any) -> None:
        self.column = column

    def value(self, i: int) -> str:
        return self.column[i].as_py()


# the characters str.strip() removes (str.isspace), checked against Python in tests/converters/test_sharegpt_columns.py
PY_SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
_BLANK = "^[" + "".join(f"\\x{{{ord(c):04X}}}" for c in PY_SPACES) + "]*$"  # RE2: a text that .strip() empties


def conversations_of(table: Any, load: Any) -> tuple[list[Conversation], Any] | None:
    """The records of a pyarrow.json table of plain ShareGPT records (``{"id"?, "conversations": [{"from",
    "value"}, ...]}``, ``id`` text or whole numbers, every role a string) as :class:`Conversation` s with
    their turns merged as :func:`parse_turns` merges them, and the column of the turn texts they index
    (``Converter.columnar_records``); None for a table of any other shape."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = set(table.column_names)
    if "conversations" not in names or not names <= {"id", "conversations"}:
        return None
    conv = _one(table.column("conversations"))
    kind = conv.type
    if not pa.types.is_list(kind) or not pa.types.is_struct(kind.value_type):
        return None
    fields = [f.name for f in kind.value_type]
    if sorted(fields) != ["from", "value"] or not all(pa.types.is_string(f.type) for f in kind.value_type):
        return None
    ids: list[Any] = [None] * len(conv)
    if "id" in names:
        column = _one(table.column("id"))
        if not (pa.types.is_string(column.type) or pa.types.is_int64(column.type) or pa.types.is_null(column.type)):
            return None
        ids = column.to_pylist()
    if conv.null_count:
        return None
    turns = conv.flatten()
    if turns.null_count:
        return None
    children = dict(zip(fields, turns.flatten()))
    froms, values = children["from"], children["value"]
    if froms.null_count:  # a turn without a role: the record path says which
        return None
    if values.null_count:
        values = values.fill_null("")
    if pc.any(pc.match_substring(values, "\r")).as_py():
        values = pc.replace_substring(pc.replace_substring(values, "\r\n", "\n"), "\r", "\n")
    blank = pc.match_substring_regex(values, _BLANK).to_numpy(zero_copy_only=False)
    sizes = pc.utf8_length(values).to_numpy(zero_copy_only=False).tolist()
    roles = froms.to_pylist()
    offsets = conv.offsets.to_numpy()
    offsets = (offsets - offsets[0]).tolist()
    source = TextColumn(values)
    records = []
    for r in range(len(conv)):
        merged: list[Turn] | Reject = []
        for n, i in enumerate(range(offsets[r], offsets[r + 1])):
            role = _role(roles[i], n, "from")
            if isinstance(role, Reject):
                merged = role
                break
            _merge(merged, n, role, None if blank[i] else i, sizes[i], source)
        records.append(Conversation(merged, ids[r], load, r))
    return records, values


def _one(column: Any) -> Any:
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def detect(record: Any) -> float:
    if not isinstance(record, dict):
        return 0.0
    for key, role_key in (("conversations", "from"), ("messages", "role")):
        turns = record.get(key)
        if isinstance(turns, list):
            first = next((t for t in turns if isinstance(t, dict)), None)
            return 0.95 if first is not None and role_key in first else 0.6
    return 0.0


CONVERTER = Converter(
    name="sharegpt",
    description="ShareGPT/KoVicuna conversations and OpenAI messages: one row per user->assistant exchange (turns=each), earlier turns in messages",
    convert=convert,
    license=LICENSE,
    aliases=("kovicuna",),
    detect=detect,
    exchanges=exchanges,
    columnar_records=conversations_of,
    options={"license": LICENSE, "turns": "each", "first_turn_only": False, "max_context_chars": DEFAULT_MAX_CONTEXT_CHARS},
)
