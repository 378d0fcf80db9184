"""`publishing_keeps_up` on timelines a real bench records: an app that declares how often it
publishes (hello `publish_every_ms`, TestAgentInfo.publishEveryMs) must keep trying while a persisted
record waits, it runs and the cloud is connected. Added for generated defects that published once a
boot and never again (companion.cpp `publishPersisted`, docs/selftest.md)."""
from __future__ import annotations

from otarig import verdicts as v
from otarig.timeline import Timeline

BOARD = "board:e00fce680000000000000001"


def _tl(*lines: tuple[float, str, dict], every_ms: int | None = 1000) -> Timeline:
    tl = Timeline()
    tl.add(0.0, BOARD, "hello", {"threaded": True, **({"publish_every_ms": every_ms} if every_ms else {})})
    tl.add(1.0, BOARD, "sys", {"event": "cloud_status", "param": "connected"})
    for t, kind, data in lines:
        tl.add(t, BOARD, kind, data)
    return tl


def _persisted(t: float, seq: int) -> tuple[float, str, dict]:
    return t, "app", {"action": "record", "seq": seq, "persisted": True}


def _publish(t: float, seq: int, ok: bool = True) -> tuple[float, str, dict]:
    return t, "app", {"action": "publish", "seq": seq, "ok": ok}


def test_publishing_each_record_soon_passes() -> None:
    tl = _tl(_persisted(10, 1), _publish(10.5, 1), _persisted(11, 2), _publish(12, 2), (60, "log", {"msg": "end"}))
    verdict = v.publishing_keeps_up(tl)
    assert verdict.passed and "2 wait(s)" in verdict.message


def test_publishing_once_then_never_again_fails_and_names_the_record() -> None:
    tl = _tl(_persisted(10, 1), _publish(10.5, 1), _persisted(11, 2), _persisted(12, 3), (30, "log", {"msg": "x"}))
    verdict = v.publishing_keeps_up(tl)
    assert not verdict.passed
    assert "record 2 (persisted; 2 waiting) was not published" in verdict.message


def test_a_stall_at_the_end_of_the_timeline_counts() -> None:
    tl = _tl(_persisted(10, 1), (11, "log", {"msg": "quiet"}), (40, "log", {"msg": "still quiet"}))
    assert not v.publishing_keeps_up(tl).passed


def test_refused_attempts_are_progress() -> None:
    """Device OS may refuse a publish (rate limit, §2.8): trying again in time is keeping up."""
    tl = _tl(_persisted(10, 1), *[_publish(10.0 + 2 * k, 1, ok=False) for k in range(1, 10)], _publish(30, 1),
             (31, "log", {"msg": "end"}))
    assert v.publishing_keeps_up(tl).passed


def test_no_wait_is_judged_while_disconnected_shut_down_or_asleep() -> None:
    offline = _tl(_persisted(10, 1), (10.5, "sys", {"event": "cloud_status", "param": "disconnected"}),
                  (200, "log", {"msg": "offline long"}))
    assert v.publishing_keeps_up(offline).passed
    back = _tl(_persisted(10, 1), (10.5, "sys", {"event": "cloud_status", "param": "disconnected"}),
               (100, "sys", {"event": "cloud_status", "param": "connected"}), _publish(101, 1), (200, "log", {}))
    assert v.publishing_keeps_up(back).passed
    shut = _tl((5, "sys", {"event": "firmware_update_pending"}), _persisted(10, 1),
               (10.5, "guard", {"action": "shutdown_begin"}), (200, "log", {}))
    assert v.publishing_keeps_up(shut).passed
    asleep = _tl(_persisted(10, 1), (10.5, "reply", {"cmd": "sleep", "ok": True}), (200, "log", {}))
    assert v.publishing_keeps_up(asleep).passed


def test_a_firmware_that_declares_no_period_is_not_applicable() -> None:
    tl = _tl(_persisted(10, 1), (60, "log", {}), every_ms=None)
    verdict = v.publishing_keeps_up(tl)
    assert verdict.passed and verdict.message.startswith("not applicable to this firmware")


def test_a_shutdown_with_no_update_in_view_stops_no_judging() -> None:
    """A shutdown is an excuse only while an update is in view: a pending notice, a begin or a
    reset_pending since the last transfer ended without one, or the rig's release of a version the
    board does not run (found by a generated defect whose stale pending latch shut the app down at
    every idle window after a lost transfer, docs/selftest.md)."""
    bare = _tl(_persisted(10, 1), (10.5, "guard", {"action": "shutdown_begin"}), (200, "log", {}))
    bad = v.publishing_keeps_up(bare)
    assert not bad.passed and "record 1 (persisted; 1 waiting) was not published" in bad.message
    lost = _tl((5, "sys", {"event": "firmware_update_pending"}), (6, "sys", {"event": "firmware_update", "param": "begin"}),
               (8, "sys", {"event": "cloud_status", "param": "disconnected"}),
               (9, "sys", {"event": "cloud_status", "param": "connected"}), _persisted(10, 1),
               (10.5, "guard", {"action": "shutdown_begin"}), (200, "log", {}))
    assert not v.publishing_keeps_up(lost).passed, "the lost transfer ended what was in view"
    for rig_line, judged in ((("release", {"version": 2}), False), (("release", {"version": 1}), True),
                             (("force", {"forced": True}), False), (("lock", {"version": None}), True)):
        tl = _tl(_persisted(10, 1), (10.5, "guard", {"action": "shutdown_begin"}), (200, "log", {}))
        tl.entries[0].data["product_version"] = 1
        tl.add(9, "rig", *rig_line)
        tl.entries.sort(key=lambda e: e.t)
        assert v.publishing_keeps_up(tl).passed is not judged, rig_line
