"""A keyed work queue: each ModelDeployment is reconciled by one worker at a time.

Watch events for an object and its children arrive in bursts; the queue collapses them so a key
waiting to be processed is queued once, a key being processed is re-queued once after it
finishes, and a key can be scheduled for later (rollout steps, progress deadlines, retries). A key
has at most one timer, the earliest asked for: every pass schedules its own next one, so a later
deadline kept beside an earlier one would only add a pass, and those would multiply with events.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._active: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: list[tuple[float, int, K]] = []
        self._timer_of: dict[K, tuple[float, int, K]] = {}  # the one entry of each key
        self._timer_seq = 0
        self._timer_wakeup = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, key: K) -> None:
        if key in self._active:
            self._dirty.add(key)  # process again once the running pass ends
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        deadline = time.monotonic() + delay
        held = self._timer_of.get(key)
        if held is not None:
            if held[0] <= deadline:
                return
            # Few entries (one per key at most): a linear removal keeps the heap exact.
            self._timers.remove(held)
            heapq.heapify(self._timers)
        self._timer_seq += 1
        entry = (deadline, self._timer_seq, key)
        self._timer_of[key] = entry
        heapq.heappush(self._timers, entry)
        self._timer_wakeup.set()

    async def run_timers(self) -> None:
        """Move due keys to the ready queue; runs for the operator's lifetime."""
        while True:
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                key = heapq.heappop(self._timers)[2]
                del self._timer_of[key]
                self.add(key)
            timeout = self._timers[0][0] - now if self._timers else None
            self._timer_wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timer_wakeup.wait(), timeout)

    async def run_worker(self, process: Callable[[K], Awaitable[None]]) -> None:
        while True:
            key = await self._ready.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                await process(key)
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)
