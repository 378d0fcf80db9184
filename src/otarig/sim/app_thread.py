"""The application thread's queue of system events, for a threaded app (docs/reference/particle-ota.md §2.2).

With `SYSTEM_THREAD(ENABLED)` Device OS does not call the `System.on` handlers when it emits an
event: it posts the call to the application thread (device-os v2.3.1 system/src/system_event.cpp
~74-78 `system_notify_event_async`, through APPLICATION_THREAD_CONTEXT_ASYNC). That thread is an
active object whose queue holds 20 items and whose put waits up to 5 s (system/src/main.cpp
~544-547). It takes **one** item per pass of its loop, before `loop()` runs
(system/src/active_object.cpp ~66-74), and, inside a `delay()`, one item per second of a long
delay (system/src/system_task.cpp ~545-555 → system/src/system_cloud.cpp ~250-257; the period is
SPARK_LOOP_DELAY_MILLIS, system/inc/system_cloud.h ~367). On a full queue the system thread waits
for room; after 5 s the post fails and the event is dropped (system/inc/active_object.h ~310-318,
~384-387). While it waits the system thread does nothing else, so cloud messages wait too
(`Electron.system_thread_busy`).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .electron import Electron
    from .scheduler import Timer

#: system/src/main.cpp ~547: the application queue's size
QUEUE_DEPTH = 20
#: system/src/main.cpp ~546: how long a put waits for room ("so the system thread does not deadlock")
PUT_WAIT_MS = 5_000
#: system/inc/system_cloud.h ~367 SPARK_LOOP_DELAY_MILLIS: a long delay() pumps the queue this often
PUMP_PERIOD_MS = 1_000


@dataclass(frozen=True)
class PostedEvent:
    """One call waiting for the application thread: the handlers, then `then` (the `reset` event's
    `system_shutdown_if_enabled`, system/src/system_update.cpp ~375)."""

    event: int
    param: int
    then: Callable[[], None] | None = None


class ApplicationQueue:
    """The application thread's queue of one simulated Electron, and the system thread's blocked put."""

    def __init__(self, dev: Electron) -> None:
        self.dev = dev
        self.items: deque[PostedEvent] = deque()
        #: posts the system thread is stuck on (the first is waiting for room, the rest are behind it)
        self.waiting: deque[PostedEvent] = deque()
        self.dropped = 0
        self._put_timer: Timer | None = None

    @property
    def blocked(self) -> bool:
        """The system thread is waiting for room in the queue."""
        return bool(self.waiting)

    def post(self, item: PostedEvent) -> None:
        if self.waiting or len(self.items) >= QUEUE_DEPTH:
            self.waiting.append(item)
            if len(self.waiting) == 1:
                self.dev.note("system_thread_blocked", queued=len(self.items))
                self._arm()
            return
        self.items.append(item)

    def take_one(self) -> bool:
        """The application thread takes one item (a loop() boundary or a delay() pump): a blocked
        put gets its room at once; then the handlers run here, on the app's stack."""
        if not self.items:
            return False
        item = self.items.popleft()
        if self.waiting:
            self._advance()
        self.dev.dispatch_event(item.event, item.param)
        if item.then is not None:
            item.then()
        return True

    def clear(self) -> None:
        """Reset, power loss, HIBERNATE: the queue is RAM."""
        if self._put_timer is not None:
            self._put_timer.cancel()
            self._put_timer = None
        self.items.clear()
        self.waiting.clear()

    def _arm(self) -> None:
        self._put_timer = self.dev.sched.after(PUT_WAIT_MS, self._put_timed_out)

    def _put_timed_out(self) -> None:
        """system/inc/active_object.h ~316-317: the put failed, the task is deleted — the event is lost."""
        self._put_timer = None
        lost = self.waiting.popleft()
        self.dropped += 1
        self.dev.note("system_event_dropped", event=lost.event, param=lost.param)
        self._advance()

    def _advance(self) -> None:
        """The system thread's stuck put went through (or gave up): it moves on to what it had next."""
        if self._put_timer is not None:
            self._put_timer.cancel()
            self._put_timer = None
        while self.waiting and len(self.items) < QUEUE_DEPTH:
            self.items.append(self.waiting.popleft())
        if self.waiting:
            self._arm()
        else:
            self.dev.system_thread_freed()
