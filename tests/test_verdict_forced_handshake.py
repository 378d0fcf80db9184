"""The verdict `no_forced_handshake_during_update` on timelines a real bench can record.

A firmware's periodic forced handshake (`handshake_forced`: session/end, disconnect, connect;
docs/reference/particle-ota.md §1.3, §3.3) must wait while a download runs (its disconnect drops
the transfer without a `failed`, §2.2) and while a reset is pending (the device still runs the old
version, so the handshake's check delivers the image again, §7.7, §7.8.1).
"""
from __future__ import annotations

from otarig import verdicts as v
from otarig.timeline import Timeline

BOARD = "board:e00fce680000000000000001"


def _sys(tl: Timeline, t: float, event: str, param: str | None = None) -> None:
    tl.add(t, BOARD, "sys", {"event": event, **({"param": param} if param else {})})


def _forced(tl: Timeline, t: float) -> None:
    tl.add(t, BOARD, "guard", {"action": "handshake_forced"})


def _update(tl: Timeline, *, forced_at: float | None = None) -> Timeline:
    """A daily handshake, then an update: begin at 100, complete at 160, reset_pending, reboot at 165."""
    _forced(tl, 10)
    _sys(tl, 11, "cloud_status", "disconnecting")
    _sys(tl, 12, "cloud_status", "disconnected")
    _sys(tl, 15, "cloud_status", "connected")
    _sys(tl, 100, "firmware_update", "begin")
    _sys(tl, 160, "firmware_update", "complete")
    _sys(tl, 161, "reset_pending")
    _sys(tl, 162, "reset")
    tl.add(165, BOARD, "hello", {"product_version": 2})
    if forced_at is not None:
        _forced(tl, forced_at)
    return tl


def test_handshakes_outside_updates_pass() -> None:
    verdict = v.no_forced_handshake_during_update(_update(Timeline(), forced_at=200))
    assert verdict.passed and "2 forced handshake(s)" in verdict.message


def test_a_handshake_forced_mid_download_fails() -> None:
    verdict = v.no_forced_handshake_during_update(_update(Timeline(), forced_at=122))
    assert not verdict.passed and "22.0 s after `firmware_update begin`" in verdict.message
    assert any(e.is_sys("firmware_update", "begin") for e in verdict.evidence)


def test_a_handshake_forced_with_a_reset_pending_fails() -> None:
    verdict = v.no_forced_handshake_during_update(_update(Timeline(), forced_at=161.5))
    assert not verdict.passed and "reset_pending" in verdict.message


def test_the_cut_a_forced_handshake_made_counts_as_during_the_download() -> None:
    """Reported after the disconnect it caused, before the next connection: still mid-download."""
    tl = Timeline()
    _sys(tl, 100, "firmware_update", "begin")
    _sys(tl, 120, "cloud_status", "disconnecting")
    _sys(tl, 121, "cloud_status", "disconnected")
    _forced(tl, 121.5)
    _sys(tl, 125, "cloud_status", "connecting")
    assert not v.no_forced_handshake_during_update(tl).passed


def test_a_handshake_after_a_download_lost_to_coverage_passes() -> None:
    """Once the device reconnected after a cut, the transfer is over; a forced handshake may follow."""
    tl = Timeline()
    _sys(tl, 100, "firmware_update", "begin")
    _sys(tl, 120, "cloud_status", "disconnected")
    _sys(tl, 300, "cloud_status", "connected")
    _forced(tl, 400)
    assert v.no_forced_handshake_during_update(tl).passed


def test_not_applicable_without_forced_handshake_reports() -> None:
    tl = Timeline()
    _sys(tl, 100, "firmware_update", "begin")
    _sys(tl, 120, "cloud_status", "disconnected")
    verdict = v.no_forced_handshake_during_update(tl)
    assert verdict.passed and "not applicable" in verdict.message


def _guard(tl: Timeline, t: float, action: str) -> None:
    tl.add(t, BOARD, "guard", {"action": action})


def _let_in(*, forced_at: float, updates_enabled_without_pending: bool = False) -> Timeline:
    """A pending update the app lets in at 90 (`updates_enabled`); the cloud begins it at 100."""
    tl = Timeline()
    if not updates_enabled_without_pending:
        _sys(tl, 50, "firmware_update_pending")
    _guard(tl, 90, "updates_enabled")
    if forced_at < 100:
        _forced(tl, forced_at)
    _sys(tl, 100, "firmware_update", "begin")
    _sys(tl, 160, "firmware_update", "complete")
    if forced_at >= 100:
        _forced(tl, forced_at)
    return tl


def test_a_handshake_forced_after_letting_a_pending_update_in_fails() -> None:
    """Between enableUpdates() for a pending update and its begin, the self-disconnect only puts the
    update off to the reconnection (docs/reference/particle-ota.md §7.8.1)."""
    verdict = v.no_forced_handshake_during_update(_let_in(forced_at=90.2))
    assert not verdict.passed and "let the pending update in" in verdict.message
    assert any(e.is_guard("updates_enabled") for e in verdict.evidence)


def test_a_handshake_forced_with_updates_enabled_and_nothing_pending_passes() -> None:
    """An app that keeps updates enabled while idle forces its handshake to be offered Standard
    releases: nothing was pending, so nothing is put off."""
    assert v.no_forced_handshake_during_update(_let_in(forced_at=95, updates_enabled_without_pending=True)).passed


def test_a_handshake_forced_after_the_app_took_a_let_in_update_back_passes() -> None:
    tl = Timeline()
    _sys(tl, 50, "firmware_update_pending")
    _guard(tl, 90, "updates_enabled")
    _guard(tl, 92, "updates_disabled")
    _forced(tl, 95)
    assert v.no_forced_handshake_during_update(tl).passed


def _connected_then_forced(tl: Timeline, *, cut: bool = True, back: bool = True) -> Timeline:
    _sys(tl, 5, "cloud_status", "connected")
    _forced(tl, 10)
    if cut:
        _sys(tl, 11, "cloud_status", "disconnecting")
        _sys(tl, 12, "cloud_status", "disconnected")
    if back:
        _sys(tl, 13, "cloud_status", "connecting")
        _sys(tl, 16, "cloud_status", "connected")
    tl.add(1000, BOARD, "state", {})
    return tl


def test_a_forced_handshake_that_disconnects_and_reconnects_takes_effect() -> None:
    verdict = v.forced_handshakes_take_effect(_connected_then_forced(Timeline()))
    assert verdict.passed and "1 forced handshake(s) judged" in verdict.message


def test_a_forced_handshake_whose_disconnect_never_happens_fails() -> None:
    """A Particle.connect() before the system thread acted on the disconnect sets the flag again
    (docs/reference/particle-ota.md §3.3): the session stays up."""
    verdict = v.forced_handshakes_take_effect(_connected_then_forced(Timeline(), cut=False, back=False))
    assert not verdict.passed and "stayed connected" in verdict.message


def test_a_forced_handshake_that_never_reconnects_fails() -> None:
    verdict = v.forced_handshakes_take_effect(_connected_then_forced(Timeline(), back=False))
    assert not verdict.passed and "did not connect again" in verdict.message


def test_a_forced_handshake_near_the_record_end_or_before_a_boot_is_not_judged() -> None:
    near_end = Timeline()
    _sys(near_end, 5, "cloud_status", "connected")
    _forced(near_end, 10)
    assert v.forced_handshakes_take_effect(near_end).passed
    boot = Timeline()
    _sys(boot, 5, "cloud_status", "connected")
    _forced(boot, 10)
    boot.add(20, BOARD, "hello", {"product_version": 1})
    boot.add(1000, BOARD, "state", {})
    assert v.forced_handshakes_take_effect(boot).passed
