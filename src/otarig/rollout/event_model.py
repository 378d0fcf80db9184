"""The per-device discrete-event rollout model, on the simulator's heap scheduler.

Each device is a small state machine driven by timers on one `otarig.sim.scheduler.Scheduler`
(virtual ms). Every delivery decision is taken by `otarig.sim.cloud_rules`, the functions the
simulated cloud uses (docs/reference/particle-ota.md): precedence (§1.4/§7.7), check on connection (§7.8.1), session expiry
(§1.2), refusal while disabled (§1.5), Intelligent-release notification (§7.8.2), delivery when
the device reports updates enabled (§7.8.3), forced echo (§7.8.5), after-connect actions (§7.8.7).
The device side follows the companion's OtaGuard (firmware/companion/README.md): updates held
outside idle windows, released when an update is pending and the app is idle, held again when
work starts before a transfer began, and (strategy standard_daily) a forced full handshake once
a day inside an idle window.

Faithful but Python-speed: use it for fleets up to ~10^4 devices; `aggregate_model` is the
vectorised twin for large fleets (checked against this one in tests/test_rollout.py).
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from otarig.sim import cloud_rules as rules
from otarig.sim.link import PROFILES
from otarig.sim.params import DAY_MS
from otarig.sim.scheduler import Scheduler

from .common import CohortInit, RolloutResult, initial_state, release_time_ms
from .fleet import Fleet
from .patterns import INF, S_LAG, S_PC, S_RST, exp_ms, u01
from .strategies import PlannerParams, Strategy


def _t(x: float) -> int:
    return int(math.ceil(x))


class _Device:
    """One device and the cloud's record of it."""

    def __init__(self, sim: "EventSim", ci: CohortInit, j: int) -> None:
        self.sim = sim
        self.c = ci.cohort
        self.sched_info = ci.sched
        self.gid = int(ci.gid[j])
        self.g = ci.gid[j:j + 1]
        self.timers: dict[str, object] = {}
        p = sim.params
        self.link = self.c.link
        self.latency = PROFILES[self.link].one_way_latency_ms
        self.size = sim.fleet.release.size_bytes
        self.duration = p.transfer_ms(self.size, self.link)
        self.on_air = p.on_air_bytes(self.size)
        self.needs = ci.needs
        t0 = sim.t0
        # device side
        self.awake = bool(ci.sched.online(self.g, np.array([float(t0)]))[0])
        self.online = self.awake  # cloud connected
        self.idle = bool(ci.sched.idle.inside(self.g, np.array([float(t0)]))[0])
        self.enabled = not self.c.guarded  # docs/reference/particle-ota.md §2.1 default enabled; the guard disables in setup()
        self.forced_dev = False
        self.dev_pending = False
        self.leak = False
        self.guard_last = float(ci.guard_last[j])
        # cloud side
        self.expiry = float(ci.expiry[j])
        self.reneg_at = float(ci.reneg_at[j])
        self.sess_k = 0
        self.pending_notified = False
        self.retry_needed = False
        self.offer_at: float | None = None
        self.xfer_start: float | None = None
        self.pc_k = 0
        self.rst_k = 0
        # outcome
        self.updated_at = INF
        self.began_outside = False
        self.ended_in_window = False
        self.full = 0
        self.resumes = 0
        self.ota = 0
        self.retry_bytes = 0
        self.retries = 0
        self.done = not self.needs
        if not self.needs and ci.cohort.development is False:
            self.updated_at = 0.0  # already runs the target (docs/reference/particle-ota.md §7.7 needs_update false)
        if self.done:
            return
        self._arm("pc", float(ci.pc_next[j]), self._power_cycle)
        self._arm("rst", float(ci.rst_next[j]), self._reset)
        self._arm("reneg", self.reneg_at, self._renegotiate)
        self._arm_edge()
        self._arm_guard()

    # -- timers ---------------------------------------------------------------------------
    def _arm(self, name: str, when: float, fn: Callable[[], None]) -> None:
        old = self.timers.pop(name, None)
        if old is not None:
            old.cancel()
        if when < self.sim.t_end:
            self.timers[name] = self.sim.sched.at(_t(when), fn)

    def _disarm(self, name: str) -> None:
        old = self.timers.pop(name, None)
        if old is not None:
            old.cancel()

    def _arm_edge(self) -> None:
        now = np.array([float(self.sim.sched.now_ms)])
        self._arm("edge", float(self.sched_info.next_edge(self.g, now)[0]), self._edge)

    def _arm_guard(self) -> None:
        if self.sim.strategy is Strategy.STANDARD_DAILY:
            self._arm("guard", max(self.guard_last + self.sim.params.guard_handshake_interval_ms,
                                   self.sim.sched.now_ms), self._maybe_guard_handshake)

    @property
    def now(self) -> int:
        return self.sim.sched.now_ms

    @property
    def in_transfer(self) -> bool:
        return self.xfer_start is not None

    # -- cloud ----------------------------------------------------------------------------
    def offer(self, delay: float = 0.0) -> None:
        """start_delivery (docs/reference/particle-ota.md §7.9): UpdateBegin a few seconds later."""
        if self.offer_at is not None or self.in_transfer or self.done:
            return
        self.retry_needed = False
        self.offer_at = self.now + delay + self.sim.params.begin_delay_ms(self.link)
        self._arm("begin", self.offer_at, self._update_begin)

    def release(self) -> None:
        """The strategy's action at T0 (docs/reference/particle-ota.md §7.8.2, §7.8.4, §7.8.5)."""
        s = self.sim.strategy
        if self.done:
            return
        if s is Strategy.INTELLIGENT and self.c.intelligent_capable:
            action = rules.intelligent_release_action(online=self.online, needs_update=self.needs,
                                                      enabled=self.enabled, forced=False)
            if action == "deliver":
                self.offer()
            elif action == "notify":
                self._notified()
        elif s is Strategy.LOCK_FLASH and self.online:
            self.offer()
        elif s is Strategy.FORCED and self.online and self.c.forced_capable:
            self._forced_echo()

    def _forced_echo(self) -> None:
        self.forced_dev = True  # the device sets SYSTEM_FLAG_OTA_UPDATE_FORCED and echoes it
        if rules.deliver_on_forced_echo(echoed_forced=True, forced_setting=True, needs_update=self.needs):
            self.offer(self.latency * 2)

    def _notified(self) -> None:
        """Cloud sent updates/pending=true (docs/reference/particle-ota.md §1.5); the device latches it from 1.2.1."""
        self.pending_notified = True
        if self.c.intelligent_capable:
            self.dev_pending = True
            self._guard_poll()

    def _connected(self, kind: str) -> None:
        """A cloud connection completed: "full", "resume" or "hello" (resume + HELLO)."""
        sim = self.sim
        if self.done:
            return
        full = kind == "full" or rules.session_expired(
            established_ms=_t(self.expiry - sim.params.cloud.session_max_age_ms), now_ms=self.now,
            max_age_ms=sim.params.cloud.session_max_age_ms)
        self.online = True
        if full:
            self.full += 1
            self._new_session()
        else:
            self.resumes += 1
        checked = rules.connection_is_check(resumed=not full, hello_sent=full or kind == "hello",
                                            check_on_resume=sim.params.cloud.check_on_resume)
        # Send_Firmware_Update_Flags on every connection (docs/reference/particle-ota.md §1.2) → §7.8.3 / §7.8.5
        if sim.strategy is Strategy.FORCED and self.c.forced_capable and sim.params.cloud.resend_forced_on_connect:
            self._forced_echo()
        if self.c.forced_capable and rules.deliver_on_enabled(
                enabled=self.enabled, needs_update=self.needs, pending_notified=self.pending_notified,
                last_release_intelligent=sim.strategy is Strategy.INTELLIGENT, retry_needed=self.retry_needed):
            self.offer()
        action = rules.after_connect_action(
            needs_update=self.needs, busy=self.offer_at is not None or self.in_transfer, checked=checked,
            retry_needed=self.retry_needed, pending_notified=self.pending_notified,
            allowed=rules.updates_allowed(enabled=self.enabled, forced=self.forced_dev),
            renotify_pending=sim.params.cloud.renotify_pending_on_connect)
        if action == "deliver":
            self.offer(sim.params.cloud.pending_false_delay_ms)
        elif action == "renotify":
            self._notified()
        self._guard_poll()
        self._arm_guard()

    def _new_session(self) -> None:
        p = self.sim.params
        self.sess_k += 1
        self.expiry = self.now + p.cloud.session_max_age_ms
        if p.renegotiation == "next_connect":
            self.reneg_at = INF
        else:
            lag = float(u01(self.sim.fleet.seed, S_LAG, self.g, self.sess_k)[0]) * p.lag_max_ms()
            self.reneg_at = self.expiry + lag
        self._arm("reneg", self.reneg_at, self._renegotiate)

    # -- device / app -----------------------------------------------------------------------
    def _update_begin(self) -> None:
        self.offer_at = None
        if not self.online:
            self.retry_needed = True  # the delivery fails; retried at the next trigger (§7.9)
            return
        allowed = rules.updates_allowed(enabled=self.enabled or self.leak, forced=self.forced_dev)
        if not allowed and self.c.guarded and not self.c.intelligent_capable and self.idle:
            allowed = True  # before 1.2: the app's firmware_update_pending handler runs in the begin wait (§2.1)
        self.leak = False
        if not allowed:
            self._notified()  # 5.03 → the cloud marks pending and notifies (§7.9); 1.2.1+ latches it
            return
        self.xfer_start = float(self.now)
        self.began_outside = self.began_outside or not self.idle
        self.dev_pending = False
        self._arm("end", self.now + self.duration, self._transfer_done)

    def _transfer_done(self) -> None:
        start = self.xfer_start
        self.xfer_start = None
        self.ota += self.on_air
        self.resumes += 1  # the post-update reconnect (resume + HELLO, docs/reference/particle-ota.md §1.1)
        self.ended_in_window = bool(self.idle and self._same_window(start))
        self.updated_at = self.now + self.sim.params.after_transfer_ms(self.link) - self.sim.t0
        self.done = True
        for name in list(self.timers):
            self._disarm(name)

    def _same_window(self, start: float | None) -> bool:
        if start is None:
            return False
        now = np.array([float(self.now)])
        nxt = self.sched_info.idle.next_edge(self.g, np.array([start]))[0]
        return bool(nxt >= now[0])

    def _cut(self) -> None:
        """Sleep, reset or power loss during a transfer aborts it (docs/reference/particle-ota.md §3.2, §3.3); legacy
        protocol: the retry starts from chunk 0 (§2.4, §7.9)."""
        if self.in_transfer:
            frac = (self.now - self.xfer_start) / max(self.duration, 1)
            self.retry_bytes += int(self.on_air * min(frac, 1.0))
            self.retries += 1
            self.xfer_start = None
            self._disarm("end")
            self.retry_needed = True
            if self.c.guarded:
                self.enabled = False  # OtaGuard: on failure hold updates again
        self.online = False

    def _boot(self, cold: bool) -> None:
        """A (re)boot: RAM flags back to defaults (docs/reference/particle-ota.md §2.1); the guard disables in setup()."""
        self._cut()
        self.enabled = not self.c.guarded
        self.forced_dev = False
        self.dev_pending = False
        self.guard_last = float(self.now)  # OtaGuard::begin: lastHandshakeMs_ = millis()
        self.leak = self.c.boot_leak and self.sim.params.boot_leak
        p = self.sim.params
        delay = p.cold_connect_ms(self.link) if cold else p.devos.boot_ms + p.wake_connect_ms(self.link, False)
        kind = "full" if cold else "resume"
        self._arm("conn", self.now + delay, lambda: self._connected(kind))

    def _power_cycle(self) -> None:
        self.pc_k += 1
        self._arm("pc", self.now + float(exp_ms(self.sim.fleet.seed, S_PC, self.g, self.pc_k,
                                                 self.c.power_cycles_per_day)[0]), self._power_cycle)
        if self.awake and not self.done:
            self._boot(cold=not self.sim.params.devos.session_survives_power_loss)

    def _reset(self) -> None:
        self.rst_k += 1
        self._arm("rst", self.now + float(exp_ms(self.sim.fleet.seed, S_RST, self.g, self.rst_k,
                                                  self.c.resets_per_day)[0]), self._reset)
        if self.awake and not self.done:
            self._boot(cold=False)

    def _renegotiate(self) -> None:
        """PlannerParams.renegotiation: the cloud renegotiates a connected device's old session."""
        self.timers.pop("reneg", None)
        if self.online and not self.in_transfer and self.offer_at is None:
            self._connected("full")
        elif self.online:
            self._arm("reneg", self.now + 60_000, self._renegotiate)

    def _edge(self) -> None:
        self.timers.pop("edge", None)
        now = np.array([float(self.now)])
        awake = bool(self.sched_info.online(self.g, now)[0])
        idle = bool(self.sched_info.idle.inside(self.g, now)[0])
        was_idle = self.idle
        self.idle = idle
        if awake != self.awake:
            if not awake and self.in_transfer and self.c.holds_sleep_during_ota:
                pass  # the app stays awake until the update lands (docs/reference/particle-ota.md §3.2)
            else:
                self.awake = awake
                if not awake:
                    self._cut()
                    self._disarm("conn")
                elif self.c.sleep_mode in ("hibernate", "power_off"):
                    self._boot(cold=self.c.sleep_mode == "power_off")  # HIBERNATE wakes through reset
                else:
                    p = self.sim.params
                    self._arm("conn", self.now + p.wake_connect_ms(self.link, False), lambda: self._connected("resume"))
        if idle and not was_idle:
            self._guard_poll()
            self._maybe_guard_handshake()
        elif was_idle and not idle and self.c.guarded and not self.in_transfer:
            self.enabled = False  # OtaGuard: work starts, no transfer began → hold updates
        self._arm_edge()

    def _guard_poll(self) -> None:
        """OtaGuard step 4: pending + idle window → shut down, enableUpdates() → §7.8.3 delivery."""
        if not (self.c.guarded and self.dev_pending and self.online and self.idle and not self.enabled):
            return
        self.enabled = True
        if rules.deliver_on_enabled(enabled=True, needs_update=self.needs, pending_notified=self.pending_notified,
                                    last_release_intelligent=self.sim.strategy is Strategy.INTELLIGENT,
                                    retry_needed=self.retry_needed):
            self.offer(self.sim.params.guard_loop_ms + self.latency)

    def _maybe_guard_handshake(self) -> None:
        """OtaGuard::maybeForceHandshake: once a day, in an idle window, session/end + reconnect (§1.3)."""
        p = self.sim.params
        if self.sim.strategy is not Strategy.STANDARD_DAILY or self.done:
            return
        if not (self.online and self.idle) or self.in_transfer or self.offer_at is not None:
            return
        if self.c.guarded and self.enabled:
            return  # updates released: a transfer is about to begin
        if _t(self.guard_last + p.guard_handshake_interval_ms) > self.now:
            self._arm_guard()
            return
        self.guard_last = float(self.now)
        self.online = False
        self._arm("conn", self.now + p.guard_reconnect_ms, lambda: self._connected("full"))
        self._arm_guard()


class EventSim:
    """All devices of a fleet on one heap."""

    def __init__(self, fleet: Fleet, strategy: Strategy, params: PlannerParams | None = None) -> None:
        self.fleet = fleet
        self.strategy = strategy
        self.params = params or PlannerParams()
        self.sched = Scheduler()
        self.t0 = int(release_time_ms(fleet))
        self.t_end = self.t0 + fleet.horizon_days * DAY_MS
        self.sched.now_ms = self.t0
        self.devices: list[_Device] = []
        for ci in initial_state(fleet, self.params, strategy):
            for j in range(ci.cohort.count):
                self.devices.append(_Device(self, ci, j))
        for d in self.devices:
            d.release()

    def run(self, progress: Callable[[float], None] | None = None) -> None:
        step = DAY_MS // 4
        t = self.t0
        while t < self.t_end:
            t = min(t + step, int(self.t_end))
            self.sched.run_until(t, stop_early=False)
            if progress:
                progress((t - self.t0) / (self.t_end - self.t0))

    def result(self) -> RolloutResult:
        ds = self.devices
        cohort_of = np.concatenate([np.full(c.count, i) for i, c in enumerate(self.fleet.cohort)])
        arr = lambda f, dt=float: np.array([f(d) for d in ds], dtype=dt)  # noqa: E731
        return RolloutResult(
            self.fleet, self.strategy, "event", cohort_of, arr(lambda d: d.updated_at),
            arr(lambda d: d.began_outside, bool), arr(lambda d: d.ended_in_window, bool),
            arr(lambda d: d.full, np.int64), arr(lambda d: d.resumes, np.int64),
            arr(lambda d: d.ota, np.int64), arr(lambda d: d.retry_bytes, np.int64),
            arr(lambda d: d.retries, np.int64))


def simulate(fleet: Fleet, strategy: Strategy, params: PlannerParams | None = None,
             progress: Callable[[float], None] | None = None) -> RolloutResult:
    """Run the per-device event model for one strategy."""
    t = time.perf_counter()
    sim = EventSim(fleet, strategy, params)
    sim.run(progress)
    res = sim.result()
    res.wall_s = time.perf_counter() - t
    return res

