"""A PSU monitor: samples current and voltage into the timeline while a test runs (OpenHTF's idea).

Why: power is the one observation of a board that does not go through its firmware. Sleep modes,
transmit bursts and brown-outs show in the supply current, so a verdict such as "the board slept
at below X mA for 90 % of the window" must come from the PSU, sampled on the bench clock, in the
same timeline as the board's events (docs/design.md principle 5).

Driving: on a simulated bench the clock offers `every(period_s, fn)` and the monitor samples at
exact virtual instants between world steps (never a wall-clock sleep). On a real bench (a clock
without `every`) a background thread samples at the period in wall time; the PSU driver is then
shared between threads, so everything the monitor sends goes under `self.lock` — other users of
the same `PowerSupply` should take it too (the fault API in `otarig.power_faults` does).

Limits are OpenHTF-style measurements: a name, a value with units, the limits, and an outcome.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from .timeline import Entry, Timeline


class _Supply(Protocol):
    def measure_current(self) -> float: ...
    def measure_voltage(self) -> float: ...


@dataclass(frozen=True)
class Sample:
    """One reading, at bench time `t` (seconds)."""

    t: float
    amps: float
    volts: float | None


@dataclass(frozen=True)
class Measurement:
    """A value with units and limits; `passed` is the outcome (OpenHTF `measurements`)."""

    name: str
    value: float
    units: str
    low: float | None = None
    high: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        if math.isnan(self.value):
            return False
        if self.low is not None and self.value < self.low:
            return False
        if self.high is not None and self.value > self.high:
            return False
        return True

    def explain(self) -> str:
        lim = []
        if self.low is not None:
            lim.append(f">= {self.low:g}")
        if self.high is not None:
            lim.append(f"<= {self.high:g}")
        verdict = "PASS" if self.passed else "FAIL"
        extra = f" {self.detail}" if self.detail else ""
        return f"{verdict} {self.name} = {self.value:g} {self.units} (limit {' and '.join(lim) or 'none'}){extra}"


class PowerMonitor:
    """Samples a `PowerSupply` every `period_s` of bench time into `timeline` (source `source`).

    Use as a context manager around the part of a test to watch. A PSU error stops the monitor,
    is recorded in the timeline (`psu_error`) and propagates to whoever is waiting on the clock.
    """

    def __init__(self, psu: _Supply, timeline: Timeline, clock: Any, *, period_s: float = 0.1,
                 source: str = "psu", voltage: bool = True) -> None:
        if period_s <= 0:
            raise ValueError(f"period_s must be > 0, not {period_s!r}")
        self.psu = psu
        self.timeline = timeline
        self.clock = clock
        self.period_s = period_s
        self.source = source
        self.voltage = voltage
        self.samples: list[Sample] = []
        self.error: BaseException | None = None
        self.lock = threading.RLock()
        self._ticker: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "PowerMonitor":
        every = getattr(self.clock, "every", None)
        if every is not None:
            self._ticker = every(self.period_s, self.sample)
        else:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run_wall, name="psu-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=max(2.0, 2 * self.period_s))
            self._thread = None

    def __enter__(self) -> "PowerMonitor":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_wall(self) -> None:
        """Real bench: sample at the period in wall time until stopped or the PSU fails."""
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:  # recorded in self.error and the timeline
                return
            # the period is in bench seconds: on a stand-in's scaled clock that is fewer wall seconds
            self._stop.wait(self.period_s / (getattr(self.clock, "time_scale", 1.0) or 1.0))

    # -- sampling -------------------------------------------------------------------------------
    def sample(self) -> Sample:
        """Read current (and voltage) now; add a `sample` entry to the timeline."""
        t = self.clock.now()
        try:
            with self.lock:
                amps = self.psu.measure_current()
                volts = self.psu.measure_voltage() if self.voltage else None
        except Exception as exc:
            self.error = exc
            self.timeline.add(t, self.source, "psu_error", {"error": str(exc), "type": type(exc).__name__})
            self.stop()
            raise
        s = Sample(t, amps, volts)
        self.samples.append(s)
        data: dict[str, Any] = {"amps": amps}
        if volts is not None:
            data["volts"] = volts
        self.timeline.add(t, self.source, "sample", data)
        return s

    def window(self, start: float | None = None, end: float | None = None) -> list[Sample]:
        return [s for s in self.samples if (start is None or s.t >= start) and (end is None or s.t <= end)]

    # -- measurements ---------------------------------------------------------------------------
    def _record(self, m: Measurement) -> Measurement:
        self.timeline.add(self.clock.now(), self.source, "measurement",
                          {"name": m.name, "value": m.value, "units": m.units, "low": m.low,
                           "high": m.high, "passed": m.passed, **m.detail})
        return m

    def fraction_below(self, limit_a: float, start: float | None = None, end: float | None = None, *,
                       min_fraction: float = 0.9, name: str | None = None) -> Measurement:
        """"Current below `limit_a` for at least `min_fraction` of the samples in the window".

        The value is the fraction in percent; it fails on an empty window (nothing was seen).
        """
        win = self.window(start, end)
        below = sum(1 for s in win if s.amps < limit_a)
        value = 100.0 * below / len(win) if win else float("nan")
        return self._record(Measurement(
            name or f"current below {limit_a * 1000:g} mA", value, "%", low=100.0 * min_fraction,
            detail={"samples": len(win), "limit_a": limit_a, "start": start, "end": end}))

    def mean_current(self, start: float | None = None, end: float | None = None, *,
                     low: float | None = None, high: float | None = None, name: str = "mean current"
                     ) -> Measurement:
        """Mean sampled current in mA over the window, with optional limits in mA."""
        win = self.window(start, end)
        value = 1000.0 * sum(s.amps for s in win) / len(win) if win else float("nan")
        return self._record(Measurement(name, value, "mA", low=low, high=high,
                                        detail={"samples": len(win), "start": start, "end": end}))

    def peak_current(self, start: float | None = None, end: float | None = None, *,
                     low: float | None = None, high: float | None = None, name: str = "peak current"
                     ) -> Measurement:
        win = self.window(start, end)
        value = max((s.amps for s in win), default=float("nan"))
        return self._record(Measurement(name, value, "A", low=low, high=high,
                                        detail={"samples": len(win), "start": start, "end": end}))


def bursts(samples: list[Sample], threshold_a: float) -> list[tuple[float, float]]:
    """Runs of consecutive samples at or above `threshold_a`: (first t, last t) of each."""
    out: list[tuple[float, float]] = []
    start: float | None = None
    last = 0.0
    for s in samples:
        if s.amps >= threshold_a:
            if start is None:
                start = s.t
            last = s.t
        elif start is not None:
            out.append((start, last))
            start = None
    if start is not None:
        out.append((start, last))
    return out


def samples_from_timeline(timeline: Timeline, source: str = "psu") -> list[Sample]:
    """The samples a monitor wrote, read back from a timeline (e.g. one loaded from JSONL)."""
    out = []
    for e in timeline.select(source=source, kind="sample"):
        out.append(Sample(e.t, float(e.get("amps")), e.get("volts")))
    return out


__all__ = ["Measurement", "PowerMonitor", "Sample", "bursts", "samples_from_timeline", "Entry"]
