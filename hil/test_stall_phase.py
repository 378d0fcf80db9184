"""Records keep their cadence whatever the phase at which a stall ends (docs/reference/particle-ota.md §3.1).

Device OS runs no loop() of a non-threaded app while its cloud connection is being made (§3.1;
device-os v2.3.1 system/src/main.cpp:450-452, :474-480), and lost coverage keeps auto-connect on
(system/src/system_network_internal.h:681-684): an app busy when coverage goes is stalled until the
cloud is back, and an app that keeps a record grid then finds itself periods behind. It must take
the record the stall made due and go on from there, never catch up with a burst
(`records_keep_declared_cadence` judges a stretch resumed after such a hold). How an app works out
that it is behind can be wrong at some phases of the stall's end only: a remainder of the uptime at
which the stall began, taken for a difference, agrees with it until the stall ends at twice that
uptime or later, within a period after a multiple of it (docs/selftest.md, companion.cpp:190). A
device that loses coverage soon after it boots (in a garage, a tunnel) has stalls as long as its uptime.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from otarig import verdicts as v
from otarig.plugin import SKIP_NOT_APPLICABLE
from otarig.rig import Rig

from conftest import connected, declared_period_ms, needs_non_threaded_app, park

#: where each stall's end is put, in declared periods after twice the grid point the stall began
#: before (2L): a little before it, four phases within the period after it, and a little after that
PHASES = (-0.125, 0.125, 0.375, 0.625, 0.875, 1.125)
#: how far before its grid point (in periods) a stall may begin: not on the point, nor within a
#: loop pass after the one before (an app's passes may be a quarter period apart, as
#: records_keep_declared_cadence allows), where whether that record was taken is not the bench's to know
AHEAD_MIN, AHEAD_MAX = 0.05, 1 - v.CADENCE_LATE_SHARE
#: periods the app works after each boot before coverage goes, and after each stall before parking
WORK_BEFORE, WORK_AFTER = 2, 3


@dataclass(frozen=True)
class Stall:
    """One hold of the busy app by Device OS, on the device's clock (ms since its boot)."""

    busy_ms: int    # the stretch's start, its record grid's origin
    grid_ms: int    # L: the grid point after the last record taken before the hold
    began_ms: int   # `cloud_status disconnected`: the hold begins
    ended_ms: int   # `cloud_status connected`: the hold ends, loop() runs again

    def phase(self, period: int) -> float:
        """Where the stall ended, in periods after twice its grid point."""
        return (self.ended_ms - 2 * self.grid_ms) / period

    def describe(self, period: int) -> str:
        return (f"began at {self.began_ms} ms (next grid point {self.grid_ms} ms, the stretch began at "
                f"{self.busy_ms} ms), ended at {self.ended_ms} ms: {self.phase(period):+.2f} periods after "
                "twice the grid point")


def _uptime_ms(rig: Rig) -> float:
    """The DUT's millis() now: its latest stamped line plus the bench time since (the clocks tick alike)."""
    source = f"board:{rig.dut_id}"
    last = next(e for e in reversed(rig.timeline.entries) if e.source == source and e.device_t is not None)
    return last.device_t + (rig.now() - last.t) * 1000.0


def _wait_until_uptime(rig: Rig, uptime_ms: float) -> None:
    rig.wait(max(0.0, uptime_ms - _uptime_ms(rig)) / 1000.0)


def _boot_and_go_busy(rig: Rig) -> tuple[float, int]:
    """The device boots afresh (`reset`: System.reset()) and goes to work once connected. Returns
    the bench time and the device's uptime (ms) at which the app turned busy (`app workload busy`)."""
    park(rig)
    rig.command("reset")
    rig.expect(lambda e: e.name == "boot", 300)
    connected(rig, 600)
    since = rig.now()
    rig.command("workload", state="busy")
    busy = rig.timeline.select(source=f"board:{rig.dut_id}", kind="app", start=since,
                               where=lambda e: e.get("action") == "workload" and e.get("state") == "busy")
    assert busy and busy[-1].device_t is not None, "the app did not report turning busy (`app workload busy`)"
    return busy[-1].t, int(busy[-1].device_t)


def _stall_start_ms(phase: float, busy_ms: int, length_ms: float, period: int) -> float:
    """The uptime S at which a stall `length_ms` long must begin to end `phase` periods after 2L, L
    being the grid point (from `busy_ms`) next after S: 2L - S = L + (L - S) = length - phase x period.
    S lies AHEAD_MIN to AHEAD_MAX periods before L; a phase that needs it nearer a grid point moves
    to the nearest allowed start (by at most 0.15 of a period)."""
    want = length_ms - phase * period
    n = math.floor((want - busy_ms) / period)
    ahead = want - busy_ms - n * period  # L - S, in [0, period)
    if ahead > (1 + AHEAD_MIN + AHEAD_MAX) / 2 * period:
        n, ahead = n + 1, AHEAD_MIN * period  # nearer the next grid point's earliest start
    ahead = min(max(ahead, AHEAD_MIN * period), AHEAD_MAX * period)
    return busy_ms + n * period - ahead


def _next_grid_point(rig: Rig, busy_t: float, busy_ms: int, period: int) -> int:
    """L: the point of the stretch's grid after the last record it took so far (the first, if none)."""
    records = rig.timeline.select(source=f"board:{rig.dut_id}", kind="app", start=busy_t,
                                  where=lambda e: e.get("action") == "record" and not e.get("persisted"))
    taken = max((round((int(e.device_t) - busy_ms) / period) for e in records if e.device_t is not None),
                default=0)
    return busy_ms + (taken + 1) * period


@pytest.mark.spec("docs/reference/particle-ota.md §3.1")
@pytest.mark.requires("antenna_switch")
@pytest.mark.budget(1800)
def test_records_keep_their_cadence_whatever_the_phase_a_stall_ends_at(rig):
    """Boot after boot, the device goes to work as soon as it is connected and loses coverage (the
    antenna) while busy; a non-threaded app is stalled from the modem's `cloud_status disconnected`
    until `connected` (§3.1). Each stall lasts about as long as the uptime at which it began, and
    each ends at another phase around twice the grid point L that the app's next record was due at:
    just before 2L, at four phases within the period after it, just after. The records must keep
    the declared cadence through every one (`records_keep_declared_cadence`: a stretch resumed after
    the hold takes its first record within a period and goes on from it).

    The first stall measures how this bench behaves: how long after the antenna goes the hold
    begins, and how long the hold lasts when coverage returns a given time after it began (on the
    simulated bench, 20 s after the loss the modem's detach reaches the cloud connection, and the
    modem then tries to register every 10 s, `otarig.sim.connectivity`: a hold lasts whole tens of
    seconds plus the session's resumption, docs/reference/particle-ota.md §2.2, §7.3). Every later
    stall has coverage back after the same time, and begins at the uptime that puts its end at its
    phase. At least one stall must end within the period after 2L, or the scenario tests nothing."""
    needs_non_threaded_app(rig, "loop() stalled while the cloud connection is being made")
    period = declared_period_ms(rig)
    if period is None:
        pytest.skip(f"{SKIP_NOT_APPLICABLE}it declares no record period (TestAgentInfo.recordPeriodMs), "
                    "so no cadence can be judged across a stall")
    antenna = rig.companion("antenna_switch")
    stalls: list[Stall] = []
    lag_ms = restore_after_ms = length_ms = 0.0
    for phase in (None, *PHASES):
        busy_t, busy_ms = _boot_and_go_busy(rig)
        earliest = busy_ms + WORK_BEFORE * period
        if phase is None:  # the first stall measures the bench's timings; mid-period, off the grid
            cut = earliest + period / 2
        else:
            cut = max(earliest, _stall_start_ms(phase, busy_ms, length_ms, period) - lag_ms)
        _wait_until_uptime(rig, cut)
        cut = _uptime_ms(rig)
        antenna.antenna_off(0)  # until switched on again
        rig.collect()
        began = int(rig.expect_sys("cloud_status", "disconnected", 600).t)
        grid = _next_grid_point(rig, busy_t, busy_ms, period)
        if phase is None:  # about as long as the uptime, with room for later boots to connect later
            restore_after_ms = round(1.25 * began + 4 * period)
        _wait_until_uptime(rig, began + restore_after_ms)
        antenna.switch(antenna=True)
        rig.collect()
        ended = int(rig.expect_sys("cloud_status", "connected", 900).t)
        lag_ms, length_ms = began - cut, ended - began
        stalls.append(Stall(busy_ms, grid, began, ended))
        rig.wait(WORK_AFTER * period / 1000.0)
    park(rig)
    rig.wait(WORK_AFTER * period / 1000.0)
    tl = rig.timeline
    rig.check(v.records_keep_declared_cadence(tl), v.record_numbers_go_up(tl), v.no_record_lost(tl),
              v.reports_agree_with_status(tl), v.reported_threading_holds(tl))
    assert any(0 <= s.phase(period) < 1 for s in stalls), (
        "no stall ended within the period after twice its grid point, so this scenario tests nothing: "
        + "; ".join(s.describe(period) for s in stalls))
