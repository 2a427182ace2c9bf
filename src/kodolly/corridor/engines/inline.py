"""The ``inline`` engine: every shard converted in the calling process, one after the other."""

from __future__ import annotations

from typing import Iterable, Iterator

from ..chunks import Chunk
from ..convert import Work, convert_shard
from ..retry import convert_with_retry
from ..shards import Shard


class InlineEngine:
    name = "inline"

    def map(self, shards: Iterable[Shard], work: Work) -> Iterator[Chunk]:
        for shard in shards:
            yield convert_with_retry(shard, work, convert_shard)

    def close(self) -> None:
        pass


def create(workers: int | None = None, **options) -> InlineEngine:
    return InlineEngine()
