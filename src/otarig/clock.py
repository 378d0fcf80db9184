"""The bench clock: the only way the rig waits (DESIGN principle 4).

On a real bench time is the wall clock. On a simulated bench it is virtual: `wait` runs the world
forward instead of sleeping, and may return early when something happened (a board printed a line),
so every caller waits in a loop of "check, then wait for the rest". Code that needs to wait never
calls `time.sleep` itself; it asks the clock, so the same code runs in both worlds.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

__all__ = ["BenchClock", "WallClock"]


@runtime_checkable
class BenchClock(Protocol):
    """Bench time in seconds and a way to let it pass."""

    def now(self) -> float:
        """Bench time, seconds (monotonic; the origin is the clock's own)."""
        ...

    def wait(self, seconds: float) -> None:
        """Let up to `seconds` pass; may return early, so callers re-check and loop."""
        ...


class WallClock:
    """Real time for a real bench: monotonic seconds since the clock was made."""

    def __init__(self, poll_interval: float = 0.01) -> None:
        # Boards are polled, not waited on by select, so the wait is sliced to keep latency low.
        self.poll_interval = poll_interval
        self._origin = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._origin

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(min(seconds, self.poll_interval))
