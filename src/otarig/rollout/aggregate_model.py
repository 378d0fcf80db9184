"""The vectorised twin of `event_model`, for large fleets (10^6 devices × 90 days in seconds).

Same state machine, same per-device random draws (`patterns`), same decisions (`cloud_rules`
through `vrules`), but the devices advance in lock step: at each step every active device
handles its own earliest pending event, with numpy over all devices at once. Devices are
independent (the cloud has no capacity limit in this model), so lock step and one shared heap
give the same per-device timelines except for the order of two events at the same millisecond.
tests/test_rollout.py checks it against the event model.

Speed (issue 15, from cProfile runs): timers are one row per kind (no row-wise argmin), draw keys
are hashed once per device, a schedule is evaluated once per edge, cohorts are index ranges cut
by binary search — so every index array a handler gets must be ascending (all are subsets of
`np.flatnonzero`) — and rule tables are typed.
"""
from __future__ import annotations

import time
from typing import Callable, Iterator

import numpy as np

from otarig.sim import cloud_rules as rules
from otarig.sim.link import PROFILES
from otarig.sim.params import DAY_MS

from .common import RolloutResult, initial_state, release_time_ms
from .fleet import Fleet
from .patterns import INF, S_LAG, S_PC, S_RST, CohortSchedule, ScheduleKey, draw_key, u01_k
from .strategies import PlannerParams, Strategy
from .vrules import vbool, vcases

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
        #: cohort k holds the devices cstart[k] ≤ i < cstart[k + 1]
        self.cstart = np.cumsum([0] + [ci.cohort.count for ci in inits])
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
        # draw keys, hashed once per device (patterns.draw_key)
        seed = fleet.seed
        keys = [ci.sched.key(ci.gid) for ci in inits]
        self.win_key = np.concatenate([k.win for k in keys])
        self.phase = np.concatenate([k.phase for k in keys])
        self.pc_key = draw_key(seed, S_PC, self.gid)
        self.rst_key = draw_key(seed, S_RST, self.gid)
        self.lag_key = draw_key(seed, S_LAG, self.gid)
        self.now = np.full(n, self.t0)
        everyone = np.arange(n)
        self.awake, self.idle, first_edge = self._sched_at(everyone, self.now)
        self.online = self.awake.copy()
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
        #: pending timers, one row per kind (INF = none)
        T = self.T = np.full((8, n), INF)
        T[PC] = cat(lambda ci: ci.pc_next)
        T[RST] = cat(lambda ci: ci.rst_next)
        T[RENEG] = cat(lambda ci: ci.reneg_at)
        T[EDGE] = first_edge
        T[:, self.done] = INF
        live = np.flatnonzero(~self.done)
        self._arm_guard(live)
        self._release(live)

    # -- schedules per cohort ------------------------------------------------------------------
    def _parts(self, sub: np.ndarray) -> Iterator[tuple[int, int, int]]:
        """(cohort, lo, hi): sub[lo:hi] are the cohort's devices (sub ascending)."""
        if len(self.scheds) == 1:
            yield 0, 0, sub.size
            return
        cut = np.searchsorted(sub, self.cstart)
        for k in range(len(self.scheds)):
            if cut[k + 1] > cut[k]:
                yield k, int(cut[k]), int(cut[k + 1])

    def _key(self, k: int, s: np.ndarray) -> ScheduleKey:
        sched = self.scheds[k]
        periodic = not sched.always_online and sched.sleep is None
        return ScheduleKey(self.win_key[s] if sched.idle.jitter else None, self.phase[s] if periodic else None)

    def _sched_at(self, sub: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(awake, idle, next schedule edge) per device at t."""
        aw = np.empty(sub.size, bool)
        idl = np.empty(sub.size, bool)
        nxt = np.empty(sub.size)
        for k, lo, hi in self._parts(sub):
            aw[lo:hi], idl[lo:hi], nxt[lo:hi] = self.scheds[k].at_k(self._key(k, sub[lo:hi]), t[lo:hi])
        return aw, idl, nxt

    def _next_idle_edge(self, sub: np.ndarray, t: np.ndarray) -> np.ndarray:
        out = np.empty(sub.size)
        for k, lo, hi in self._parts(sub):
            out[lo:hi] = self.scheds[k].idle.next_edge_k(self._key(k, sub[lo:hi]).win, t[lo:hi])
        return out

    # -- cloud -------------------------------------------------------------------------------------
    @property
    def _intelligent(self) -> bool:
        return self.strategy is Strategy.INTELLIGENT

    def _offer(self, sub: np.ndarray, delay: float | np.ndarray) -> None:
        if not sub.size:
            return
        m = ~self.offer_pend[sub] & np.isnan(self.xfer_start[sub]) & ~self.done[sub]
        if not m.all():
            sub = sub[m]
            if isinstance(delay, np.ndarray):
                delay = delay[m]
        self.retry_needed[sub] = False
        self.offer_pend[sub] = True
        self.T[BEGIN, sub] = self.now[sub] + delay + self.beg_delay[sub]

    def _release(self, sub: np.ndarray) -> None:
        s = self.strategy
        if s is Strategy.INTELLIGENT:
            sub = sub[self.icap[sub]]
            if not sub.size:
                return
            deliver, notify = vcases(rules.intelligent_release_action, ("deliver", "notify"),
                                     online=self.online[sub], needs_update=self.needs[sub],
                                     enabled=self.enabled[sub], forced=False)
            self._offer(sub[deliver], 0.0)
            self._notified(sub[notify])
        elif s is Strategy.LOCK_FLASH:
            self._offer(sub[self.online[sub]], 0.0)
        elif s is Strategy.FORCED:
            self._forced_echo(sub[self.online[sub] & self.fcap[sub]])

    def _forced_echo(self, sub: np.ndarray) -> None:
        if not sub.size:
            return
        self.forced_dev[sub] = True
        d = vbool(rules.deliver_on_forced_echo, echoed_forced=True, forced_setting=True, needs_update=self.needs[sub])
        self._offer(sub[d], 2 * self.lat[sub[d]])

    def _notified(self, sub: np.ndarray) -> None:
        if not sub.size:
            return
        self.pending_notified[sub] = True
        c = sub[self.icap[sub]]
        self.dev_pending[c] = True
        self._guard_poll(c)

    def _connected(self, sub: np.ndarray, full: np.ndarray) -> None:
        if not sub.size:
            return
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
        needs = self.needs[sub]
        e = self.fcap[sub] & vbool(rules.deliver_on_enabled, enabled=self.enabled[sub], needs_update=needs,
                                   pending_notified=self.pending_notified[sub],
                                   last_release_intelligent=self._intelligent, retry_needed=self.retry_needed[sub])
        self._offer(sub[e], 0.0)
        busy = self.offer_pend[sub] | ~np.isnan(self.xfer_start[sub])
        enabled = self.enabled[sub]
        allowed = vbool(rules.updates_allowed, enabled=enabled, forced=self.forced_dev[sub])
        deliver, renotify = vcases(rules.after_connect_action, ("deliver", "renotify"),
                                   needs_update=needs, busy=busy, checked=checked,
                                   retry_needed=self.retry_needed[sub], pending_notified=self.pending_notified[sub],
                                   allowed=allowed, renotify_pending=p.cloud.renotify_pending_on_connect)
        self._offer(sub[deliver], float(p.cloud.pending_false_delay_ms))
        self._notified(sub[renotify])
        self._guard_poll(sub)
        self._arm_guard(sub)

    def _new_session(self, sub: np.ndarray) -> None:
        if not sub.size:
            return
        p = self.p
        self.sess_k[sub] += 1
        expiry = self.now[sub] + p.cloud.session_max_age_ms
        self.expiry[sub] = expiry
        if p.renegotiation == "next_connect":
            self.T[RENEG, sub] = INF
        else:
            lag = u01_k(self.lag_key[sub], self.sess_k[sub]) * p.lag_max_ms()
            self.T[RENEG, sub] = expiry + lag

    # -- device ----------------------------------------------------------------------------------
    def _begin(self, sub: np.ndarray) -> None:
        self.offer_pend[sub] = False
        self.T[BEGIN, sub] = INF
        on_m = self.online[sub]
        self.retry_needed[sub[~on_m]] = True
        on = sub[on_m]
        if not on.size:
            return
        allowed = vbool(rules.updates_allowed, enabled=self.enabled[on] | self.leak[on], forced=self.forced_dev[on])
        allowed |= self.guarded[on] & ~self.icap[on] & self.idle[on]
        self.leak[on] = False
        self._notified(on[~allowed])
        go = on[allowed]
        now = self.now[go]
        self.xfer_start[go] = now
        self.began_outside[go] |= ~self.idle[go]
        self.dev_pending[go] = False
        self.T[END, go] = now + self.dur[go]

    def _end(self, sub: np.ndarray) -> None:
        start = self.xfer_start[sub]
        now = self.now[sub]
        self.xfer_start[sub] = np.nan
        self.ota[sub] += self.onair[sub]
        self.resumes[sub] += 1
        nxt = self._next_idle_edge(sub, start)
        self.ended_in_window[sub] = self.idle[sub] & (nxt >= now)
        self.updated_at[sub] = now + self.after_ms[sub] - self.t0
        self.done[sub] = True
        self.T[:, sub] = INF

    def _cut(self, sub: np.ndarray) -> None:
        if not sub.size:
            return
        x = sub[~np.isnan(self.xfer_start[sub])]
        if x.size:
            frac = np.minimum((self.now[x] - self.xfer_start[x]) / np.maximum(self.dur[x], 1), 1.0)
            self.retry_bytes[x] += (self.onair[x] * frac).astype(np.int64)
            self.retries[x] += 1
            self.xfer_start[x] = np.nan
            self.T[END, x] = INF
            self.retry_needed[x] = True
            self.enabled[x[self.guarded[x]]] = False
        self.online[sub] = False

    def _boot(self, sub: np.ndarray, cold: np.ndarray) -> None:
        if not sub.size:
            return
        self._cut(sub)
        now = self.now[sub]
        self.enabled[sub] = ~self.guarded[sub]
        self.forced_dev[sub] = False
        self.dev_pending[sub] = False
        self.guard_last[sub] = now
        self.leak[sub] = self.leakable[sub]
        delay = np.where(cold, self.cold_ms[sub], self.p.devos.boot_ms + self.wake_ms[sub])
        self.T[CONN, sub] = now + delay
        self.conn_full[sub] = cold

    def _power_cycle(self, sub: np.ndarray) -> None:
        self.pc_k[sub] += 1
        u = u01_k(self.pc_key[sub], self.pc_k[sub])
        self.T[PC, sub] = self.now[sub] - np.log1p(-u) * DAY_MS / self.pc_rate[sub]
        b = sub[self.awake[sub] & ~self.done[sub]]
        self._boot(b, np.full(b.size, not self.p.devos.session_survives_power_loss))

    def _reset(self, sub: np.ndarray) -> None:
        self.rst_k[sub] += 1
        u = u01_k(self.rst_key[sub], self.rst_k[sub])
        self.T[RST, sub] = self.now[sub] - np.log1p(-u) * DAY_MS / self.rst_rate[sub]
        b = sub[self.awake[sub] & ~self.done[sub]]
        self._boot(b, np.zeros(b.size, bool))

    def _renegotiate(self, sub: np.ndarray) -> None:
        self.T[RENEG, sub] = INF
        online = self.online[sub]
        free = online & np.isnan(self.xfer_start[sub]) & ~self.offer_pend[sub]
        self._connected(sub[free], np.ones(int(free.sum()), bool))
        later = sub[online & ~free]
        self.T[RENEG, later] = self.now[later] + 60_000

    def _edge(self, sub: np.ndarray) -> None:
        t = self.now[sub]
        aw, idl, nxt = self._sched_at(sub, t)
        was_idle = self.idle[sub]
        self.idle[sub] = idl
        change = aw != self.awake[sub]
        if change.any():
            defer = change & ~aw & ~np.isnan(self.xfer_start[sub]) & self.holds[sub]
            m = change & ~defer
            ch, to = sub[m], aw[m]
            self.awake[ch] = to
            sleeping = ch[~to]
            self._cut(sleeping)
            self.T[CONN, sleeping] = INF
            waking = ch[to]
            if waking.size:
                code = self.sleep_code[waking]
                boots = waking[code > 0]
                self._boot(boots, self.sleep_code[boots] == 2)
                stop = waking[code == 0]
                self.T[CONN, stop] = self.now[stop] + self.wake_ms[stop]
                self.conn_full[stop] = False
        opened = idl & ~was_idle
        if opened.any():
            o = sub[opened]
            self._guard_poll(o)
            self._maybe_guard(o)
        closed = was_idle & ~idl
        if closed.any():
            c = sub[closed]
            c = c[self.guarded[c] & np.isnan(self.xfer_start[c])]
            self.enabled[c] = False
        self.T[EDGE, sub] = nxt

    def _guard_poll(self, sub: np.ndarray) -> None:
        if not sub.size:
            return
        m = self.guarded[sub] & self.dev_pending[sub] & self.online[sub] & self.idle[sub] & ~self.enabled[sub]
        if not m.any():
            return
        s = sub[m]
        self.enabled[s] = True
        d = vbool(rules.deliver_on_enabled, enabled=True, needs_update=self.needs[s],
                  pending_notified=self.pending_notified[s], last_release_intelligent=self._intelligent,
                  retry_needed=self.retry_needed[s])
        self._offer(s[d], self.p.guard_loop_ms + self.lat[s[d]])

    def _arm_guard(self, sub: np.ndarray) -> None:
        if self.strategy is Strategy.STANDARD_DAILY and sub.size:
            self.T[GUARD, sub] = np.maximum(self._guard_due(sub), self.now[sub])

    def _guard_due(self, sub: np.ndarray) -> np.ndarray:
        return np.ceil(self.guard_last[sub] + self.p.guard_handshake_interval_ms)  # whole ms, as the heap model

    def _maybe_guard(self, sub: np.ndarray) -> None:
        if self.strategy is not Strategy.STANDARD_DAILY or not sub.size:
            return
        m = (self.online[sub] & self.idle[sub] & np.isnan(self.xfer_start[sub]) & ~self.offer_pend[sub]
             & ~self.done[sub] & ~(self.guarded[sub] & self.enabled[sub]))
        s = sub[m]
        early = self._guard_due(s) > self.now[s]
        self._arm_guard(s[early])
        go = s[~early]
        if not go.size:
            return
        self.guard_last[go] = self.now[go]
        self.online[go] = False
        self.T[CONN, go] = self.now[go] + self.p.guard_reconnect_ms
        self.conn_full[go] = True
        self._arm_guard(go)

    def _guard(self, sub: np.ndarray) -> None:
        self.T[GUARD, sub] = INF
        self._maybe_guard(sub)

    def _conn(self, sub: np.ndarray) -> None:
        self.T[CONN, sub] = INF
        self._connected(sub, self.conn_full[sub])

    # -- loop --------------------------------------------------------------------------------------
    def _kinds(self) -> list[int]:
        """Timer kinds this run can use (the others stay INF)."""
        kinds = [EDGE, PC, RST, RENEG, GUARD, CONN, BEGIN, END]
        if self.strategy is not Strategy.STANDARD_DAILY:
            kinds.remove(GUARD)
        if not (self.pc_rate > 0).any():
            kinds.remove(PC)
        if not (self.rst_rate > 0).any():
            kinds.remove(RST)
        return kinds

    def run(self, progress: Callable[[float], None] | None = None) -> int:
        handlers = {EDGE: self._edge, PC: self._power_cycle, RST: self._reset, RENEG: self._renegotiate,
                    GUARD: self._guard, CONN: self._conn, BEGIN: self._begin, END: self._end}
        kinds = self._kinds()
        T = self.T
        act = np.flatnonzero(~self.done)
        steps = 0
        span = self.t_end - self.t0
        while act.size:
            # each device's earliest timer; on a tie the lower kind wins (as argmin would)
            tmin = T[kinds[0]].take(act)
            col = np.full(act.size, kinds[0], dtype=np.int8)
            for c in kinds[1:]:
                x = T[c].take(act)
                lt = x < tmin
                np.copyto(tmin, x, where=lt)
                col[lt] = c
            live = tmin < self.t_end
            if not live.all():
                act, col, tmin = act[live], col[live], tmin[live]
                if not act.size:
                    break
            self.now[act] = tmin
            # group by kind, keeping each group ascending (stable sort)
            order = np.argsort(col, kind="stable")
            counts = np.bincount(col, minlength=8)
            by_kind = act.take(order)
            lo = 0
            for c in range(8):
                hi = lo + int(counts[c])
                if hi > lo:
                    handlers[c](by_kind[lo:hi])
                lo = hi
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
