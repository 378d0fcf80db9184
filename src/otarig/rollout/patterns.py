"""Per-device schedules and random draws, shared by the event model and the vectorised model.

Every random quantity is a counter-based hash of (seed, stream, device, k), not a stateful RNG, so
both models see exactly the same park times, wake phases, power cycles and renegotiation lags
for a device whatever order they visit it in — and a run is deterministic per seed.
Functions take numpy arrays of global device indices (or their draw keys, `*_k`, computed once per
device) and return arrays (times in ms, float64).
"""
from __future__ import annotations

from dataclasses import dataclass

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
    """splitmix64 finaliser (public-domain constants), in place on a fresh uint64 array."""
    with np.errstate(over="ignore"):
        if np.ndim(x) == 0:
            x = x + _C1
            x = (x ^ (x >> np.uint64(30))) * _C2
            x = (x ^ (x >> np.uint64(27))) * _C3
            return x ^ (x >> np.uint64(31))
        x += _C1
        t = x >> np.uint64(30)
        x ^= t
        x *= _C2
        np.right_shift(x, np.uint64(27), out=t)
        x ^= t
        x *= _C3
        np.right_shift(x, np.uint64(31), out=t)
        x ^= t
        return x


def draw_key(seed: int, stream: int, gid) -> np.ndarray:
    """The (seed, stream, device) part of every draw of a device: compute once, draw often."""
    g = np.asarray(gid, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = _mix(np.uint64(seed & 0xFFFFFFFF) * _C3 + np.uint64(stream))
        return _mix(g * _C2 ^ x)


def u01_k(key: np.ndarray, k=0) -> np.ndarray:
    """Uniform [0, 1) for draw k of the devices whose `draw_key`s are given."""
    kk = np.asarray(k, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = _mix(np.bitwise_xor(key, kk * _C1))
        return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def u01(seed: int, stream: int, gid, k=0) -> np.ndarray:
    """Uniform [0, 1) for each (device, k)."""
    return u01_k(draw_key(seed, stream, gid), k)


def exp_ms(seed: int, stream: int, gid, k, rate_per_day: float) -> np.ndarray:
    """Exponential inter-arrival (ms) of a Poisson process with `rate_per_day`."""
    if rate_per_day <= 0:
        return np.full(np.shape(np.asarray(gid)), INF)
    u = u01(seed, stream, gid, k)
    return -np.log1p(-u) * DAY_MS / rate_per_day


class DailyWindows:
    """Windows repeating every day, each edge jittered per (device, day) by ±jitter.

    The `*_k` methods take the devices' draw keys (`key(gid)`, computed once per device); the
    others take device indices and compute the keys on the way.
    """

    def __init__(self, windows_h: list[tuple[float, float]], jitter_ms: float, seed: int, stream: int) -> None:
        self.w = [(s * HOUR_MS, e * HOUR_MS) for s, e in windows_h]
        self.jitter = float(jitter_ms)
        self.seed, self.stream = seed, stream
        self.always = any(e - s >= DAY_MS for s, e in self.w) and self.jitter == 0

    def key(self, gid) -> np.ndarray:
        if not self.jitter:
            return np.zeros(np.shape(gid), dtype=np.uint64)  # unjittered windows draw nothing
        return draw_key(self.seed, self.stream, gid)

    def bounds(self, key: np.ndarray, day: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
        s, e = self.w[i]
        base = day.astype(np.float64) * DAY_MS
        if self.jitter:
            k = day * 64 + i * 2
            s = s + (2 * u01_k(key, k) - 1) * self.jitter
            e = e + (2 * u01_k(key, k + 1) - 1) * self.jitter
        start = base + s
        return start, np.maximum(base + e, start + 60_000)

    def inside_next_k(self, key: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(inside a window at t, the first window start or end strictly after t), one pass."""
        if self.always:
            return np.ones(np.shape(t), dtype=bool), np.full(np.shape(t), INF)
        d0 = np.floor(t / DAY_MS).astype(np.int64)
        inside = np.zeros(np.shape(t), dtype=bool)
        best = np.full(np.shape(t), INF)
        for dd in (-2, -1, 0, 1, 2):
            for i in range(len(self.w)):
                s, e = self.bounds(key, d0 + dd, i)
                if dd < 2:
                    inside |= (s <= t) & (t < e)
                np.copyto(best, s, where=(s > t) & (s < best))
                np.copyto(best, e, where=(e > t) & (e < best))
        return inside, best

    def inside_k(self, key: np.ndarray, t: np.ndarray) -> np.ndarray:
        if self.always:
            return np.ones(np.shape(t), dtype=bool)
        d0 = np.floor(t / DAY_MS).astype(np.int64)
        out = np.zeros(np.shape(t), dtype=bool)
        for dd in (-2, -1, 0, 1):
            for i in range(len(self.w)):
                s, e = self.bounds(key, d0 + dd, i)
                out |= (s <= t) & (t < e)
        return out

    def next_edge_k(self, key: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The first window start or end strictly after t."""
        return self.inside_next_k(key, t)[1]

    def inside(self, gid: np.ndarray, t: np.ndarray) -> np.ndarray:
        return self.inside_k(self.key(gid), t)

    def next_edge(self, gid: np.ndarray, t: np.ndarray) -> np.ndarray:
        return self.next_edge_k(self.key(gid), t)

    def last_start(self, gid: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The latest window start at or before t (−inf if none in the last 3 days)."""
        key = self.key(gid)
        d0 = np.floor(t / DAY_MS).astype(np.int64)
        best = np.full(np.shape(t), -INF)
        for dd in (-3, -2, -1, 0):
            for i in range(len(self.w)):
                s, _ = self.bounds(key, d0 + dd, i)
                best = np.where((s <= t) & (s > best), s, best)
        return best


@dataclass(frozen=True)
class ScheduleKey:
    """What a device's schedule draws, computed once: idle-window draw keys and wake phase (ms).
    None where the schedule draws nothing (unjittered windows, not waking periodically)."""

    win: np.ndarray | None
    phase: np.ndarray | None


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

    def key(self, gid: np.ndarray) -> ScheduleKey:
        periodic = not self.always_online and self.sleep is None
        return ScheduleKey(self.idle.key(gid), self.phase(gid) if periodic else np.zeros(np.shape(gid)))

    def online_next_k(self, key: ScheduleKey, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(awake per the schedule at t, the next change of that after t)."""
        if self.always_online:
            return np.ones(np.shape(t), dtype=bool), np.full(np.shape(t), INF)
        if self.sleep is not None:
            asleep, nxt = self.sleep.inside_next_k(key.win, t)
            return ~asleep, nxt
        ph = key.phase
        online = np.mod(t - ph, self.period) < self.awake
        k = np.floor((t - ph) / self.period)
        start = ph + k * self.period
        end = start + self.awake
        return online, np.where(t < end, end, start + self.period)

    def at_k(self, key: ScheduleKey, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(awake, idle, next change of either rounded up to a whole ms) at t, in one pass."""
        online, onext = self.online_next_k(key, t)
        idle, inext = self.idle.inside_next_k(key.win, t)
        return online, idle, np.ceil(np.minimum(onext, inext))

    def online(self, gid: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Awake per the schedule (the device wants the cloud)."""
        return self.online_next_k(self.key(gid), t)[0]

    def next_online_edge(self, gid: np.ndarray, t: np.ndarray) -> np.ndarray:
        return self.online_next_k(self.key(gid), t)[1]

    def next_edge(self, gid: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The next change of either schedule, rounded up to a whole ms (both models use ms ticks)."""
        return self.at_k(self.key(gid), t)[2]


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
