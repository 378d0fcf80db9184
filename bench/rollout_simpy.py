"""A SimPy yardstick for the rollout planner (issue 15): the planner's rules, one process per device.

Why: "N× faster than an event model" means something only if that model does the same work. This
one takes the planner's starting state, per-device draws and `otarig.sim.cloud_rules` decisions,
and matches the reference event model device by device (tests/test_rollout_simpy.py). It is as
fast as SimPy reasonably gets: one process per device waiting on its own earliest timer, schedules
in plain floats; `chunk` runs the independent devices in batches, one environment each (about 3×
faster at 10^5 devices). Needs the bench extra: `pip install -e '.[bench]'`.
"""
from __future__ import annotations

import math
import time
from operator import itemgetter
from typing import Callable, Iterator

import numpy as np
import simpy

from otarig.rollout.common import CohortInit, RolloutResult, initial_state, release_time_ms
from otarig.rollout.fleet import Cohort, Fleet
from otarig.rollout.patterns import HOUR_MS, S_LAG, S_PC, S_RST, S_WIN, draw_key
from otarig.rollout.strategies import PlannerParams, Strategy
from otarig.sim import cloud_rules as rules
from otarig.sim.link import PROFILES
from otarig.sim.params import DAY_MS

INF = math.inf
#: How far apart the planner's and this model's 50/90/99/100 % times may be, in hours. Both take
#: the same per-device draws and rules, so they differ only where the planner keeps fractional ms
#: (≤ a few ms) or orders two events of one device at the same instant differently.
AGREEMENT_H = 0.05
_M64 = (1 << 64) - 1
_C1, _C2, _C3 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_TWO53 = float(1 << 53)


def _mix(x: int) -> int:
    """splitmix64 finaliser on Python ints (the public-domain constants `patterns` uses)."""
    x = (x + _C1) & _M64
    x = ((x ^ (x >> 30)) * _C2) & _M64
    x = ((x ^ (x >> 27)) * _C3) & _M64
    return x ^ (x >> 31)


def draw_head(seed: int, stream: int, gid: int) -> int:
    """The (seed, stream, device) part of a draw, computed once per device and stream."""
    x = _mix(((seed & 0xFFFFFFFF) * _C3 + stream) & _M64)
    return _mix(x ^ ((gid * _C2) & _M64))


def draw(head: int, k: int) -> float:
    """Uniform [0, 1) for draw k of a device: equal to `patterns.u01(seed, stream, gid, k)`."""
    return (_mix(head ^ (((k & _M64) * _C1) & _M64)) >> 11) / _TWO53


class _Windows:
    """Daily windows of one cohort, for one device at a time (edges jittered per device and day)."""

    def __init__(self, windows_h: list[tuple[float, float]], jitter_ms: float) -> None:
        self.w = [(s * HOUR_MS, e * HOUR_MS) for s, e in windows_h]
        self.jitter = float(jitter_ms)
        self.always = any(e - s >= DAY_MS for s, e in self.w) and self.jitter == 0

    def day(self, head: int, cache: dict[int, list[tuple[float, float]]], d: int) -> list[tuple[float, float]]:
        """Day d's windows; `cache` is the device's, for its jittered (idle) windows only."""
        b = cache.get(d) if self.jitter else None
        if b is not None:
            return b
        b = []
        base = float(d) * DAY_MS
        for i, (s, e) in enumerate(self.w):
            if self.jitter:
                k = d * 64 + i * 2
                s = s + (2 * draw(head, k) - 1) * self.jitter
                e = e + (2 * draw(head, k + 1) - 1) * self.jitter
            start = base + s
            b.append((start, max(base + e, start + 60_000)))
        if self.jitter:
            if len(cache) > 8:
                for old in [x for x in cache if x < d - 3]:
                    del cache[old]
            cache[d] = b
        return b

    def inside(self, head: int, cache: dict, t: float) -> bool:
        if self.always:
            return True
        d0 = math.floor(t / DAY_MS)
        for dd in (-2, -1, 0, 1):
            for s, e in self.day(head, cache, d0 + dd):
                if s <= t < e:
                    return True
        return False

    def next_edge(self, head: int, cache: dict, t: float) -> float:
        """The first window start or end strictly after t."""
        if self.always:
            return INF
        d0 = math.floor(t / DAY_MS)
        best = INF
        for dd in (-2, -1, 0, 1, 2):
            for s, e in self.day(head, cache, d0 + dd):
                if t < s < best:
                    best = s
                if t < e < best:
                    best = e
        return best


class _CohortConst:
    """What every device of a cohort shares: schedule shape and timings (ms)."""

    def __init__(self, c: Cohort, fleet: Fleet, p: PlannerParams, strategy: Strategy) -> None:
        self.c = c
        jitter = c.jitter_min * 60_000
        if c.connectivity == "vehicle":
            dep = c.depart_at if c.depart_at > c.park_at else c.depart_at + 24
            self.idle = _Windows([(c.park_at, dep)], jitter)
        else:
            self.idle = _Windows(list(c.idle_windows), jitter)
        self.sleep: _Windows | None = None
        if c.connectivity == "daily_sleep":
            wake = c.wake_at if c.wake_at > c.sleep_at else c.wake_at + 24
            self.sleep = _Windows([(c.sleep_at, wake)], 0.0)
        self.always_online = c.connectivity in ("always_on", "vehicle")
        self.period = c.wake_interval_min * 60_000
        self.awake_ms = c.awake_min * 60_000
        size = fleet.release.size_bytes
        self.lat = float(PROFILES[c.link].one_way_latency_ms)
        self.dur = float(p.transfer_ms(size, c.link))
        self.on_air = p.on_air_bytes(size)
        self.beg_delay = float(p.begin_delay_ms(c.link))
        self.cold_ms = float(p.cold_connect_ms(c.link))
        self.wake_ms = float(p.wake_connect_ms(c.link, False))
        self.after_ms = float(p.after_transfer_ms(c.link))
        self.guarded = c.guarded
        self.icap = c.intelligent_capable
        self.fcap = c.forced_capable
        self.leakable = c.boot_leak and p.boot_leak
        self.holds = c.holds_sleep_during_ota
        self.sleep_mode = c.sleep_mode
        self.pc_rate = float(c.power_cycles_per_day)
        self.rst_rate = float(c.resets_per_day)


class _Device:
    """One device and the cloud's record of it, driven by one SimPy process."""

    __slots__ = ("m", "k", "gid", "phase", "win_head", "bcache", "pc_head", "rst_head", "lag_head", "timers",
                 "seq", "conn_kind", "needs", "awake", "online", "idle", "enabled", "forced_dev", "dev_pending",
                 "leak", "guard_last", "expiry", "sess_k", "pending_notified", "retry_needed", "offer_pend",
                 "xfer_start", "pc_k", "rst_k", "updated_at", "began_outside", "ended_in_window", "full",
                 "resumes", "ota", "retry_bytes", "retries", "done")

    def __init__(self, m: "SimpyRollout", k: _CohortConst, gid: int, phase: float, awake: bool, idle: bool,
                 heads: tuple[int, int, int, int]) -> None:
        self.m, self.k, self.gid, self.phase = m, k, gid, phase
        self.win_head, self.pc_head, self.rst_head, self.lag_head = heads
        self.bcache: dict[int, list[tuple[float, float]]] = {}
        self.timers: dict[str, tuple[float, int, Callable[[], None]]] = {}
        self.seq = 0
        self.conn_kind = "resume"
        self.awake = self.online = awake
        self.idle = idle
        self.enabled = not k.guarded
        self.forced_dev = self.dev_pending = self.leak = False
        self.sess_k = self.pc_k = self.rst_k = 0
        self.pending_notified = self.retry_needed = self.offer_pend = False
        self.xfer_start: float | None = None
        self.updated_at = INF
        self.began_outside = self.ended_in_window = False
        self.full = self.resumes = self.ota = self.retry_bytes = self.retries = 0
        self.done = False

    # -- schedule --------------------------------------------------------------------------------
    def sched_online(self, t: float) -> bool:
        k = self.k
        if k.always_online:
            return True
        if k.sleep is not None:
            return not k.sleep.inside(0, self.bcache, t)
        return (t - self.phase) % k.period < k.awake_ms

    def next_edge(self, t: float) -> float:
        k = self.k
        if k.always_online:
            on = INF
        elif k.sleep is not None:
            on = k.sleep.next_edge(0, self.bcache, t)
        else:
            start = self.phase + math.floor((t - self.phase) / k.period) * k.period
            end = start + k.awake_ms
            on = end if t < end else start + k.period
        return math.ceil(min(on, k.idle.next_edge(self.win_head, self.bcache, t)))

    # -- timers ------------------------------------------------------------------------------------
    def arm(self, name: str, when: float, fn: Callable[[], None]) -> None:
        timers = self.timers
        timers.pop(name, None)
        if when < self.m.t_end:
            self.seq += 1
            timers[name] = (max(math.ceil(when), self.m.env.now), self.seq, fn)

    def process(self) -> Iterator[simpy.events.Event]:
        env = self.m.env
        timers = self.timers
        key = itemgetter(1)
        m = self.m
        while timers:
            name, (when, _, fn) = min(timers.items(), key=key)
            if when > env.now:
                yield env.timeout(when - env.now)
            del timers[name]
            m.events += 1
            fn()

    def arm_guard(self) -> None:
        if self.m.strategy is Strategy.STANDARD_DAILY:
            self.arm("guard", max(self.guard_last + self.m.p.guard_handshake_interval_ms, self.m.env.now),
                     self.maybe_guard_handshake)

    # -- cloud ---------------------------------------------------------------------------------------
    def offer(self, delay: float = 0.0) -> None:
        if self.offer_pend or self.xfer_start is not None or self.done:
            return
        self.retry_needed = False
        self.offer_pend = True
        self.arm("begin", self.m.env.now + delay + self.k.beg_delay, self.update_begin)

    def release(self) -> None:
        s, k = self.m.strategy, self.k
        if s is Strategy.INTELLIGENT and k.icap:
            action = rules.intelligent_release_action(online=self.online, needs_update=self.needs,
                                                      enabled=self.enabled, forced=False)
            if action == "deliver":
                self.offer()
            elif action == "notify":
                self.notified()
        elif s is Strategy.LOCK_FLASH and self.online:
            self.offer()
        elif s is Strategy.FORCED and self.online and k.fcap:
            self.forced_echo()

    def forced_echo(self) -> None:
        self.forced_dev = True
        if rules.deliver_on_forced_echo(echoed_forced=True, forced_setting=True, needs_update=self.needs):
            self.offer(2 * self.k.lat)

    def notified(self) -> None:
        self.pending_notified = True
        if self.k.icap:
            self.dev_pending = True
            self.guard_poll()

    def connection_up(self) -> None:
        self.connected(self.conn_kind)

    def connected(self, kind: str) -> None:
        """A cloud connection completed: "full", "resume" or "hello" (resume + HELLO)."""
        m, k, now = self.m, self.k, self.m.env.now
        if self.done:
            return
        a = m.p.cloud.session_max_age_ms
        full = kind == "full" or rules.session_expired(established_ms=math.ceil(self.expiry - a), now_ms=now,
                                                        max_age_ms=a)
        self.online = True
        if full:
            self.full += 1
            self.new_session()
        else:
            self.resumes += 1
        checked = rules.connection_is_check(resumed=not full, hello_sent=full or kind == "hello",
                                            check_on_resume=m.p.cloud.check_on_resume)
        if m.strategy is Strategy.FORCED and k.fcap and m.p.cloud.resend_forced_on_connect:
            self.forced_echo()
        if k.fcap and rules.deliver_on_enabled(enabled=self.enabled, needs_update=self.needs,
                                               pending_notified=self.pending_notified,
                                               last_release_intelligent=m.strategy is Strategy.INTELLIGENT,
                                               retry_needed=self.retry_needed):
            self.offer()
        action = rules.after_connect_action(
            needs_update=self.needs, busy=self.offer_pend or self.xfer_start is not None, checked=checked,
            retry_needed=self.retry_needed, pending_notified=self.pending_notified,
            allowed=rules.updates_allowed(enabled=self.enabled, forced=self.forced_dev),
            renotify_pending=m.p.cloud.renotify_pending_on_connect)
        if action == "deliver":
            self.offer(m.p.cloud.pending_false_delay_ms)
        elif action == "renotify":
            self.notified()
        self.guard_poll()
        self.arm_guard()

    def new_session(self) -> None:
        p = self.m.p
        self.sess_k += 1
        self.expiry = self.m.env.now + p.cloud.session_max_age_ms
        if p.renegotiation == "next_connect":
            self.timers.pop("reneg", None)
        else:
            self.arm("reneg", self.expiry + draw(self.lag_head, self.sess_k) * self.m.lag_max, self.renegotiate)

    def renegotiate(self) -> None:
        if self.online and self.xfer_start is None and not self.offer_pend:
            self.connected("full")
        elif self.online:
            self.arm("reneg", self.m.env.now + 60_000, self.renegotiate)

    # -- device / app ----------------------------------------------------------------------------------
    def update_begin(self) -> None:
        k, now = self.k, self.m.env.now
        self.offer_pend = False
        if not self.online:
            self.retry_needed = True
            return
        allowed = rules.updates_allowed(enabled=self.enabled or self.leak, forced=self.forced_dev)
        if not allowed and k.guarded and not k.icap and self.idle:
            allowed = True  # before 1.2: firmware_update_pending handled during the begin wait (docs/reference/particle-ota.md §2.1)
        self.leak = False
        if not allowed:
            self.notified()
            return
        self.xfer_start = now
        self.began_outside = self.began_outside or not self.idle
        self.dev_pending = False
        self.arm("end", now + k.dur, self.transfer_done)

    def transfer_done(self) -> None:
        k, now = self.k, self.m.env.now
        start = self.xfer_start
        self.xfer_start = None
        self.ota += k.on_air
        self.resumes += 1
        self.ended_in_window = bool(self.idle and start is not None
                                    and k.idle.next_edge(self.win_head, self.bcache, start) >= now)
        self.updated_at = now + k.after_ms - self.m.t0
        self.done = True
        self.timers.clear()

    def cut(self) -> None:
        if self.xfer_start is not None:
            k = self.k
            frac = (self.m.env.now - self.xfer_start) / max(k.dur, 1)
            self.retry_bytes += int(k.on_air * min(frac, 1.0))
            self.retries += 1
            self.xfer_start = None
            self.timers.pop("end", None)
            self.retry_needed = True
            if k.guarded:
                self.enabled = False
        self.online = False

    def boot(self, cold: bool) -> None:
        k, now = self.k, self.m.env.now
        self.cut()
        self.enabled = not k.guarded
        self.forced_dev = self.dev_pending = False
        self.guard_last = now
        self.leak = k.leakable
        self.conn_kind = "full" if cold else "resume"
        self.arm("conn", now + (k.cold_ms if cold else self.m.p.devos.boot_ms + k.wake_ms), self.connection_up)

    def power_cycle(self) -> None:
        self.pc_k += 1
        u = draw(self.pc_head, self.pc_k)
        self.arm("pc", self.m.env.now - math.log1p(-u) * DAY_MS / self.k.pc_rate, self.power_cycle)
        if self.awake and not self.done:
            self.boot(cold=not self.m.p.devos.session_survives_power_loss)

    def reset(self) -> None:
        self.rst_k += 1
        u = draw(self.rst_head, self.rst_k)
        self.arm("rst", self.m.env.now - math.log1p(-u) * DAY_MS / self.k.rst_rate, self.reset)
        if self.awake and not self.done:
            self.boot(cold=False)

    def edge(self) -> None:
        k, now = self.k, self.m.env.now
        awake = self.sched_online(now)
        idle = k.idle.inside(self.win_head, self.bcache, now)
        was_idle = self.idle
        self.idle = idle
        if awake != self.awake and not (not awake and self.xfer_start is not None and k.holds):
            self.awake = awake
            if not awake:
                self.cut()
                self.timers.pop("conn", None)
            elif k.sleep_mode in ("hibernate", "power_off"):
                self.boot(cold=k.sleep_mode == "power_off")
            else:
                self.conn_kind = "resume"
                self.arm("conn", now + k.wake_ms, self.connection_up)
        if idle and not was_idle:
            self.guard_poll()
            self.maybe_guard_handshake()
        elif was_idle and not idle and k.guarded and self.xfer_start is None:
            self.enabled = False
        self.arm("edge", self.next_edge(now), self.edge)

    def guard_poll(self) -> None:
        if not (self.k.guarded and self.dev_pending and self.online and self.idle and not self.enabled):
            return
        self.enabled = True
        if rules.deliver_on_enabled(enabled=True, needs_update=self.needs, pending_notified=self.pending_notified,
                                    last_release_intelligent=self.m.strategy is Strategy.INTELLIGENT,
                                    retry_needed=self.retry_needed):
            self.offer(self.m.p.guard_loop_ms + self.k.lat)

    def maybe_guard_handshake(self) -> None:
        m = self.m
        if m.strategy is not Strategy.STANDARD_DAILY or self.done:
            return
        if not (self.online and self.idle) or self.xfer_start is not None or self.offer_pend:
            return
        if self.k.guarded and self.enabled:
            return
        now = m.env.now
        if math.ceil(self.guard_last + m.p.guard_handshake_interval_ms) > now:
            self.arm_guard()
            return
        self.guard_last = now
        self.online = False
        self.conn_kind = "full"
        self.arm("conn", now + m.p.guard_reconnect_ms, self.connection_up)
        self.arm_guard()


class SimpyRollout:
    """A fleet in SimPy environments (virtual ms) of at most `chunk` devices each; None: one for all.

    Devices are independent, so running them in batches changes no result; it only keeps the
    working set small (SimPy's event rate falls as the number of live processes grows).
    """

    _OUT = (("updated_at", float), ("began_outside", bool), ("ended_in_window", bool), ("full", np.int64),
            ("resumes", np.int64), ("ota", np.int64), ("retry_bytes", np.int64), ("retries", np.int64))

    def __init__(self, fleet: Fleet, strategy: Strategy, params: PlannerParams | None = None,
                 chunk: int | None = None) -> None:
        self.fleet, self.strategy = fleet, strategy
        self.p = p = params or PlannerParams()
        self.t0 = float(int(release_time_ms(fleet)))
        self.t_end = self.t0 + fleet.horizon_days * DAY_MS
        self.lag_max = float(p.lag_max_ms())
        self.chunk = chunk or fleet.size
        self.env = simpy.Environment(initial_time=self.t0)
        #: device events handled (timers fired)
        self.events = 0
        self.inits = initial_state(fleet, p, strategy)
        self.consts = [_CohortConst(ci.cohort, fleet, p, strategy) for ci in self.inits]
        self.cohort_of = np.concatenate([np.full(c.count, i) for i, c in enumerate(fleet.cohort)])
        self.out = {name: np.zeros(fleet.size, dtype=dt) for name, dt in self._OUT}

    def _add(self, ci: CohortInit, k: _CohortConst, i0: int, i1: int) -> list[_Device]:
        """Devices ci.gid[i0:i1], each with its process started."""
        gid = ci.gid[i0:i1]
        t = np.full(gid.size, self.t0)
        awake = ci.sched.online(gid, t).tolist()
        idle = ci.sched.idle.inside(gid, t).tolist()
        phase = (ci.sched.phase(gid) if ci.cohort.connectivity == "wake_interval" else np.zeros(gid.size)).tolist()
        seed = self.fleet.seed
        # the (seed, stream, device) heads of the draws made during the run, hashed in bulk (same numbers)
        heads = zip(*(draw_key(seed, stream, gid).tolist() if on else [0] * gid.size
                      for stream, on in ((S_WIN, k.idle.jitter), (S_PC, k.pc_rate > 0), (S_RST, k.rst_rate > 0),
                                         (S_LAG, True))))
        cols = zip(gid.tolist(), phase, awake, idle, ci.guard_last[i0:i1].tolist(), ci.expiry[i0:i1].tolist(),
                   ci.reneg_at[i0:i1].tolist(), ci.pc_next[i0:i1].tolist(), ci.rst_next[i0:i1].tolist(), heads)
        env = self.env
        already = not ci.needs and not ci.cohort.development
        out = []
        for g, ph, aw, idl, guard_last, expiry, reneg_at, pc_next, rst_next, hd in cols:
            d = _Device(self, k, g, ph, aw, idl, hd)
            d.needs = ci.needs
            d.guard_last, d.expiry = guard_last, expiry
            out.append(d)
            if not ci.needs:
                d.done = True
                d.updated_at = 0.0 if already else INF
                continue
            d.arm("pc", pc_next, d.power_cycle)
            d.arm("rst", rst_next, d.reset)
            d.arm("reneg", reneg_at, d.renegotiate)
            d.arm("edge", d.next_edge(self.t0), d.edge)
            d.arm_guard()
            d.release()
            env.process(d.process())
        return out

    def run(self) -> None:
        n = self.fleet.size
        for lo in range(0, n, self.chunk):
            hi = min(lo + self.chunk, n)
            self.env = simpy.Environment(initial_time=self.t0)
            devices: list[_Device] = []
            for ci, k in zip(self.inits, self.consts):
                first = int(ci.gid[0])
                a, b = max(lo, first), min(hi, first + ci.gid.size)
                if a < b:
                    devices += self._add(ci, k, a - first, b - first)
            self.env.run()
            for name, dt in self._OUT:
                self.out[name][lo:hi] = np.fromiter((getattr(d, name) for d in devices), dtype=dt, count=hi - lo)

    def result(self) -> RolloutResult:
        o = self.out
        return RolloutResult(self.fleet, self.strategy, "simpy", self.cohort_of, o["updated_at"], o["began_outside"],
                             o["ended_in_window"], o["full"], o["resumes"], o["ota"], o["retry_bytes"],
                             o["retries"])


def simulate(fleet: Fleet, strategy: Strategy, params: PlannerParams | None = None,
             chunk: int | None = None) -> RolloutResult:
    """Run the SimPy yardstick for one strategy (wall time in `wall_s`, set-up included)."""
    t = time.perf_counter()
    sim = SimpyRollout(fleet, strategy, params, chunk)
    sim.run()
    res = sim.result()
    res.wall_s = time.perf_counter() - t
    res.extra["events"] = sim.events
    return res
