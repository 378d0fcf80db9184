"""Whether the protocol lets an event out: busy during a transfer, then the publish rate limits
(docs/reference/particle-ota.md §2.8, corrected).

Pure state, like `ota_receiver`: `Connectivity.publish` / `publish_system` ask it before sending.

- `Protocol::send_event` refuses every event, system ones included, with SYSTEM_ERROR_BUSY while
  the chunked transfer is updating (device-os v2.3.1 `communication/inc/protocol.h` ~419-426).
- `Publisher::is_rate_limited` (`communication/src/publisher.h` ~50-88): an event is a *system*
  event when its name starts with `spark` or `particle`; system events are limited to 255 per
  65.536 s window (`millis >> 16`); user events keep the times of the last 5 attempts in a ring and
  an attempt is refused when the attempt 4 before it was less than 1000 ms earlier — at most 4 per
  second. The ring records every attempt, the refused ones too, so an app that keeps retrying
  faster than 4 per second is refused every time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: communication/src/publisher.h ~54-68: at most 255 system events per 65.536 s "minute"
SYSTEM_EVENTS_PER_WINDOW = 255
#: communication/src/publisher.h ~72-85: a ring of 5 attempt times; 5 within 1000 ms is a burst
USER_EVENT_RING = 5
USER_EVENT_BURST_MS = 1000

OK, BUSY, RATE_LIMITED = "ok", "busy", "rate_limited"


def is_system_event(name: str) -> bool:
    """communication/src/publisher.h ~45-48 `is_system`: the name starts with `spark` or `particle`."""
    return name.startswith(("spark", "particle"))


@dataclass
class Publisher:
    """The rate-limit state of one boot (statics in Device OS: back to the start at every reset)."""

    recent_ticks: list[int] = field(default_factory=lambda: [-USER_EVENT_BURST_MS] * USER_EVENT_RING)
    index: int = 0
    system_window: int = 0
    system_count: int = 0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def check(self, name: str, now_ms: int, *, updating: bool) -> str:
        """OK, BUSY (a transfer is in progress) or RATE_LIMITED, as `Protocol::send_event` decides."""
        if updating:
            return BUSY
        if is_system_event(name):
            window = (now_ms >> 16) & 0xFFFF
            if window == self.system_window:
                if self.system_count == SYSTEM_EVENTS_PER_WINDOW:
                    return RATE_LIMITED
            else:
                self.system_window, self.system_count = window, 0
            self.system_count += 1
            return OK
        self.recent_ticks[self.index] = now_ms
        self.index = (self.index + 1) % USER_EVENT_RING
        if now_ms - self.recent_ticks[self.index] < USER_EVENT_BURST_MS:
            return RATE_LIMITED  # "exceeded allowable burst of 4 events per second"
        return OK
