"""The simulated Electron's MODE button: click counting and the double-click power-off.

docs/reference/particle-ota.md §2.11 (device-os v2.3.1; `HAL_PLATFORM_SETUP_BUTTON_UX` is 1 on the
Electron, hal/inc/hal_platform_compat.h ~27-31):

- A press is timed from the press to the release (system/src/main.cpp ~313-346
  `HAL_Notify_Button_State`). Under 30 ms it is switch bounce and ignored; 30-499 ms is a click:
  the count goes up and a 1 s timeout is armed (~292-310 `handle_button_click`); 500 ms or more,
  or a 5th click, ends the count at once.
- The SysTick handler ends the count once more than 1000 ms passed since the last click
  (~424-427, ~117-119 `IS_BUTTON_TIMEOUT` → `reset_button_click`, ~277-290).
- Two clicks (~265-268): `system_power_off()` (~249-253: `SYSTEM_POWEROFF = 1`); the system loop then calls
  `system_pending_shutdown(RESET_REASON_USER)` instead of managing the network and cloud
  (system/src/system_task.cpp ~475-492), which sets the reset-pending flag and sends `reset_pending`
  once (system/src/system_update.cpp ~338-347). `System.disableReset()` holds it like an update's
  reset: `system_shutdown_if_needed` sends `reset` only when the reset is enabled, then
  `system_shutdown_if_enabled` sleeps in `SLEEP_MODE_SOFTPOWEROFF` instead of resetting
  (~351-391): the network off and standby (system/src/system_sleep_compat.cpp ~204-211), i.e.
  HIBERNATE with a WKP rising edge as its wake source (~96-110), which ends through reset
  (docs/reference/particle-ota.md §3.2).
- With `SYSTEM_POWEROFF` set the system loop no longer manages the network or cloud (system_task.cpp
  ~475-489); here the session stays as it was until the power-off (the app's hold is short).

A press of 3 s or more (listening mode) and one click (the signal-strength LED) are recorded
only; the `button_*` system events are not sent (no app under test subscribes to them).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .electron import Electron
    from .scheduler import Timer

#: main.cpp ~295-297: a shorter press is switch bounce
BOUNCE_MS = 30
#: main.cpp ~297: a press this long or longer is not a click and ends the count
CLICK_MAX_MS = 500
#: main.cpp ~302 ARM_BUTTON_TIMEOUT(1000), ended when *more* than this passed (~118)
CLICK_TIMEOUT_MS = 1000
#: main.cpp ~301: the count ends at once at this many clicks
MAX_CLICKS = 5
#: main.cpp ~268: two clicks power the device off
POWER_OFF_CLICKS = 2


class ModeButton:
    """The MODE line (active low, the Electron's pull-up keeps it high) and Device OS's click count."""

    def __init__(self, dev: "Electron") -> None:
        self.dev = dev
        self.level = 1
        self._pressed_ms: int | None = None
        self._clicks = 0
        self._timeout: Timer | None = None
        self._boot = -1  # the boot whose RAM holds the count (a reset or power loss clears it)

    def line(self, level: int) -> None:
        """The tester drives the line: 0 = pressed, 1 = released."""
        level = 1 if level else 0
        if level == self.level:
            return
        self.level = level
        dev = self.dev
        dev.note("mode_button", pressed=not level)
        if not dev.powered or dev.sleeper.hibernating or self.dev.app is None:
            self._forget()  # no MCU running Device OS's button handling
            return
        if self._boot != dev.boot_count:
            self._forget()
            self._boot = dev.boot_count
        now = dev.sched.now_ms
        if not level:
            self._pressed_ms = now
            return
        if self._pressed_ms is None:
            return
        held, self._pressed_ms = now - self._pressed_ms, None
        self._released(held)

    def _released(self, held_ms: int) -> None:
        """handle_button_click (main.cpp ~293-310)."""
        if held_ms < BOUNCE_MS:
            return
        if held_ms < CLICK_MAX_MS:
            self._clicks += 1
            self._cancel_timeout()
            if self._clicks < MAX_CLICKS:
                self._timeout = self.dev.sched.after(CLICK_TIMEOUT_MS + 1, self._final)
                return
        self._final()

    def _final(self) -> None:
        """reset_button_click → system_handle_button_clicks (main.cpp ~255-290)."""
        self._cancel_timeout()
        clicks, self._clicks = self._clicks, 0
        dev = self.dev
        if clicks == 0 or not dev.powered or dev.boot_count != self._boot:
            return
        dev.note("button_clicks", clicks=clicks)
        if clicks == POWER_OFF_CLICKS:
            dev.request_power_off()

    def _cancel_timeout(self) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None

    def _forget(self) -> None:
        self._cancel_timeout()
        self._clicks = 0
        self._pressed_ms = None
