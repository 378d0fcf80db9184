"""The verdict `release_to_update_within` when a Standard release never began: it says whether the
app's forced handshakes were full ones. A disconnect and reconnect without `spark/device/session/end`
resumes the session the cloud still has, so no Standard-release check comes of it
(docs/reference/particle-ota.md §1.3, §3.3, §8.1); it was sharpened for a generated defect that
dropped that publish (OtaGuard.cpp:180, docs/selftest.md)."""
from __future__ import annotations

from otarig import verdicts as v
from otarig.timeline import Timeline

BOARD = "board:e00fce680000000000000001"


def _released(tl: Timeline) -> None:
    tl.add(0, "rig", "release", {"version": 2})


def _forced(tl: Timeline, t: float, *connections: str) -> None:
    """A `handshake_forced` report, then the `cloud_status` of each connection after it."""
    tl.add(t, BOARD, "guard", {"action": "handshake_forced"})
    for k, param in enumerate(connections, 1):
        tl.add(t + 2 * k, BOARD, "sys", {"event": "cloud_status", "param": param})


def test_forced_handshakes_that_only_resumed_are_named() -> None:
    tl = Timeline()
    _released(tl)
    _forced(tl, 86400, "session_resume", "connected")
    tl.add(93600, "psu", "sample", {"volts": 5.0})
    bad = v.release_to_update_within(tl, 2, 90000)
    assert not bad.passed
    assert "1 forced handshake(s) since the release (first at 86400.0s)" in bad.message
    assert "no full handshake" in bad.message and "session/end` before" in bad.fix


def test_a_forced_handshake_that_was_full_is_not_blamed() -> None:
    # the good build: the resume is refused (the cloud dropped the session) and a full handshake follows
    tl = Timeline()
    _released(tl)
    _forced(tl, 86400, "session_resume", "disconnected", "handshake", "connected")
    tl.add(93600, "psu", "sample", {"volts": 5.0})
    bad = v.release_to_update_within(tl, 2, 90000)
    assert not bad.passed and "forced handshake" not in bad.message
    assert "no download began" in bad.message and "once a day" in bad.fix


def test_no_forced_handshake_keeps_the_general_advice() -> None:
    tl = Timeline()
    _released(tl)
    tl.add(93600, "psu", "sample", {"volts": 5.0})
    bad = v.release_to_update_within(tl, 2, 90000)
    assert not bad.passed and "forced handshake" not in bad.message and "once a day" in bad.fix
