"""What both rollout models share: the per-device starting state and the result record."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from otarig.sim import cloud_rules as rules

from .fleet import Cohort, Fleet
from .patterns import HOUR_MS, INF, S_EXP, S_GUARD, S_PC, S_RST, CohortSchedule, exp_ms, initial_residual, u01
from .strategies import PlannerParams, Strategy


def release_state(fleet: Fleet, strategy: Strategy) -> rules.ReleaseState:
    """The product's releases once the strategy is applied (docs/reference/particle-ota.md §7.6)."""
    return rules.ReleaseState(default_release=fleet.release.version,
                              last_release_intelligent=strategy is Strategy.INTELLIGENT)


def cohort_needs_update(c: Cohort, fleet: Fleet, strategy: Strategy) -> bool:
    """docs/reference/particle-ota.md §1.4 precedence / §7.7 via `cloud_rules` (a lock for lock & flash)."""
    lock = fleet.release.version if strategy is Strategy.LOCK_FLASH else None
    target = rules.target_version(rules.TargetInputs(development=c.development, desired_firmware_version=lock),
                                  release_state(fleet, strategy))
    return rules.needs_update(target, fleet.release.running_version)


def release_time_ms(fleet: Fleet) -> float:
    return fleet.release.at_hour * HOUR_MS


@dataclass
class CohortInit:
    """Starting state at the release instant for one cohort's devices (arrays)."""

    cohort: Cohort
    sched: CohortSchedule
    gid: np.ndarray
    reneg_at: np.ndarray
    expiry: np.ndarray
    guard_last: np.ndarray
    pc_next: np.ndarray
    rst_next: np.ndarray
    needs: bool


def initial_state(fleet: Fleet, params: PlannerParams, strategy: Strategy) -> list[CohortInit]:
    """Stationary phases at the release instant T0 (same draws in both models).

    - Session: the renegotiation cycle is uniform on [3 d, 3 d + lag] (PlannerParams.renegotiation);
      the time to the next renegotiation is its length-biased residual; the session expired `lag`
      before that. In "next_connect" mode a connected device never renegotiates; its session
      expires uniformly within the next 3 days.
    - Guard (daily handshake): the last forced handshake was at the latest idle-window opening
      (the handshake settles there, OtaGuard::maybeForceHandshake); for an app idle all day, a
      uniform point of the last interval.
    """
    t0 = release_time_ms(fleet)
    a = float(params.cloud.session_max_age_ms)
    lag = float(params.lag_max_ms())
    out = []
    base = 0
    for c in fleet.cohort:
        gid = np.arange(base, base + c.count, dtype=np.int64)
        base += c.count
        sched = CohortSchedule(c, fleet.seed)
        t = np.full(c.count, t0)
        if params.renegotiation == "next_connect":
            reneg = np.full(c.count, INF)
            expiry = t0 + u01(fleet.seed, S_EXP, gid) * a
        else:
            resid, lag0 = initial_residual(fleet.seed, gid, a, lag)
            reneg = t0 + resid
            expiry = reneg - u01(fleet.seed, S_EXP, gid) * lag0
        interval = float(params.guard_handshake_interval_ms)
        last = sched.idle.last_start(gid, t) if not sched.idle.always else np.full(c.count, -INF)
        fallback = t0 - u01(fleet.seed, S_GUARD, gid) * interval
        guard_last = np.where((last > t0 - interval) & np.isfinite(last), last, fallback)
        out.append(CohortInit(c, sched, gid, reneg, expiry, guard_last,
                              t0 + exp_ms(fleet.seed, S_PC, gid, 0, c.power_cycles_per_day),
                              t0 + exp_ms(fleet.seed, S_RST, gid, 0, c.resets_per_day),
                              cohort_needs_update(c, fleet, strategy)))
    return out


@dataclass
class RolloutResult:
    """Per-device outcome of one strategy on one fleet (times in ms after the release)."""

    fleet: Fleet
    strategy: Strategy
    model: str
    cohort: np.ndarray
    updated_at: np.ndarray          # inf = not reached within the horizon
    began_outside: np.ndarray       # bool: the transfer began while the app was busy
    ended_in_window: np.ndarray     # bool: the transfer finished inside the same idle window
    full_handshakes: np.ndarray
    resumes: np.ndarray
    ota_bytes: np.ndarray
    retry_bytes: np.ndarray
    retries: np.ndarray
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.updated_at.size)
