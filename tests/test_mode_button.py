"""The tester board's MODE line and the simulated Electron's click counting (otarig.sim.mode_button).

The real tester program (firmware/bench/) presses MODE over its pty; the real companion runs on the
Electron. docs/reference/particle-ota.md §2.11: presses of 30-499 ms are clicks, the count ends
1 s after the last one, two clicks announce a power-off with `reset_pending`, which
`System.disableReset()` holds, and the device then sleeps in HIBERNATE until WKP rises.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from otarig.bench_companion import BenchCompanion, CompanionTimeline
from otarig.protocol import Event
from otarig.sim import deviceos as dos

from sim_helpers import ImageFactory, RigFactory, SimRig


def _tester(rig: SimRig, tmp_path: Path) -> BenchCompanion:
    """firmware/bench/ beside the Electron, reached through its own pty."""
    rig.bench.add_bench_companion(rig.dev.device_id)
    board = rig.bench.open_board("bench-companion", tmp_path / "tester.log")
    return BenchCompanion.connect(board, str(board.url))


@pytest.fixture
def parked(companion_image: ImageFactory, sim_rig: RigFactory, tmp_path: Path) -> tuple[SimRig, BenchCompanion]:
    rig = sim_rig(companion_image(1))
    rig.connected()
    rig.run(5)
    return rig, _tester(rig, tmp_path)


def test_double_click_announces_a_power_off_the_guard_persists_for(parked: tuple[SimRig, BenchCompanion]) -> None:
    rig, tester = parked
    t0 = rig.now_ms
    reply = tester.double_click_mode()
    assert (reply["count"], reply["ms"], reply["gap_ms"]) == (2, 100, 200)
    off = rig.until_kind("soft_power_off", 10)
    # two clicks end 100 + 200 + 100 ms after the first press; the count ends > 1000 ms after the last
    clicks = rig.trace("button_clicks", since_ms=t0)
    assert [e.data["clicks"] for e in clicks] == [2]
    assert clicks[0].t_ms - t0 >= 400 + 1000
    pending = rig.events(dos.RESET_PENDING, since_ms=t0)
    assert pending and pending[0].t_ms == rig.trace("power_off_requested", since_ms=t0)[0].t_ms
    # the companion's guard held the reset, shut the app down, then released it
    rig.run(1)
    guard = [e.get("action") for e in rig.board.events("guard")]
    assert guard[-4:] == ["reset_held", "shutdown_begin", "shutdown_complete", "reset_released"], guard
    assert rig.dev.sleeper.hibernating and rig.dev.app is None
    assert not rig.trace("reset", since_ms=t0), "a power-off, not a reset"
    assert off.t_ms >= rig.events(dos.RESET, since_ms=t0)[0].t_ms
    # asleep until WKP rises: boots through reset with power_management
    rig.run(60)
    assert rig.dev.sleeper.hibernating
    tester.wake(10)
    rig.until_kind("boot_start", 5, reason="power_management")


def test_disable_reset_holds_the_power_off_until_the_app_lets_it_go(parked: tuple[SimRig, BenchCompanion]) -> None:
    rig, tester = parked
    rig.board.command("reset_hold", hold=True)
    t0 = rig.now_ms
    tester.double_click_mode()
    rig.until_kind("power_off_requested", 10)
    rig.run(30)
    assert not rig.dev.sleeper.hibernating and rig.dev.app is not None, "the app's hold keeps the device up"
    assert not rig.events(dos.RESET, since_ms=t0), "no `reset` while resets are disabled"
    rig.board.command("reset_hold", hold=False)
    rig.until_kind("soft_power_off", 10)


@pytest.mark.parametrize("presses, why", [
    ([(100, 0)], "one click shows the signal strength"),
    ([(20, 0), (20, 100)], "presses under 30 ms are switch bounce"),
    ([(100, 0), (100, 1300)], "the second click comes after the count ended (1 s)"),
    ([(100, 0), (100, 200), (100, 200)], "three clicks"),
    ([(100, 0), (600, 200)], "a press of 500 ms or more is no click: it ends the count at one"),
])
def test_only_a_double_click_powers_off(parked: tuple[SimRig, BenchCompanion], presses: list[tuple[int, int]],
                                        why: str) -> None:
    rig, tester = parked
    t0 = rig.now_ms
    if len({ms for ms, _ in presses}) == 1 and len({gap for _, gap in presses[1:]}) <= 1:
        gap = presses[1][1] if len(presses) > 1 else 250
        tester.press_mode(presses[0][0], count=len(presses), gap_ms=gap)
        rig.run(sum(ms for ms, _ in presses) + gap * (len(presses) - 1) / 1000 + 3)
    else:
        for ms, gap in presses:
            rig.run(gap / 1000)
            tester.press_mode(ms)
            rig.run(ms / 1000 + 0.01)
        rig.run(3)
    assert not rig.trace("power_off_requested", since_ms=t0), why
    assert not rig.events(dos.RESET_PENDING, since_ms=t0)
    assert rig.dev.app is not None and not rig.dev.sleeper.hibernating


def test_mode_line_events_reach_the_timeline() -> None:
    tl = CompanionTimeline("dut")
    press = tl.entries(Event(name="mode", t=0, fields={"pressed": True}, raw=""))
    assert press == [("rig", "mode_button", {"board": "dut", "via": "bench_companion", "pressed": True})]
    release = tl.entries(Event(name="mode", t=100, fields={"pressed": False}, raw=""))
    assert release[0][2]["pressed"] is False


def test_mode_line_levels_over_the_pty(parked: tuple[SimRig, BenchCompanion]) -> None:
    """Open drain, active low: the Electron's MODE input falls for exactly the press."""
    rig, tester = parked
    t0 = rig.now_ms
    tester.press_mode(150)
    assert tester.status()["mode_pressed"] is True
    rig.run(0.3)
    assert rig.dev.mode_button.level == 1 and tester.status()["mode_pressed"] is False
    edges = [(e.t_ms, e.data["pressed"]) for e in rig.trace("mode_button", since_ms=t0)]
    assert [p for _, p in edges] == [True, False] and edges[1][0] - edges[0][0] == 150
