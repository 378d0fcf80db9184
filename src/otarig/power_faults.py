"""Power faults from the rig side, through the bench PSU: works on a real bench and a simulated one.

Why: a real bench cannot see inside the Electron, so a cut "at a named OTA phase" is timed from
what the board says on its serial port (the companion prints every system event, docs/protocol.md)
and executed with SCPI over LAN/USB. This module is that: wait (bench clock) for the phase's event,
then switch the PSU output. On the simulated bench the same code runs against the simulated SCPI
server, and the cut lands at the virtual instant the board printed the line. For cuts placed
exactly between two model steps use `otarig.sim.faults` (simulator only).

Real-bench timing limits (docs/reference/instruments-and-faults.md B.1, docs/power.md §4–§6):

* **Latency chain.** USB CDC line → rig decode → SCPI `OUTP OFF` over LAN → the PSU's output stage.
  Serial adds a few ms; SCPI over LAN jitters by tens of ms (B.1); a PSU's output capacitors hold
  VIN up for another few to tens of ms after `OUTP OFF`. Expect the cut 10–100 ms after the event.
* **Download.** A 512 B chunk takes about 70 ms on 3G and 170 ms on 2G (link profiles, docs/reference/particle-ota.md §5), and
  `progress` fires *before* the chunk is written (docs/reference/particle-ota.md §2.2), so "cut at chunk N" lands within
  about ±1 chunk on 3G, better on 2G. Record the actual figure (the board's next boot says nothing
  about it); sweep N rather than trusting one value.
* **After `complete`.** The window between `complete` and the reset is whatever the firmware holds
  it open: with resets disabled until the app's clean shutdown (OtaGuard) it is hundreds of ms; with
  resets enabled Device OS resets on the next idle pass (ms). The latter cannot be hit over LAN —
  use the bench tester board's VIN/VBUS switch (`firmware/bench/`), which times cuts to the byte.
* **Bootloader copy.** The board goes silent at the reset (USB drops), so a cut "during the copy"
  is timed as a delay after the last line (`reset` event). The copy of a 128 KB module takes on the
  order of a second or two (STM32F2 erase + program; not measured, `DeviceOsParams.bootloader_copy_ms`
  in the simulator), so delays of 100 ms – 1 s land inside it with margin.
* **USB VBUS and the LiPo.** `OUTP OFF` does not cut a board that is also fed by USB VBUS or a
  charged LiPo (docs/power.md §4). `PowerFaults(..., vbus_switched=False)` records that caveat in
  every fault entry; a bench must switch VBUS too (per-port hub power, USB power switch, or the tester
  board) and disconnect or control the battery.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator, Protocol

from .board import Board
from .clock import BenchClock
from .protocol import Event
from .timeline import Timeline


class _Supply(Protocol):
    def output(self, on: bool) -> bool: ...
    def set_current_limit(self, amps: float) -> float: ...
    def current_limit(self) -> float: ...


def _is_fw(e: Event, param: str) -> bool:
    return e.name == "sys" and e.get("event") == "firmware_update" and e.get("param") == param


class _Switches(Protocol):
    """The bench companion's side of a cut (otarig.bench_companion.BenchCompanion)."""

    def power_off(self, ms: int = 0) -> dict: ...
    def switch(self, **states: bool) -> dict: ...
    def arm_cut(self, edges: int, off_ms: int = 0) -> dict: ...

    @property
    def board(self) -> Board: ...


class PowerFaults:
    """Faults done with a bench PSU (VIN) or, when given, the bench companion's VIN and VBUS
    switches (firmware/bench/): cuts then switch both inputs, and a cut at chunk N is timed by the
    companion on the DUT's download status line instead of over serial + LAN (docs/protocol.md).
    Each fault goes into `timeline` as a `fault` entry."""

    def __init__(self, psu: _Supply | None, clock: BenchClock, *, timeline: Timeline | None = None,
                 lock: Any = None, vbus_switched: bool = True, source: str = "fault",
                 companion: _Switches | None = None) -> None:
        if psu is None and companion is None:
            raise ValueError("PowerFaults needs a PSU or a bench companion to cut power with")
        self.psu = psu
        self.companion = companion
        self.clock = clock
        self.timeline = timeline
        #: shared with a `PowerMonitor` on a real bench (one PyVISA session, two threads)
        self.lock = lock if lock is not None else threading.RLock()
        #: docs/power.md §4: False means USB VBUS still feeds the board, so a VIN cut is not a cut.
        self.vbus_switched = vbus_switched or companion is not None
        self.source = source

    # -- primitives -------------------------------------------------------------------------------
    def _note(self, kind: str, **data: Any) -> None:
        if self.timeline is not None:
            if not self.vbus_switched:
                data["caveat"] = "USB VBUS not switched: the board may stay powered (docs/power.md §4)"
            self.timeline.add(self.clock.now(), self.source, kind, data)

    def wait(self, seconds: float) -> None:
        """Let `seconds` of bench time pass (virtual on a simulated bench)."""
        deadline = self.clock.now() + seconds
        while (left := deadline - self.clock.now()) > 0:
            self.clock.wait(left)

    def cut(self, **why: Any) -> float:
        """Switch the power off now; returns the bench time of the command."""
        t = self.clock.now()
        if self.companion is not None:
            self.companion.power_off(0)
            why["via"] = "bench_companion"
        else:
            with self.lock:
                self._psu.output(False)
        self._note("power_cut", **why)
        return t

    def restore(self, **why: Any) -> None:
        if self.companion is not None:
            self.companion.switch(vin=True, vbus=True)
        else:
            with self.lock:
                self._psu.output(True)
        self._note("power_restore", **why)

    @property
    def _psu(self) -> _Supply:
        if self.psu is None:
            raise RuntimeError("this fault needs the bench PSU; PowerFaults was given only a bench companion")
        return self.psu

    def power_cycle(self, off_s: float = 2.0, **why: Any) -> float:
        """Cut, wait `off_s` of bench time, restore. Returns the time of the cut."""
        t = self.cut(**why)
        self.wait(off_s)
        self.restore(**why)
        return t

    def _then(self, off_s: float | None, **why: Any) -> float:
        t = self.cut(**why)
        if off_s is not None:
            self.wait(off_s)
            self.restore(**why)
        return t

    # -- OTA phases, timed from the board's events -------------------------------------------------
    def cut_at_progress(self, board: Board, chunks: int, *, timeout: float = 600.0,
                        off_s: float | None = 2.0) -> float:
        """Cut after the board reported `chunks` chunk `progress` events (0: at `begin`).

        With a bench companion the cut is armed on the DUT's status line (edge `chunks + 1`) and
        done by the companion itself; this waits for its `cut` event. Otherwise waits with
        `board.expect` (consuming the board's events up to that point) and switches the PSU.
        """
        if self.companion is not None:
            off_ms = 0 if off_s is None else int(off_s * 1000)
            self.companion.arm_cut(chunks + 1, off_ms)
            cut = self.companion.board.expect(lambda e: e.name == "cut", timeout)
            t = self.clock.now()
            self._note("power_cut", phase="download", chunks=chunks, via="bench_companion", edges=cut.get("edges"))
            if off_s is not None:
                self.companion.board.expect(lambda e: e.name == "switch" and e.get("closed") is True, off_s + 5)
                self._note("power_restore", phase="download", chunks=chunks, via="bench_companion")
            return t
        seen = 0

        def hit(e: Event) -> bool:
            nonlocal seen
            if chunks == 0:
                return _is_fw(e, "begin")
            if _is_fw(e, "progress"):
                seen += 1
            return seen >= chunks

        board.expect(hit, timeout)
        return self._then(off_s, phase="download", chunks=chunks)

    def cut_after_complete(self, board: Board, *, timeout: float = 600.0, off_s: float | None = 2.0) -> float:
        """Cut when the board reports `firmware_update complete` (before its reset, if it is slow enough)."""
        board.expect(lambda e: _is_fw(e, "complete"), timeout)
        return self._then(off_s, phase="after_complete")

    def cut_during_copy(self, board: Board, delay_s: float = 0.5, *, timeout: float = 600.0,
                        off_s: float | None = 2.0) -> float:
        """Cut `delay_s` after the board announced its reset (the bootloader copies then)."""
        board.expect(lambda e: e.name == "sys" and e.get("event") == "reset", timeout)
        self.wait(delay_s)
        return self._then(off_s, phase="bootloader_copy", delay_s=delay_s)

    # -- brown-out -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def current_limited(self, amps: float) -> Iterator[float]:
        """Hold the current limit at `amps` (below the burst: the supply goes CC, VIN sags, the
        board browns out — docs/reference/instruments-and-faults.md A.3 #5); the previous limit is put back on exit."""
        with self.lock:
            before = self._psu.current_limit()
            self._psu.set_current_limit(amps)
        self._note("current_limit", amps=amps, previous=before)
        try:
            yield before
        finally:
            with self.lock:
                self._psu.set_current_limit(before)
            self._note("current_limit_restored", amps=before)

    def brownout_by_current_limit(self, amps: float, until: Callable[[], bool], *,
                                  timeout: float = 120.0) -> bool:
        """Limit the current to `amps` until `until()` holds (or `timeout`), then restore the limit.

        Returns whether `until()` held. Typical `until`: the board's next `boot` event says
        `power_brownout`.
        """
        deadline = self.clock.now() + timeout
        with self.current_limited(amps):
            while not until():
                left = deadline - self.clock.now()
                if left <= 0:
                    return False
                self.clock.wait(left)
        return True
