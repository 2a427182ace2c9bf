"""One retry per shard, then one line naming the input and the shard."""

from __future__ import annotations

from typing import Any, Callable

from ..errors import KodollyError, ShardError
from .shards import Shard

ATTEMPTS = 2  # a failing shard is tried twice in all


def shard_failed(shard: Shard, cause: str) -> ShardError:
    last = cause.strip().splitlines()[-1] if cause.strip() else "unknown error"
    return ShardError(f"{shard.label()} failed {ATTEMPTS} times: {last}")


def convert_with_retry(shard: Shard, work: Any, convert: Callable[[Shard, Any], Any]) -> Any:
    """``convert(shard, work)``, retried once. A :class:`KodollyError` (a run-level input or option
    problem, with its own one-line message) is not retried."""
    for attempt in range(ATTEMPTS):
        try:
            return convert(shard, work)
        except KodollyError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of a shard is retried once
            if attempt + 1 >= ATTEMPTS:
                raise shard_failed(shard, f"{type(exc).__name__}: {exc}") from exc
    raise AssertionError("unreachable")  # pragma: no cover
