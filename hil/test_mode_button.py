"""The user powers the Electron off with a MODE double click (the tester board's MODE line)."""
from __future__ import annotations

import pytest

from otarig import verdicts as v
from otarig.board import ExpectTimeout, PortUnavailable

from conftest import connected, drive, ota_verdicts, park, pending_intelligent_release


def _double_click(rig) -> float:
    """Two MODE clicks from the tester board; returns when they began (bench time)."""
    at = rig.now()
    rig.companion("mode_button").double_click_mode()
    rig.collect()
    return at


def _reset_verdicts(rig) -> list[v.Verdict]:
    tl = rig.timeline
    return [v.no_new_work_once_reset_pending(tl), v.updates_stay_disabled_once_reset_pending(tl),
            v.no_record_lost(tl), v.record_count_never_drops(tl), v.record_numbers_go_up(tl)]


def _wake_after_power_off(rig) -> None:
    """Asleep until WKP rises (a MODE power-off is HIBERNATE), then boots through reset."""
    rig.wait(30)
    assert not rig.timeline.select(kind="hello"), "a MODE power-off waits for WKP (§2.11, §3.2)"
    rig.wake()
    boot = rig.expect(lambda e: e.name == "boot", 60)
    assert boot.get("reset_reason") == "power_management", "a soft power-off wakes through reset (§2.11)"
    connected(rig)


@pytest.mark.spec("docs/reference/particle-ota.md §2.11")
@pytest.mark.requires("mode_button", "wake_pin")
@pytest.mark.budget(600)
def test_mode_double_click_while_driving_powers_off_after_a_clean_shutdown(rig):
    """The vehicle drives; the user double-clicks MODE to power the device off. Device OS announces
    it with `reset_pending` (no update involved, docs/reference/particle-ota.md §2.11) and powers off
    once resets are enabled: the app must stop, persist and only then let it go, like an update's
    reset (§2.5). No record acknowledged as persisted may be missing when WKP wakes it."""
    connected(rig)
    drive(rig)
    rig.wait(12)
    _double_click(rig)
    rig.expect_sys("reset_pending", timeout=30)
    rig.expect_sys("reset", timeout=60)
    _wake_after_power_off(rig)
    rig.wait(10)
    rig.check(v.shutdown_before_reset(rig.timeline), *_reset_verdicts(rig))


@pytest.mark.spec("docs/reference/particle-ota.md §2.11")
@pytest.mark.requires("mode_button", "wake_pin")
@pytest.mark.budget(2400)
def test_mode_double_click_while_the_app_holds_the_reset(rig):
    """A critical section holds the reset (System.disableReset()) while the vehicle drives; the user
    double-clicks MODE to power the device off. Device OS announces it with `reset_pending` (no update
    involved, docs/reference/particle-ota.md §2.11) and waits for the reset to be enabled: the app
    must stop working and persist at once, not when the critical section ends; the vehicle then parks
    and a release becomes pending, which must stay out while the power-off waits. Once the hold
    ends the device powers off; WKP wakes it, and the pending update then lands in an idle window."""
    connected(rig)
    drive(rig)
    rig.wait(12)
    rig.command("reset_hold", hold=True)
    _double_click(rig)
    rig.expect_sys("reset_pending", timeout=30)
    rig.wait(10)      # the critical section lasts; the vehicle still drives
    park(rig)
    pending_intelligent_release(rig, 2)
    rig.wait(60)
    assert not rig.timeline.select(kind="hello"), "the device powered off while the app held the reset"
    rig.check(*_reset_verdicts(rig))  # first: a failure says what to change
    rig.command("reset_hold", hold=False)
    rig.expect_sys("reset", timeout=60)
    _wake_after_power_off(rig)
    rig.expect_version(2, 1800)
    rig.wait(30)
    rig.check(*_reset_verdicts(rig), *ota_verdicts(rig, 2))
    released = rig.timeline.select(kind="guard", where=lambda e: e.get("action") == "reset_released")
    shut = rig.timeline.select(kind="guard", where=lambda e: e.get("action") == "shutdown_complete")
    assert released and shut and shut[0].t <= released[0].t, "the reset was released before persistence"


#: When the park command is sent, in ms from the power-off announcement the first double click
#: showed: 25 ms apart, finer than a driving loop's pass, over 300 ms, so that for an app whose
#: busy loop passes come at most ~250 ms apart some attempt lands in the very pass that also takes
#: `reset_pending` (the companion's come every 100 ms)
PARK_OFFSETS_MS = tuple(range(-250, 51, 25))


def _drive_with_the_update_pending(rig) -> None:
    """After a boot: drive at once (before the handshake lets the pending update in while parked),
    then wait for the cloud's pending notice."""
    rig.expect(lambda e: e.name == "boot", 120)
    drive(rig)
    rig.expect_sys("firmware_update_pending", timeout=300)


@pytest.mark.spec("docs/reference/particle-ota.md §2.11", "docs/reference/particle-ota.md §2.5")
@pytest.mark.requires("mode_button", "wake_pin")
@pytest.mark.budget(3600)
def test_parking_as_the_mode_power_off_is_announced_lets_no_update_in(rig):
    """The driver parks and double-clicks MODE to power the tracker off while an update is pending:
    the idle window opens in the same moment Device OS announces the power-off (`reset_pending`,
    docs/reference/particle-ota.md §2.11). Whichever the app sees first, updates stay disabled once
    the reset is announced (§2.5) and no record is lost. Which one a loop pass sees first depends on
    where the park falls between passes, so it is tried at offsets 25 ms apart around the
    announcement (measured on the first power-off, PARK_OFFSETS_MS); each power-off is woken by WKP
    and the app drives at once, before the pending update could land while parked. Then the vehicle
    parks for good and the update lands. A guard that takes the announcement only at its next pass
    fails here: in the pass where the window opens it still lets the pending update in."""
    connected(rig)
    drive(rig)
    pending_intelligent_release(rig, 2)
    start = _double_click(rig)
    rig.expect_sys("reset_pending", timeout=30)
    announced = rig.now() - start
    rig.expect_sys("reset", timeout=60)
    for offset_ms in PARK_OFFSETS_MS:
        rig.wait(10)
        rig.wake()
        _drive_with_the_update_pending(rig)
        rig.wait(5)
        start = _double_click(rig)
        park_at = start + announced + offset_ms / 1000
        if park_at > rig.now():
            rig.wait(park_at - rig.now())
        try:
            park(rig)
        except (ExpectTimeout, PortUnavailable):  # the power-off came first: no reply, or no port
            pass
        rig.expect_sys("reset_pending", timeout=30)
        rig.expect_sys("reset", timeout=60)
        rig.check(*_reset_verdicts(rig))
    rig.wait(10)
    rig.wake()
    rig.expect(lambda e: e.name == "boot", 120)
    park(rig)
    rig.expect_version(2, 1800)
    rig.wait(30)
    rig.check(*_reset_verdicts(rig), *ota_verdicts(rig, 2))
