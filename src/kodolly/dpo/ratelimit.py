"""Client-side requests-per-minute and tokens-per-minute limits: two token buckets.

A request takes 1 from the RPM bucket and its *estimated* tokens from the TPM bucket before it is
sent (waiting until they are there); when the answer arrives the TPM bucket is corrected by the
difference between the real usage and the estimate. A limit of 0 or None is off.

Each bucket holds one second's worth (``per_minute / 60``, at least 1): OpenAI may enforce a
per-minute limit over shorter windows, so kodolly does not burst a whole minute's quota at once.
A request larger than the bucket waits for a full bucket and drives the level below zero; later
requests wait until it is paid back, so the average rate holds.
"""

from __future__ import annotations

import threading
import time


class TokenBucket:
    def __init__(self, per_minute: float, clock=time.monotonic, sleep=time.sleep) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._last) * self.rate)
        self._last = now

    def take(self, amount: float) -> float:
        """Take ``amount``, waiting until the bucket holds it (or is full); returns seconds waited."""
        need = min(amount, self.capacity)
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                if self.level >= need:
                    self.level -= amount
                    return waited
                delay = (need - self.level) / self.rate
            delay = min(delay, 1.0)
            self._sleep(delay)
            waited += delay

    def adjust(self, delta: float) -> None:
        """Give back (delta > 0) or take more (delta < 0, may go below zero: later requests wait)."""
        with self._lock:
            self._refill()
            self.level = min(self.capacity, self.level + delta)


class RateLimiter:
    def __init__(self, rpm: float | None = None, tpm: float | None = None) -> None:
        self.rpm = TokenBucket(rpm) if rpm else None
        self.tpm = TokenBucket(tpm) if tpm else None

    def acquire(self, tokens: int) -> float:
        waited = 0.0
        if self.rpm is not None:
            waited += self.rpm.take(1)
        if self.tpm is not None:
            waited += self.tpm.take(tokens)
        return waited

    def correct(self, estimated: int, actual: int) -> None:
        if self.tpm is not None and actual != estimated:
            self.tpm.adjust(estimated - actual)
