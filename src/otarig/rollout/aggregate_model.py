"""The vectorised twin of `event_model`, for large fleets (10^5 devices × 30 days in seconds).

Same state machine, same per-device random draws (`patterns`), same decisions (`cloud_rules`
through `vrules`), but the devices advance in lock step: at each step every active device
handles its own earliest pending event, with numpy over all devices at once. Devices are
independent (the cloud has no capacity limit in this model), so lock step and one shared heap
give the same per-device timelines except for the order of two events at the same millisecond.
tests/test_rollout.py checks it against the event model on a 1,000-device fleet.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from otarig.sim import cloud_rules as rules
from otarig.sim.link import PROFILES
from otarig.sim.params import DAY_MS

from .common import RolloutResult, initial_state, release_time_ms
from .fleet import Fleet
from .patterns import INF, S_LAG, S_PC, S_RST, CohortSchedule, u01
from .strategies import PlannerParams, Strategy
from .vrules import vbool, vrule

EDGE, PC, RST, RENEG, GUARD, CONN, BEGIN, END = range(8)
_SLEEP = {"stop": 0, "ulp": 0, "hibernate": 1, "power_off": 2}


class VectorSim:
    def __init__(self, fleet: Fleet, strategy: Strategy, params: PlannerParams | None = None) -> None:
        self.fleet, self.strategy = fleet, strategy
        self.p = p = params or PlannerParams()
        self.t0 = float(int(release_time_ms(fleet)))
        self.t_end = self.t0 + fleet.horizon_days * DAY_MS
        inits = initial_state(fleet, p, strategy)
        self.scheds: list[CohortSchedule] = [ci.sched for ci in inits]
        cat = lambda f: np.concatenate([np.broadcast_to(np.asarray(f(ci)), (ci.cohort.count,)) for ci in inits])  # noqa: E731
        self.coh = cat(lambda ci: np.full(ci.cohort.count, inits.index(ci)))
        self.gid = cat(lambda ci: ci.gid)
        n = self.n = self.gid.size
        c_ = lambda f: cat(lambda ci: f(ci.cohort))  # noqa: E731
        size = fleet.release.size_bytes
        self.guarded = c_(lambda c: c.guarded).astype(bool)
        self.icap = c_(lambda c: c.intelligent_capable).astype(bool)
        self.fcap = c_(lambda c: c.forced_capable).astype(bool)
        self.leakable = c_(lambda c: c.boot_leak and p.boot_leak).astype(bool)
        self.holds = c_(lambda c: c.holds_sleep_during_ota).astype(bool)
        self.dur = c_(lambda c: float(p.transfer_ms(size, c.link)))
        self.onair = c_(lambda c: p.on_air_bytes(size)).astype(np.int64)
        self.lat = c_(lambda c: float(PROFILES[c.link].one_way_latency_ms))
        self.beg_delay = c_(lambda c: float(p.begin_delay_ms(c.link)))
        self.cold_ms = c_(lambda c: float(p.cold_connect_ms(c.link)))
        self.wake_ms = c_(lambda c: float(p.wake_connect_ms(c.link, False)))
        self.after_ms = c_(lambda c: float(p.after_transfer_ms(c.link)))
        self.sleep_code = c_(lambda c: _SLEEP[c.sleep_mode])
        self.pc_rate = c_(lambda c: float(c.power_cycles_per_day))
        self.rst_rate = c_(lambda c: float(c.resets_per_day))
        self.needs = cat(lambda ci: ci.needs).astype(bool)
        dev = c_(lambda c: c.development).astype(bool)
        self.now = np.full(n, self.t0)
        self.awake = self._online_sched(np.arange(n), self.now)
        self.online = self.awake.copy()
        self.idle = self._idle_sched(np.arange(n), self.now)
        self.enabled = ~self.guarded
        self.forced_dev = np.zeros(n, bool)
        self.dev_pending = np.zeros(n, bool)
        self.leak = np.zeros(n, bool)
        self.guard_last = cat(lambda ci: ci.guard_last).astype(float)
        self.expiry = cat(lambda ci: ci.expiry).astype(float)
        self.sess_k = np.zeros(n, np.int64)
        self.pending_notified = np.zeros(n, bool)
        self.retry_needed = np.zeros(n, bool)
        self.offer_pend = np.zeros(n, bool)
        self.xfer_start = np.full(n, np.nan)
        self.pc_k = np.zeros(n, np.int64)
        self.rst_k = np.zeros(n, np.int64)
        self.conn_full = np.zeros(n, bool)
        self.updated_at = np.where(~self.needs & ~dev, 0.0, INF)
        self.began_outside = np.zeros(n, bool)
        self.ended_in_window = np.zeros(n, bool)
        self.full = np.zeros(n, np.int64)
        self.resumes = np.zeros(n, np.int64)
        self.ota = np.zeros(n, np.int64)
        self.retry_bytes = np.zeros(n, np.int64)
        self.retries = np.zeros(n, np.int64)
        self.done = ~self.needs
        T = self.T = np.full((n, 8), INF)
        T[:, PC] = cat(lambda ci: ci.pc_next)
        T[:, RST] = cat(lambda ci: ci.rst_next)
        T[:, RENEG] = cat(lambda ci: ci.reneg_at)
        T[:, EDGE] = self._next_edge(np.arange(n), self.now)
        T[self.done] = INF
        live = np.flatnonzero(~self.done)
        self._arm_guard(live)
        self._release(live)

    # -- schedules per cohort ------------------------------------------------------------------
    def _split(self, sub: np.ndarray):
        if len(self.scheds) == 1:
            yield 0, np.ones(sub.size, bool)
            return
        cs = self.coh[sub]
        for k in np.unique(cs):
            yield int(k), cs == k

    def _apply(self, sub: np.ndarray, t: np.ndarray, fn, dtype) -> np.ndarray:
        out = np.empty(sub.size, dtype=dtype)
        for k, m in self._split(sub):
            out[m] = fn(self.scheds[k], self.gid[sub[m]], t[m])
        return out

    def _online_sched(self, sub, t):
        return self._apply(sub, t, lambda s, g, tt: s.online(g, tt), bool)

    def _idle_sched(self, sub, t):
        return self._apply(sub, t, lambda s, g, tt: s.idle.inside(g, tt), bool)

    def _next_edge(self, sub, t):
        return self._apply(sub, t, lambda s, g, tt: s.next_edge(g, tt), float)

    def _next_idle_edge(self, sub, t):
        return self._apply(sub, t, lambda s, g, tt: s.idle.next_edge(g, tt), float)

    # -- cloud -------------------------------------------------------------------------------------
    @property
    def _intelligent(self) -> bool:
        return self.strategy is Strategy.INTELLIGENT

    def _offer(self, sub: np.ndarray, delay) -> None:
        delay = np.broadcast_to(np.asarray(delay, dtype=float), sub.shape)
        m = ~self.offer_pend[sub] & np.isnan(self.xfer_start[sub]) & ~self.done[sub]
        ok = sub[m]
        self.retry_needed[ok] = False
        self.offer_pend[ok] = True
        self.T[ok, BEGIN] = self.now[ok] + delay[m] + self.beg_delay[ok]

    def _release(self, sub: np.ndarray) -> None:
        s = self.strategy
        if s is Strategy.INTELLIGENT:
            sub = sub[self.icap[sub]]
            act = vrule(rules.intelligent_release_action, online=self.online[sub], needs_update=self.needs[sub],
                        enabled=self.enabled[sub], forced=False)
            self._offer(sub[act == "deliver"], 0.0)
            self._notified(sub[act == "notify"])
        elif s is Strategy.LOCK_FLASH:
            self._offer(sub[self.online[sub]], 0.0)
        elif s is Strategy.FORCED:
            self._forced_echo(sub[self.online[sub] & self.fcap[sub]])

    def _forced_echo(self, sub: np.ndarray) -> None:
        self.forced_dev[sub] = True
        d = vbool(rules.deliver_on_forced_echo, echoed_forced=True, forced_setting=True, needs_update=self.needs[sub])
        self._offer(sub[d], 2 * self.lat[sub[d]])

    def _notified(self, sub: np.ndarray) -> None:
        self.pending_notified[sub] = True
        c = sub[self.icap[sub]]
        self.dev_pending[c] = True
        self._guard_poll(c)

    def _connected(self, sub: np.ndarray, full: np.ndarray) -> None:
        p = self.p
        a = p.cloud.session_max_age_ms
        full = full | rules.session_expired(established_ms=self.expiry[sub] - a, now_ms=self.now[sub], max_age_ms=a)
        self.online[sub] = True
        self.full[sub[full]] += 1
        self.resumes[sub[~full]] += 1
        self._new_session(sub[full])
        checked = vbool(rules.connection_is_check, resumed=~full, hello_sent=full,
                        check_on_resume=p.cloud.check_on_resume)
        if self.strategy is Strategy.FORCED and p.cloud.resend_forced_on_connect:
            self._forced_echo(sub[self.fcap[sub]])
        e = self.fcap[sub] & vbool(rules.deliver_on_enabled, enabled=self.enabled[sub], needs_update=self.needs[sub],
                                   pending_notified=self.pending_notified[sub],
                                   last_release_intelligent=self._intelligent, retry_needed=self.retry_needed[sub])
        self._offer(sub[e], 0.0)
        busy = self.offer_pend[sub] | ~np.isnan(self.xfer_start[sub])
        allowed = vbool(rules.updates_allowed, enabled=self.enabled[sub], forced=self.forced_dev[sub])
        act = vrule(rules.after_connect_action, needs_update=self.needs[sub], busy=busy, checked=checked,
                    retry_needed=self.retry_needed[sub], pending_notified=self.pending_notified[sub],
                    allowed=allowed, renotify_pending=p.cloud.renotify_pending_on_connect)
        self._offer(sub[act == "deliver"], float(p.cloud.pending_false_delay_ms))
        self._notified(sub[act == "renotify"])
        self._guard_poll(sub)
        self._arm_guard(sub)

    def _new_session(self, sub: np.ndarray) -> None:
        p = self.p
        self.sess_k[sub] += 1
        self.expiry[sub] = self.now[sub] + p.cloud.session_max_age_ms
        if p.renegotiation == "next_connect":
            self.T[sub, RENEG] = INF
        else:
            lag = u01(self.fleet.seed, S_LAG, self.gid[sub], self.sess_k[sub]) * p.lag_max_ms()
            self.T[sub, RENEG] = self.expiry[sub] + lag

    # -- device ----------------------------------------------------------------------------------
    def _begin(self, sub: np.ndarray) -> None:
        self.offer_pend[sub] = False
        self.T[sub, BEGIN] = INF
        self.retry_needed[sub[~self.online[sub]]] = True
        on = sub[self.online[sub]]
        allowed = vbool(rules.updates_allowed, enabled=self.enabled[on] | self.leak[on], forced=self.forced_dev[on])
        allowed |= self.guarded[on] & ~self.icap[on] & self.idle[on]
        self.leak[on] = False
        self._notified(on[~allowed])
        go = on[allowed]
        self.xfer_start[go] = self.now[go]
        self.began_outside[go] |= ~self.idle[go]
        self.dev_pending[go] = False
        self.T[go, END] = self.now[go] + self.dur[go]

    def _end(self, sub: np.ndarray) -> None:
        start = self.xfer_start[sub]
        self.xfer_start[sub] = np.nan
        self.ota[sub] += self.onair[sub]
        self.resumes[sub] += 1
        nxt = self._next_idle_edge(sub, start)
        self.ended_in_window[sub] = self.idle[sub] & (nxt >= self.now[sub])
        self.updated_at[sub] = self.now[sub] + self.after_ms[sub] - self.t0
        self.done[sub] = True
        self.T[sub] = INF

    def _cut(self, sub: np.ndarray) -> None:
        x = sub[~np.isnan(self.xfer_start[sub])]
        frac = np.minimum((self.now[x] - self.xfer_start[x]) / np.maximum(self.dur[x], 1), 1.0)
        self.retry_bytes[x] += (self.onair[x] * frac).astype(np.int64)
        self.retries[x] += 1
        self.xfer_start[x] = np.nan
        self.T[x, END] = INF
        self.retry_needed[x] = True
        self.enabled[x[self.guarded[x]]] = False
        self.online[sub] = False

    def _boot(self, sub: np.ndarray, cold: np.ndarray) -> None:
        self._cut(sub)
        self.enabled[sub] = ~self.guarded[sub]
        self.forced_dev[sub] = False
        self.dev_pending[sub] = False
        self.guard_last[sub] = self.now[sub]
        self.leak[sub] = self.leakable[sub]
        delay = np.where(cold, self.cold_ms[sub], self.p.devos.boot_ms + self.wake_ms[sub])
        self.T[sub, CONN] = self.now[sub] + delay
        self.conn_full[sub] = cold

    def _power_cycle(self, sub: np.ndarray) -> None:
        self.pc_k[sub] += 1
        u = u01(self.fleet.seed, S_PC, self.gid[sub], self.pc_k[sub])
        self.T[sub, PC] = self.now[sub] - np.log1p(-u) * DAY_MS / self.pc_rate[sub]
        b = sub[self.awake[sub] & ~self.done[sub]]
        self._boot(b, np.full(b.size, not self.p.devos.session_survives_power_loss))

    def _reset(self, sub: np.ndarray) -> None:
        self.rst_k[sub] += 1
        u = u01(self.fleet.seed, S_RST, self.gid[sub], self.rst_k[sub])
        self.T[sub, RST] = self.now[sub] - np.log1p(-u) * DAY_MS / self.rst_rate[sub]
        b = sub[self.awake[sub] & ~self.done[sub]]
        self._boot(b, np.zeros(b.size, bool))

    def _renegotiate(self, sub: np.ndarray) -> None:
        self.T[sub, RENEG] = INF
        free = self.online[sub] & np.isnan(self.xfer_start[sub]) & ~self.offer_pend[sub]
        self._connected(sub[free], np.ones(int(free.sum()), bool))
        later = sub[self.online[sub] & ~free]
        self.T[later, RENEG] = self.now[later] + 60_000

    def _edge(self, sub: np.ndarray) -> None:
        t = self.now[sub]
        aw = self._online_sched(sub, t)
        idl = self._idle_sched(sub, t)
        was_idle = self.idle[sub].copy()
        self.idle[sub] = idl
        change = aw != self.awake[sub]
        defer = change & ~aw & ~np.isnan(self.xfer_start[sub]) & self.holds[sub]
        m = change & ~defer
        ch = sub[m]
        self.awake[ch] = aw[m]
        sleeping = ch[~self.awake[ch]]
        self._cut(sleeping)
        self.T[sleeping, CONN] = INF
        waking = ch[self.awake[ch]]
        code = self.sleep_code[waking]
        boots = waking[code > 0]
        self._boot(boots, self.sleep_code[boots] == 2)
        stop = waking[code == 0]
        self.T[stop, CONN] = self.now[stop] + self.wake_ms[stop]
        self.conn_full[stop] = False
        opened = sub[idl & ~was_idle]
        self._guard_poll(opened)
        self._maybe_guard(opened)
        closed = sub[was_idle & ~idl]
        closed = closed[self.guarded[closed] & np.isnan(self.xfer_start[closed])]
        self.enabled[closed] = False
        self.T[sub, EDGE] = self._next_edge(sub, t)

    def _guard_poll(self, sub: np.ndarray) -> None:
        m = self.guarded[sub] & self.dev_pending[sub] & self.online[sub] & self.idle[sub] & ~self.enabled[sub]
        s = sub[m]
        self.enabled[s] = True
        d = vbool(rules.deliver_on_enabled, enabled=True, needs_update=self.needs[s],
                  pending_notified=self.pending_notified[s], last_release_intelligent=self._intelligent,
                  retry_needed=self.retry_needed[s])
        self._offer(s[d], self.p.guard_loop_ms + self.lat[s[d]])

    def _arm_guard(self, sub: np.ndarray) -> None:
        if self.strategy is Strategy.STANDARD_DAILY:
            self.T[sub, GUARD] = np.maximum(self._guard_due(sub), self.now[sub])

    def _guard_due(self, sub: np.ndarray) -> np.ndarray:
        return np.ceil(self.guard_last[sub] + self.p.guard_handshake_interval_ms)  # whole ms, as the heap model

    def _maybe_guard(self, sub: np.ndarray) -> None:
        if self.strategy is not Strategy.STANDARD_DAILY:
            return
        m = (self.online[sub] & self.idle[sub] & np.isnan(self.xfer_start[sub]) & ~self.offer_pend[sub]
             & ~self.done[sub] & ~(self.guarded[sub] & self.enabled[sub]))
        s = sub[m]
        early = self._guard_due(s) > self.now[s]
        self._arm_guard(s[early])
        go = s[~early]
        self.guard_last[go] = self.now[go]
        self.online[go] = False
        self.T[go, CONN] = self.now[go] + self.p.guard_reconnect_ms
        self.conn_full[go] = True
        self._arm_guard(go)

    def _guard(self, sub: np.ndarray) -> None:
        self.T[sub, GUARD] = INF
        self._maybe_guard(sub)

    def _conn(self, sub: np.ndarray) -> None:
        self.T[sub, CONN] = INF
        self._connected(sub, self.conn_full[sub].copy())

    # -- loop --------------------------------------------------------------------------------------
    def run(self, progress: Callable[[float], None] | None = None) -> int:
        handlers = {EDGE: self._edge, PC: self._power_cycle, RST: self._reset, RENEG: self._renegotiate,
                    GUARD: self._guard, CONN: self._conn, BEGIN: self._begin, END: self._end}
        act = np.flatnonzero(~self.done)
        steps = 0
        span = self.t_end - self.t0
        while act.size:
            Ts = self.T[act]
            col = Ts.argmin(axis=1)
            tmin = Ts[np.arange(act.size), col]
            live = tmin < self.t_end
            act, col, tmin = act[live], col[live], tmin[live]
            if not act.size:
                break
            self.now[act] = tmin
            for c in range(8):
                sub = act[col == c]
                if sub.size:
                    handlers[c](sub)
            act = act[~self.done[act]]
            steps += 1
            if progress and steps % 16 == 0 and act.size:
                progress(min(float(self.now[act].min() - self.t0) / span, 1.0))
        if progress:
            progress(1.0)
        return steps

    def result(self) -> RolloutResult:
        return RolloutResult(self.fleet, self.strategy, "aggregate", self.coh, self.updated_at, self.began_outside,
                             self.ended_in_window, self.full, self.resumes, self.ota, self.retry_bytes, self.retries)


def simulate(fleet: Fleet, strategy: Strategy, params: PlannerParams | None = None,
             progress: Callable[[float], None] | None = None) -> RolloutResult:
    """Run the vectorised model for one strategy."""
    t = time.perf_counter()
    sim = VectorSim(fleet, strategy, params)
    steps = sim.run(progress)
    res = sim.result()
    res.wall_s = time.perf_counter() - t
    res.extra["steps"] = steps
    return res
