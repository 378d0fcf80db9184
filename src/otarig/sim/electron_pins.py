"""The simulated Electron's GPIO pins: what its firmware drives, and what the bench drives into it.

The companion drives the download status line (D6, docs/protocol.md "The download status line")
through `pinMode`/`digitalWrite`/`digitalRead` (bridge `gpio` callback, ABI 2); the bench's tester
board watches that line and pulses WKP (A7) to wake a sleeping Electron. docs/reference/particle-ota.md §3.2:
HIBERNATE (legacy `SLEEP_MODE_DEEP`) wakes on a WKP rising edge, through reset; STOP and
ULTRA_LOW_POWER continue after the sleep call. Only rising edges wake: the sleep request carries the
pin, not its edge, and RISING is what the companion configures.

Levels as the tester sees them: a pin the firmware does not drive as an OUTPUT reads LOW (the
tester's pull-down). A reset, HIBERNATE or a power loss returns the MCU's pins to their reset state
(inputs), so a line the firmware held HIGH falls then.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from . import deviceos as dos

if TYPE_CHECKING:
    from .electron import Electron


class ElectronPins:
    """Modes and levels per pin (Electron pin numbers, e.g. D6 = 6, WKP = A7 = 17)."""

    def __init__(self, dev: "Electron") -> None:
        self.dev = dev
        #: PinMode per configured pin (absent = PIN_MODE_NONE, the reset state)
        self.modes: dict[int, int] = {}
        self._latch: dict[int, int] = {}   # output data per pin, as the firmware last wrote it
        self._inputs: dict[int, int] = {}  # levels the bench drives onto pins
        #: Called with (pin, level) on every change of a level the firmware drives, synchronously,
        #: while the firmware (or the reset) is still running. A listener must not change device state
        #: directly (no drive_input, power or cloud calls): it schedules with `dev.sched.after(0, ...)`.
        self.listeners: list[Callable[[int, int], None]] = []

    # -- the firmware's side (bridge `gpio`) ------------------------------------------------------
    def fw_gpio(self, op: int, pin: int, value: int) -> int:
        if op == dos.GPIO_READ:
            return self.level(pin)
        before = self._driven(pin)
        if op == dos.GPIO_MODE:
            if value == dos.PIN_MODE_NONE:
                self.modes.pop(pin, None)
            else:
                self.modes[pin] = value
        elif op == dos.GPIO_WRITE:
            if pin not in self.modes:
                return 0  # spark_wiring.cpp digitalWrite: a pin without a mode is left alone
            self._latch[pin] = 1 if value else 0
        else:
            return -1
        self._changed(pin, before)
        return 0

    def level(self, pin: int) -> int:
        """The pin's level: the firmware's output, else what the bench drives (else the pull)."""
        if self.modes.get(pin) == dos.OUTPUT:
            return self._latch.get(pin, 0)
        if pin in self._inputs:
            return self._inputs[pin]
        return 1 if self.modes.get(pin) == dos.INPUT_PULLUP else 0

    def release(self) -> None:
        """The MCU stops (reset, HIBERNATE, power loss): every pin back to its reset state, no mode.
        Outputs the firmware held HIGH fall, and the listeners see it; the bench's levels stay."""
        high = sorted(p for p in self.modes if self._driven(p))
        self.modes.clear()
        self._latch.clear()
        for pin in high:
            self._notify(pin, 0)

    # -- the bench's side ---------------------------------------------------------------------------
    def drive_input(self, pin: int, level: int) -> None:
        """The bench drives `pin` to `level`. A rising edge on the pin the sleeping device was told to
        wake on wakes it (docs/reference/particle-ota.md §3.2); on an awake or unpowered board the level is only recorded."""
        level = 1 if level else 0
        rising = level == 1 and self._inputs.get(pin, 0) == 0
        self._inputs[pin] = level
        self.dev.note("gpio", pin=pin, level=level)
        sleeper = self.dev.sleeper
        if rising and self.dev.powered and sleeper.wake_pin == pin:
            sleeper.wake(dos.WAKEUP_BY_GPIO)  # HIBERNATE: boots through reset; STOP/ULP: continues

    # -- internals ----------------------------------------------------------------------------------
    def _driven(self, pin: int) -> int:
        """The level the firmware drives onto the pin: its output data if an OUTPUT, else LOW."""
        return self._latch.get(pin, 0) if self.modes.get(pin) == dos.OUTPUT else 0

    def _changed(self, pin: int, before: int) -> None:
        after = self._driven(pin)
        if after != before:
            self._notify(pin, after)

    def _notify(self, pin: int, level: int) -> None:
        for fn in list(self.listeners):
            fn(pin, level)
