"""The verdict `published_records_reach_the_cloud` on timelines a real bench records: the agent's
`app publish` lines and the cloud's event stream. Device OS retransmits a published event until it
is acknowledged (docs/reference/particle-ota.md §2.8), so a record the app counts as sent reaches
the cloud unless the session ended first. Added for a generated defect that published the records
under an empty event name (docs/selftest.md)."""
from __future__ import annotations

import pytest

from otarig import verdicts as v
from otarig.timeline import Timeline

DEVICE = "e00fce680000000000000001"
BOARD = f"board:{DEVICE}"
EVENT = "otarig/telemetry"


def _publish(tl: Timeline, t: float, seq: int, *, ok: bool = True, event: str | None = EVENT,
             cloud_name: str | None = EVENT) -> None:
    tl.add(t, BOARD, "app", {"action": "publish", "seq": seq, "ok": ok, **({"event": event} if event else {})})
    if ok and cloud_name is not None:
        tl.add(t + 0.4, "cloud", cloud_name, {"coreid": DEVICE, "data": f"{{\"seq\":{seq}}}"})


def _end(tl: Timeline, t: float = 1000.0) -> Timeline:
    tl.add(t, BOARD, "state", {})
    return tl


def test_records_the_cloud_received_pass() -> None:
    tl = Timeline()
    for k in range(1, 6):
        _publish(tl, 10 + k, k)
    verdict = v.published_records_reach_the_cloud(_end(tl), device_id=DEVICE)
    assert verdict.passed and "5 record(s)" in verdict.message


def test_a_copy_that_comes_minutes_late_after_an_outage_passes() -> None:
    """Retransmitted until acknowledged (§2.8): a copy may arrive long after the publish."""
    tl = Timeline()
    _publish(tl, 10, 1, cloud_name=None)
    tl.add(400, "cloud", EVENT, {"coreid": DEVICE, "data": "{\"seq\":1}"})
    assert v.published_records_reach_the_cloud(_end(tl), device_id=DEVICE).passed


def test_a_record_sent_under_another_name_fails_and_says_what_came() -> None:
    tl = Timeline()
    _publish(tl, 10, 1)
    _publish(tl, 11, 2, cloud_name="message")
    verdict = v.published_records_reach_the_cloud(_end(tl), device_id=DEVICE)
    assert not verdict.passed
    assert "record 2 published as otarig/telemetry" in verdict.message and "message" in verdict.message


def test_a_copy_lost_with_the_session_or_too_near_the_end_is_not_judged() -> None:
    silent = Timeline()
    _publish(silent, 10, 1, cloud_name=None)  # nothing more from the device: the stream may not be listening
    assert v.published_records_reach_the_cloud(_end(silent), device_id=DEVICE).passed
    cut = Timeline()
    _publish(cut, 10, 1, cloud_name=None)
    cut.add(40, BOARD, "sys", {"event": "cloud_status", "param": "disconnected"})
    assert v.published_records_reach_the_cloud(_end(cut), device_id=DEVICE).passed
    late = Timeline()
    _publish(late, 10, 1)
    _publish(late, 950, 2, cloud_name=None)
    assert v.published_records_reach_the_cloud(_end(late), device_id=DEVICE).passed


def test_refused_publishes_and_firmware_without_event_names() -> None:
    refused = Timeline()
    _publish(refused, 10, 1, ok=False)
    assert v.published_records_reach_the_cloud(_end(refused), device_id=DEVICE).passed
    unnamed = Timeline()
    _publish(unnamed, 10, 1, event=None, cloud_name=None)
    verdict = v.published_records_reach_the_cloud(_end(unnamed), device_id=DEVICE)
    assert verdict.passed and "not applicable" in verdict.message


def test_no_copy_of_the_event_at_all_fails_even_across_boots() -> None:
    """Every record published under a name the cloud never receives, while other events from the
    device do come: the boots in between excuse no single record, but the whole is lost."""
    tl = Timeline()
    for k in range(1, 4):
        _publish(tl, 10 * k, k, cloud_name="message")
        tl.add(10 * k + 5, BOARD, "hello", {"product_version": 1})
    verdict = v.published_records_reach_the_cloud(_end(tl), device_id=DEVICE)
    assert not verdict.passed and "no otarig/telemetry from the device at all" in verdict.message


def _gap(tl: Timeline, start: float, end: float) -> None:
    """What the rig records when its event stream was not connected (otarig.cloud_access)."""
    tl.add(start, "cloud", v.STREAM_GAP, {"from": start, "to": end})


@pytest.mark.parametrize("gap, judged", [((20, 50), False), ((5, 8), True)], ids=["gap-after-publish", "gap-before"])
def test_a_copy_the_cloud_sent_while_the_rigs_stream_was_down_is_not_judged(gap: tuple[float, float],
                                                                           judged: bool) -> None:
    """The SSE API does not replay (docs/reference/particle-cloud-api.md §3 "Gaps"): a record whose copy
    a gap could have hidden is not judged, and the detail names the gap; a gap that ended before the
    publish excuses nothing."""
    tl = Timeline()
    _publish(tl, 10, 1)
    _gap(tl, *gap)
    _publish(tl, 30, 2, cloud_name=None)
    _publish(tl, 60, 3)
    verdict = v.published_records_reach_the_cloud(_end(tl), device_id=DEVICE)
    if judged:
        assert not verdict.passed and "record 2" in verdict.message
    else:
        assert verdict.passed
        assert "record(s) 2 not seen" in verdict.message and "down from 20.0 s to 50.0 s: not judged" in verdict.message


def test_a_whole_event_name_missing_is_excused_only_for_records_a_gap_could_hide() -> None:
    hidden = Timeline()
    _gap(hidden, 5, 100)
    _publish(hidden, 10, 1, cloud_name=None)
    hidden.add(90, "cloud", "spark/status", {"coreid": DEVICE, "data": "online"})
    assert v.published_records_reach_the_cloud(_end(hidden), device_id=DEVICE).passed
    seen = Timeline()
    _gap(seen, 5, 20)
    _publish(seen, 10, 1, cloud_name=None)
    _publish(seen, 30, 2, cloud_name=None)
    seen.add(90, "cloud", "spark/status", {"coreid": DEVICE, "data": "online"})
    verdict = v.published_records_reach_the_cloud(_end(seen), device_id=DEVICE)
    assert not verdict.passed and "1 record(s)" in verdict.message


def test_refused_records_and_the_new_version_are_excused_only_by_a_gap() -> None:
    def refused(gap: bool) -> v.Verdict:
        tl = Timeline()
        tl.add(10, BOARD, "app", {"action": "publish", "seq": 1, "ok": False, "event": EVENT})
        if gap:
            _gap(tl, 12, 15)
        _publish(tl, 20, 2)
        return v.refused_publishes_reach_the_cloud(_end(tl), device_id=DEVICE)
    assert not refused(False).passed
    excused = refused(True)
    assert excused.passed and "record(s) 1 not seen" in excused.message and "not judged" in excused.message

    def booted(gap: bool) -> v.Verdict:
        tl = Timeline()
        tl.add(10, BOARD, "hello", {"product_version": 2}, device_t=1000)
        if gap:
            _gap(tl, 9.5, 40)
        return v.new_version_runs(_end(tl), 2, device_id=DEVICE)
    assert not booted(False).passed
    assert booted(True).passed and "not judged" in booted(True).message
