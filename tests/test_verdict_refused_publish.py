"""`refused_publishes_reach_the_cloud` on timelines a real bench records: a record whose publish
Device OS refused (`app publish` ok false) must go out before the app, in the same boot, publishes a
later one with success. Added for a generated defect that counted a refused publish as sent
(companion.cpp `publishPersisted`, docs/selftest.md)."""
from __future__ import annotations

from otarig import verdicts as v
from otarig.timeline import Timeline

DEVICE = "e00fce680000000000000001"
BOARD = f"board:{DEVICE}"
EVENT = "otarig/telemetry"


def _tl(*lines: tuple[float, str, str, dict]) -> Timeline:
    tl = Timeline()
    tl.add(0.0, BOARD, "hello", {"threaded": True})
    for t, source, kind, data in lines:
        tl.add(t, source, kind, data)
    return tl


def _publish(t: float, seq: int, ok: bool = True, event: str | None = EVENT) -> tuple[float, str, str, dict]:
    return t, BOARD, "app", {"action": "publish", "seq": seq, "ok": ok, **({"event": event} if event else {})}


def _cloud(t: float, seq: int) -> tuple[float, str, str, dict]:
    return t, "cloud", EVENT, {"coreid": DEVICE, "data": f'{{"seq":{seq}}}'}


def test_a_refused_record_tried_again_until_it_goes_out_passes() -> None:
    tl = _tl(_publish(10, 1), _cloud(10.2, 1), *[_publish(11 + k * 0.3, 2, ok=False) for k in range(5)],
             _publish(20, 2), _cloud(20.2, 2), _publish(20.3, 3), _cloud(20.5, 3))
    verdict = v.refused_publishes_reach_the_cloud(tl)
    assert verdict.passed and "5 refused publish attempt(s) of 8" in verdict.message


def test_a_refused_record_counted_as_sent_fails_and_names_it() -> None:
    tl = _tl(_publish(10, 1), _cloud(10.2, 1), _publish(11, 2, ok=False), _publish(11.3, 3, ok=False),
             _publish(30, 4), _cloud(30.2, 4))
    verdict = v.refused_publishes_reach_the_cloud(tl)
    assert not verdict.passed
    assert "record(s) 2-3 never went out" in verdict.message
    assert "refused the publish of record 2 at 11.0s" in verdict.message
    assert "published record 4 at 30.0s" in verdict.message and "the cloud received no otarig/telemetry" in verdict.message


def test_a_refused_record_whose_copy_reached_the_cloud_is_not_lost() -> None:
    """A publish WITH_ACK whose acknowledgement never came returns false though the event arrived
    (§2.8): the cloud's copy names the record, so nothing is missing."""
    tl = _tl(_publish(11, 2, ok=False), _cloud(11.4, 2), _publish(12, 3), _cloud(12.2, 3))
    assert v.refused_publishes_reach_the_cloud(tl).passed


def test_without_event_names_the_app_reports_alone_decide() -> None:
    lost = _tl(_publish(11, 2, ok=False, event=None), _publish(12, 3, event=None))
    assert not v.refused_publishes_reach_the_cloud(lost).passed
    kept = _tl(_publish(11, 2, ok=False, event=None), _publish(12, 2, event=None), _publish(13, 3, event=None))
    assert v.refused_publishes_reach_the_cloud(kept).passed


def test_records_still_waiting_at_a_reset_are_not_judged() -> None:
    """What an app does with records unpublished at a reset is its own choice; only a refused
    record passed over within the boot is a loss here."""
    tl = _tl(_publish(11, 2, ok=False), (20.0, BOARD, "hello", {"threaded": True}), _publish(25, 5), _cloud(25.2, 5))
    assert v.refused_publishes_reach_the_cloud(tl).passed


def test_a_firmware_that_reports_no_publishes_is_not_applicable() -> None:
    tl = _tl((10, BOARD, "app", {"action": "record", "seq": 1, "persisted": True}))
    verdict = v.refused_publishes_reach_the_cloud(tl)
    assert verdict.passed and verdict.message.startswith("not applicable to this firmware")
