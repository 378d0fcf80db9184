"""The verdict `pending_honoured_within` on timelines a real bench can record: the agent's `sys`
and `guard` lines (docs/protocol.md). It judges the `firmware_update_pending` event, not the flag:
a cloud's `updates/pending=false` at a reconnection clears System.updatesPending() while the update
still waits (docs/reference/particle-ota.md §2.1, §8.3; hil/test_pending_update.py), and a guard that
read only the flag kept its window open for nothing (OtaGuard:33:85e19beb, docs/selftest.md)."""
from __future__ import annotations

from otarig import verdicts as v
from otarig.timeline import Timeline

BOARD = "board:e00fce680000000000000001"


def _pending_while_driving_then_parked(tl: Timeline) -> None:
    """Busy, told of an update, a reconnection (its pending=false reaches no app line), then parked at 200 s."""
    tl.add(10, BOARD, "guard", {"action": "window_close"})
    tl.add(20, BOARD, "sys", {"event": "firmware_update_pending"})
    tl.add(80, BOARD, "sys", {"event": "cloud_status", "param": "disconnected"})
    tl.add(150, BOARD, "sys", {"event": "cloud_status", "param": "connected"})
    tl.add(200, BOARD, "guard", {"action": "window_open"})


def test_a_pending_update_let_in_at_the_next_window_passes() -> None:
    tl = Timeline()
    _pending_while_driving_then_parked(tl)
    tl.add(200, BOARD, "guard", {"action": "updates_enabled"})
    tl.add(208, BOARD, "sys", {"event": "firmware_update", "param": "begin"})
    assert v.pending_honoured_within(tl, 60).passed


def test_a_window_that_closes_without_the_pending_update_fails_and_says_to_keep_the_event() -> None:
    tl = Timeline()
    _pending_while_driving_then_parked(tl)
    tl.add(290, BOARD, "guard", {"action": "window_close"})
    bad = v.pending_honoured_within(tl, 60)
    assert not bad.passed
    assert "the window stayed open without the pending update beginning" in bad.message
    assert "remember the event until a transfer begins" in bad.fix


def test_a_short_window_is_not_judged() -> None:
    tl = Timeline()
    _pending_while_driving_then_parked(tl)
    tl.add(230, BOARD, "guard", {"action": "window_close"})  # 30 s open: under the 60 s allowed
    assert v.pending_honoured_within(tl, 60).passed
