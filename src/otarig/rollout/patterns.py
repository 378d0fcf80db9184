"""Per-device schedules and random draws, shared by the event model and the vectorised model.

Every random quantity is a counter-based hash of (seed, stream, device, k), not a stateful RNG, so
both models see exactly the same park times, wake phases, power cycles and renegotiation lags
for a device whatever order they visit it in — and a run is deterministic per seed.
All functions take numpy arrays of global device indices and return arrays (times in ms, float64).
"""
from __future__ import annotations

import numpy as np

from otarig.sim.params import DAY_MS

from .fleet import Cohort

HOUR_MS = 3_600_000
INF = float("inf")

# streams
S_PC, S_RST, S_LAG, S_RESID, S_WAKE, S_WIN, S_GUARD, S_EXP = range(1, 9)

_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_C3 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (public-domain constants)."""
    with np.errstate(over="ignore"):
        x = x + _C1
        x = (x ^ (x >> np.uint64(30))) * _C2
        x = (x ^ (x >> np.uint64(27))) * _C3
        return x ^ (x >> np.uint64(31))


def u01(seed: int, stream: int, gid, k=0) -> np.ndarray:
    """Uniform [0, 1) for each (device, k)."""
    g = np.asarray(gid, dtype=np.uint64)
    kk = np.asarray(k, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = _mix(np.uint64(seed & 0xFFFFFFFF) * _C3 + np.uint64(stream))
        x = _mix(x ^ (g * _C2))
        x = _mix(x ^ (kk * _C1))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def exp_ms(seed: int, stream: int, gid, k, rate_per_day: float) -> np.ndarray:
    """Exponential inter-arrival (ms) of a Poisson process with `rate_per_day`."""
    if rate_per_day <= 0:
        return np.full(np.shape(np.asarray(gid)), INF)
    u = u01(seed, stream, gid, k)
    return -np.log1p(-u) * DAY_MS / rate_per_day


class DailyWindows:
    """Windows repeating every day, each edge jittered per (device, day) by ±jitter."""

    def __init__(self, windows_h: list[tuple[float, float]], jitter_ms: float, seed: int, stream: int) -> None:
        self.w = [(s * HOUR_MS, e * HOUR_MS) for s, e in windows_h]
        self.jitter = float(jitter_ms)
        self.seed, self.stream = seed, stream
        self.always = any(e - s >= DAY_MS for s, e in self.w) and self.jitter == 0

    def bounds(self, gid: np.ndarray, day: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
        s, e = self.w[i]
        base = day.astype(np.float64) * DAY_MS
        if self.jitter:
            k = day * 64 + i * 2
            s = s + (2 * u01(self.seed, self.stream, gid, k) - 1) * self.jitter
            e = e + (2 * u01(self.seed, self.stream, gid, k + 1) - 1) * self.jitter
        start = base + s
        return start, np.maximum(base + e, start + 60_000)

    def inside(self, gid: np.ndarray, t: np.ndarray) -> np.ndarray:
        if self.always:
            return np.ones(np.shape(t), dtype=bool)
        d0 = np.floor(t / DAY_MS).astype(np.int64)
        out = np.zeros(np.shape(t), dtype=bool)
        for dd in (-2, -1, 0, 1):
            for i in range(len(self.w)):
                s, e = self.bounds(gid, d0 + dd, i)
                out |= (s <= t) & (t < e)
        return out

    def next_edge(self, gid: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The first window start or end strictly after t."""
        if self.always:
            return np.full(np.shape(t), INF)
        d0 = np.floor(t / DAY_MS).astype(np.int64)
        best = np.full(np.shape(t), INF)
        for dd in (-2, -1, 0, 1, 2):
            for i in range(len(self.w)):
                s, e = self.bounds(gid, d0 + dd, i)
                best = np.where((s > t) & (s < best), s, best)
                best = np.where((e > t) & (e < best), e, best)
        return best

    def last_start(self, gid: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The latest window start at or before t (−inf if none in the last 3 days)."""
        d0 = np.floor(t / DAY_MS).astype(np.int64)
        best = np.full(np.shape(t), -INF)
        for dd in (-3, -2, -1, 0):
            for i in range(len(self.w)):
                s, _ = self.bounds(gid, d0 + dd, i)
                best = np.where((s <= t) & (s > best), s, best)
        return best


class CohortSchedule:
    """When a cohort's devices are awake (cloud wanted) and when their app is idle."""

    def __init__(self, c: Cohort, seed: int) -> None:
        self.c = c
        self.seed = seed
        jitter = c.jitter_min * 60_000
        if c.connectivity == "vehicle":
            dep = c.depart_at if c.depart_at > c.park_at else c.depart_at + 24
            self.idle = DailyWindows([(c.park_at, dep)], jitter, seed, S_WIN)
        else:
            self.idle = DailyWindows(list(c.idle_windows), jitter, seed, S_WIN)
        self.sleep: DailyWindows | None = None
        if c.connectivity == "daily_sleep":
            wake = c.wake_at if c.wake_at > c.sleep_at else c.wake_at + 24
            self.sleep = DailyWindows([(c.sleep_at, wake)], 0.0, seed, S_WIN + 100)
        self.period = c.wake_interval_min * 60_000
        self.awake = c.awake_min * 60_000

    @property
    def always_online(self) -> bool:
        return self.c.connectivity in ("always_on", "vehicle")

    def phase(self, gid: np.ndarray) -> np.ndarray:
        return u01(self.seed, S_WAKE, gid) * self.period

    def online(self, gid: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Awake per the schedule (the device wants the cloud)."""
        if self.always_online:
            return np.ones(np.shape(t), dtype=bool)
        if self.sleep is not None:
            return ~self.sleep.inside(gid, t)
        return np.mod(t - self.phase(gid), self.period) < self.awake

    def next_online_edge(self, gid: np.ndarray, t: np.ndarray) -> np.ndarray:
        if self.always_online:
            return np.full(np.shape(t), INF)
        if self.sleep is not None:
            return self.sleep.next_edge(gid, t)
        ph = self.phase(gid)
        k = np.floor((t - ph) / self.period)
        start = ph + k * self.period
        end = start + self.awake
        return np.where(t < end, end, start + self.period)

    def next_edge(self, gid: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The next change of either schedule, rounded up to a whole ms (both models use ms ticks)."""
        return np.ceil(np.minimum(self.next_online_edge(gid, t), self.idle.next_edge(gid, t)))


def initial_residual(seed: int, gid: np.ndarray, a_ms: float, lag_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """Stationary phase of the renegotiation cycle (cycle length uniform on [a, a+lag]).

    A random instant falls in a cycle picked with probability ∝ its length (length-biased
    draw: C = sqrt(a² + U·((a+lag)² − a²))) at a uniform point of it. Returns (time to the next
    renegotiation, lag of the current cycle)."""
    u1 = u01(seed, S_RESID, gid)
    u2 = u01(seed, S_RESID, gid, 1)
    b = a_ms + lag_ms
    cyc = np.sqrt(a_ms * a_ms + u1 * (b * b - a_ms * a_ms))
    return u2 * cyc, cyc - a_ms
