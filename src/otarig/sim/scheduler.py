"""Discrete-event scheduler over virtual time (docs/design.md principle 4).

Time is an integer number of milliseconds so that runs are exactly reproducible:
no float rounding can reorder two events. Ties are broken by insertion order.
"""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Callable


@dataclass(order=True)
class Timer:
    """A scheduled callback; `cancel()` makes it a no-op without touching the heap."""

    when: int
    seq: int
    fn: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """A min-heap of timers; `run_until` executes them in (time, insertion) order."""

    def __init__(self) -> None:
        self.now_ms: int = 0
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self.stop_requested = False
        #: the `until_ms` of the run in progress (None outside `run_until`)
        self._run_limit: int | None = None

    def at(self, when_ms: int, fn: Callable[[], None]) -> Timer:
        """Run `fn` at absolute virtual time `when_ms` (never in the past)."""
        timer = Timer(max(int(when_ms), self.now_ms), next(self._seq), fn)
        heapq.heappush(self._heap, timer)
        return timer

    def after(self, delay_ms: int | float, fn: Callable[[], None]) -> Timer:
        return self.at(self.now_ms + int(delay_ms), fn)

    def next_time(self) -> int | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].when if self._heap else None

    def skip_ahead(self, delay_ms: int) -> bool:
        """From inside an event: move the clock `delay_ms` on at once, if that changes nothing.

        A caller that would otherwise schedule its own continuation `delay_ms` later and return
        to the loop (an app's `delay()`) may carry on directly when no timer is due up to and at
        that instant, the current run reaches it, and nobody asked the run to stop. Nothing else
        could have run in between, so the timeline is the one the heap round trip would give.
        """
        limit = self._run_limit
        if limit is None or self.stop_requested:
            return False
        target = self.now_ms + delay_ms
        if target > limit:
            return False
        heap = self._heap
        while heap and heap[0].cancelled:
            heapq.heappop(heap)
        if heap and heap[0].when <= target:
            return False  # a timer due first (a tie runs first too: it was scheduled earlier)
        self.now_ms = target
        return True

    def request_stop(self) -> None:
        """Ask `run_until` to return after the current event (e.g. a board printed a line)."""
        self.stop_requested = True

    def run_until(self, until_ms: int, *, stop_early: bool = True) -> int:
        """Run events up to and including `until_ms`; return the virtual time reached.

        With `stop_early`, return right after an event that called `request_stop()` so the
        rig can look at what happened at exactly that instant.
        """
        self.stop_requested = False
        self._run_limit = until_ms
        try:
            return self._run(until_ms, stop_early)
        finally:
            self._run_limit = None

    def _run(self, until_ms: int, stop_early: bool) -> int:
        heap = self._heap
        while heap:
            timer = heap[0]
            if timer.cancelled:
                heapq.heappop(heap)
                continue
            if timer.when > until_ms:
                break
            heapq.heappop(heap)
            self.now_ms = timer.when
            timer.fn()
            if stop_early and self.stop_requested:
                self.stop_requested = False
                return self.now_ms
        self.now_ms = max(self.now_ms, until_ms)
        return self.now_ms
