"""The bench clock: the only way the rig waits (docs/design.md principle 4).

On a real bench time is the wall clock. On a simulated bench it is virtual: `wait` runs the world
forward instead of sleeping, and may return early when something happened (a board printed a line),
so every caller waits in a loop of "check, then wait for the rest". Code that needs to wait never
calls `time.sleep` itself; it asks the clock, so the same code runs in both worlds.

The clock is also what keeps the rig-side ends of the bench's channels in step with bench time
(`attach`): a wall clock has nothing to do, a virtual clock hands each board and event stream
exactly what the bench produced up to the current instant, which is what makes a simulated run
reproducible byte for byte.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any, Callable, Protocol, TypeVar, runtime_checkable

__all__ = ["BenchClock", "WallClock", "parse_utc"]

T = TypeVar("T")


@runtime_checkable
class BenchClock(Protocol):
    """Bench time in seconds, a way to let it pass, and the channel synchronisation that goes with it."""

    #: bench seconds per wall second (1 on a real bench; >1 on a stand-in; 0 for virtual time)
    time_scale: float
    #: how finely the rig sees bench time: an observation is stamped within this of when it happened
    resolution_s: float

    def now(self) -> float:
        """Bench time, seconds (monotonic; the origin is the clock's own)."""
        ...

    def wait(self, seconds: float) -> None:
        """Let up to `seconds` pass; may return early, so callers re-check and loop."""
        ...

    def attach(self, endpoint: Any) -> None:
        """Keep a rig-side channel end (a `Board`, an `EventStream`) in step with the bench."""
        ...

    def event_time(self, published_at: str) -> float:
        """Bench time of a cloud event stamped `published_at` (ISO 8601 UTC)."""
        ...

    def run_external(self, fn: Callable[[], T], timeout: float) -> T:
        """Run `fn` (a real external tool, e.g. the `particle` CLI) while bench time goes on."""
        ...


def parse_utc(stamp: str) -> dt.datetime | None:
    """An ISO 8601 UTC stamp as the Particle Cloud writes it (`…Z`), or None if unreadable."""
    try:
        return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


class WallClock:
    """Real time for a real bench: monotonic seconds since the clock was made, times `time_scale`.

    `time_scale` > 1 runs a stand-in bench (a simulated world in another process paced at that
    speed): the rig's bench seconds then pass `time_scale` times faster than wall seconds.
    """

    def __init__(self, poll_interval: float = 0.01, *, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        # Boards are polled, not waited on by select, so the wait is sliced to keep latency low.
        self.poll_interval = poll_interval
        self.time_scale = time_scale
        self._origin = time.monotonic()
        self._stop = threading.Event()

    @property
    def resolution_s(self) -> float:
        """One poll interval of bench time: lines are read (and stamped) that often."""
        return self.poll_interval * self.time_scale

    def now(self) -> float:
        return (time.monotonic() - self._origin) * self.time_scale

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(min(seconds / self.time_scale, self.poll_interval))

    def attach(self, endpoint: Any) -> None:
        """Nothing to do: on a wall clock every channel delivers as it goes."""

    def event_time(self, published_at: str) -> float:
        """Stamped on arrival: the cloud's clock is not the bench's (and a stand-in's is virtual)."""
        return self.now()

    def run_external(self, fn: Callable[[], T], timeout: float) -> T:
        """A real tool on a real bench simply runs; its own timeout bounds it."""
        return fn()
