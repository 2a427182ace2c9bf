"""The tally of a run: every item read ends written or rejected, per source and per reason.

An *item* is what can become one row: a converter output (a row or a reject), or an input record
the reader could not parse. A converter that turns one record into three rows adds three items;
one that yields nothing for a record makes the pipeline reject the record as ``no_rows``, so no
record disappears silently. ``read`` is counted where items leave the converter, ``written`` where
rows reach the writer and ``rejected`` where rejects reach the rejects file: the identity
``read == written + rejected`` is a real check, not arithmetic on one counter.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


_ID_REASONS = ("duplicate_of:", "near_duplicate_of:")


def reason_key(reason: str) -> str:
    """The tally bucket of a reject reason: ``duplicate_of:<id>`` counts under ``duplicate_of``,
    ``near_duplicate_of:<id>`` under ``near_duplicate_of``; every other reason is its own bucket."""
    if reason.startswith(_ID_REASONS):
        return reason.partition(":")[0]
    return reason


@dataclass
class SourceTally:
    read: int = 0
    written: int = 0
    rejected: Counter = field(default_factory=Counter)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def balanced(self) -> bool:
        return self.read == self.written + self.rejected_total


@dataclass
class Tally:
    """Counts per source; ``records`` is the number of input records (before expansion into items)."""

    sources: dict[str, SourceTally] = field(default_factory=dict)
    records: int = 0

    def source(self, name: str) -> SourceTally:
        tally = self.sources.get(name)
        if tally is None:
            tally = self.sources[name] = SourceTally()
        return tally

    @property
    def read(self) -> int:
        return sum(t.read for t in self.sources.values())

    @property
    def written(self) -> int:
        return sum(t.written for t in self.sources.values())

    @property
    def rejected(self) -> int:
        return sum(t.rejected_total for t in self.sources.values())

    @property
    def by_reason(self) -> Counter:
        total: Counter = Counter()
        for t in self.sources.values():
            total.update(t.rejected)
        return total

    @property
    def balanced(self) -> bool:
        return all(t.balanced for t in self.sources.values()) and self.read == self.written + self.rejected

    def merge(self, other: "Tally") -> None:
        self.records += other.records
        for name, theirs in other.sources.items():
            mine = self.source(name)
            mine.read += theirs.read
            mine.written += theirs.written
            mine.rejected.update(theirs.rejected)

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "read": self.read,
            "written": self.written,
            "rejected": self.rejected,
            "balanced": self.balanced,
            "by_reason": dict(sorted(self.by_reason.items())),
            "sources": {
                name: {
                    "read": t.read,
                    "written": t.written,
                    "rejected": t.rejected_total,
                    "by_reason": dict(sorted(t.rejected.items())),
                }
                for name, t in sorted(self.sources.items())
            },
        }

    def format(self) -> str:
        """A table a person can read: per source, then per reason."""
        lines = [f"{'source':<16}{'read':>10}{'written':>10}{'rejected':>10}"]
        for name, t in sorted(self.sources.items()):
            lines.append(f"{name:<16}{t.read:>10}{t.written:>10}{t.rejected_total:>10}")
        lines.append(f"{'total':<16}{self.read:>10}{self.written:>10}{self.rejected:>10}")
        if self.by_reason:
            lines.append("")
            lines.append(f"{'reject reason':<40}{'count':>10}")
            for reason, count in sorted(self.by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"{reason:<40}{count:>10}")
        lines.append("")
        if self.balanced:
            lines.append(f"tally OK: read {self.read} = written {self.written} + rejected {self.rejected}")
        else:
            lines.append(f"tally MISMATCH: read {self.read} != written {self.written} + rejected {self.rejected}")
        return "\n".join(lines)
