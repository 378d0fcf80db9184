"""MicroPython's `machine` module for the simulated tester board (RP2040), wired to the bench.

Only what the bench companion uses, with MicroPython's signatures: `Pin` (IN/OUT, PULL_DOWN,
`value()`, `irq()`), `Timer` (one-shot/periodic, on the bench scheduler), `unique_id`, `reset`.
Interrupt and timer callbacks run at the virtual instant of their cause, outside the program's
main loop (as soft or hard IRQs do between bytecodes), then `kick` the loop so it prints what
they queued.
"""
from __future__ import annotations

import types
from typing import Any, Callable

from .bench_wiring import BenchWiring
from .scheduler import Scheduler, Timer as SchedTimer

SWITCH_FUNCTIONS = ("vin", "vbus", "antenna")


class TesterBoard:
    """Pin numbers → bench functions (from the pin map), levels, IRQ handlers, timers."""

    # rp2 port constants (ports/rp2/machine_pin.c)
    IN, OUT, OPEN_DRAIN = 0, 1, 2
    PULL_UP, PULL_DOWN = 1, 2
    IRQ_FALLING, IRQ_RISING = 4, 8

    def __init__(self, sched: Scheduler, wiring: BenchWiring, pin_map: dict[str, Any],
                 kick: Callable[[], None]) -> None:
        self.sched = sched
        self.wiring = wiring
        self.kick = kick
        self.functions: dict[int, tuple[str, bool]] = {
            cfg["pin"]: (name, bool(cfg.get("active_high", True)))
            for name, cfg in pin_map.items() if isinstance(cfg, dict) and "pin" in cfg}
        self.levels: dict[int, int] = {}
        self.irqs: dict[int, tuple[Callable[[Any], None], int, Any]] = {}
        self.seen: dict[str, int] = {}  # last input level delivered per function (edge detection)
        wiring.on_input = self._input_changed

    # -- pins ---------------------------------------------------------------------------------
    def function(self, pin: int) -> str | None:
        entry = self.functions.get(pin)
        return entry[0] if entry else None

    def write(self, pin: int, level: int) -> None:
        level = 1 if level else 0
        if self.levels.get(pin) == level:
            return
        self.levels[pin] = level
        entry = self.functions.get(pin)
        if entry is None:
            return
        name, active_high = entry
        if name in SWITCH_FUNCTIONS:
            self.wiring.switch(name, (level == 1) == active_high)
        else:
            self.wiring.drive(name, level)

    def read(self, pin: int, mode: int) -> int:
        name = self.function(pin)
        if mode == self.IN and name is not None:
            return self.wiring.read(name)
        return self.levels.get(pin, 0)

    def _input_changed(self, function: str, level: int) -> None:
        before = self.seen.get(function, 0)
        self.seen[function] = level
        if level == before:
            return
        for pin, (handler, trigger, obj) in list(self.irqs.items()):
            if self.function(pin) != function:
                continue
            if (level and trigger & self.IRQ_RISING) or (not level and trigger & self.IRQ_FALLING):
                handler(obj)
                self.kick()

    # -- the module -----------------------------------------------------------------------------
    def module(self) -> types.SimpleNamespace:
        return types.SimpleNamespace(Pin=_pin_class(self), Timer=_timer_class(self),
                                     unique_id=lambda: b"otarigsim", freq=lambda: 125_000_000,
                                     reset=_no_reset)


def _no_reset() -> None:
    raise RuntimeError("machine.reset() on the simulated tester board: not modelled")


def _pin_class(board: TesterBoard) -> type:
    class Pin:
        IN, OUT, OPEN_DRAIN = TesterBoard.IN, TesterBoard.OUT, TesterBoard.OPEN_DRAIN
        PULL_UP, PULL_DOWN = TesterBoard.PULL_UP, TesterBoard.PULL_DOWN
        IRQ_FALLING, IRQ_RISING = TesterBoard.IRQ_FALLING, TesterBoard.IRQ_RISING

        def __init__(self, id: int, mode: int = -1, pull: int = -1, *, value: int | None = None) -> None:
            self.id = id
            self.mode = mode
            if value is not None:
                board.write(id, value)

        def value(self, v: int | None = None) -> int | None:
            if v is None:
                return board.read(self.id, self.mode)
            board.write(self.id, v)
            return None

        def irq(self, handler: Callable[[Any], None] | None = None,
                trigger: int = TesterBoard.IRQ_FALLING | TesterBoard.IRQ_RISING, hard: bool = False) -> None:
            if handler is None:
                board.irqs.pop(self.id, None)
            else:
                board.irqs[self.id] = (handler, trigger, self)

    return Pin


def _timer_class(board: TesterBoard) -> type:
    class Timer:
        ONE_SHOT, PERIODIC = 0, 1

        def __init__(self, id: int = -1, **kw: Any) -> None:
            self._t: SchedTimer | None = None
            if kw:
                self.init(**kw)

        def init(self, *, mode: int = 1, period: int = -1, callback: Callable[[Any], None] | None = None,
                 freq: float = -1, tick_hz: int = 1000) -> None:
            self.deinit()
            if freq > 0:
                period = max(int(1000 / freq), 1)
            self._mode, self._period, self._callback = mode, max(int(period), 0), callback
            self._t = board.sched.after(self._period, self._fire)

        def _fire(self) -> None:
            if self._mode == self.PERIODIC:
                self._t = board.sched.after(max(self._period, 1), self._fire)
            else:
                self._t = None
            if self._callback is not None:
                self._callback(self)
                board.kick()

        def deinit(self) -> None:
            if self._t is not None:
                self._t.cancel()
                self._t = None

    return Timer
