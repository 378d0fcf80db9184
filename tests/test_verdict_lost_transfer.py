"""The verdict `app_resumes_after_a_lost_transfer` on timelines a real bench can record: the agent's
`app` workload/record events and the `sys` events of a download (docs/protocol.md). It was added
for a generated defect that survived the suite (the guard's `shutDown_ = false` after a lost
transfer commented out: the app stayed down for the whole drive, docs/selftest.md)."""
from __future__ import annotations

from otarig import verdicts as v
from otarig.timeline import Timeline

BOARD = "board:e00fce680000000000000001"


def _drive(tl: Timeline, start: float, seconds: int, first_seq: int) -> int:
    """Busy from `start`, one record a second; returns the next record number."""
    tl.add(start, BOARD, "app", {"action": "workload", "state": "busy"})
    for k in range(seconds):
        tl.add(start + 1 + k, BOARD, "app", {"action": "record", "seq": first_seq + k, "persisted": False})
    return first_seq + seconds


def _cut_download(tl: Timeline, at: float, *, completed: bool = False, how: str = "disconnected") -> None:
    tl.add(at, BOARD, "app", {"action": "workload", "state": "idle"})
    tl.add(at + 1, BOARD, "sys", {"event": "firmware_update", "param": "begin"})
    tl.add(at + 2, BOARD, "guard", {"action": "shutdown_complete", "records": 5, "last_seq": 5})
    if completed:
        tl.add(at + 3, BOARD, "sys", {"event": "firmware_update", "param": "complete"})
    if how == "failed":
        tl.add(at + 4, BOARD, "sys", {"event": "firmware_update", "param": "failed"})
    else:
        tl.add(at + 4, BOARD, "sys", {"event": "cloud_status", "param": "disconnected"})


def test_work_after_a_cut_download_passes() -> None:
    tl = Timeline()
    seq = _drive(tl, 0, 10, 1)
    _cut_download(tl, 20)
    _drive(tl, 30, 60, seq)
    ok = v.app_resumes_after_a_lost_transfer(tl)
    assert ok.passed and ok.message.startswith("1 lost transfer(s)")


def test_an_app_that_stays_down_after_a_cut_or_a_failed_download_fails() -> None:
    for how in ("disconnected", "failed"):
        tl = Timeline()
        _drive(tl, 0, 10, 1)
        _cut_download(tl, 20, how=how)
        tl.add(30, BOARD, "app", {"action": "workload", "state": "busy"})
        tl.add(100, BOARD, "app", {"action": "workload", "state": "idle"})
        bad = v.app_resumes_after_a_lost_transfer(tl)
        assert not bad.passed, how
        assert "took no record for 70 s while busy" in bad.message and "one at least every 1 s" in bad.message
        assert "hold updates again" in bad.fix


def test_a_short_silence_or_a_completed_download_is_not_a_failure() -> None:
    tl = Timeline()
    _drive(tl, 0, 10, 1)
    _cut_download(tl, 20)
    tl.add(30, BOARD, "app", {"action": "workload", "state": "busy"})
    tl.add(50, BOARD, "app", {"action": "workload", "state": "idle"})  # 20 s: under the 30 s floor
    assert v.app_resumes_after_a_lost_transfer(tl).passed
    tl2 = Timeline()
    _drive(tl2, 0, 10, 1)
    _cut_download(tl2, 20, completed=True)  # the update is in; the app stays down until the reset
    tl2.add(30, BOARD, "app", {"action": "workload", "state": "busy"})
    tl2.add(200, BOARD, "app", {"action": "workload", "state": "idle"})
    assert v.app_resumes_after_a_lost_transfer(tl2).passed


def test_without_the_apps_own_cadence_it_is_not_judged() -> None:
    tl = Timeline()
    _cut_download(tl, 20)
    tl.add(30, BOARD, "app", {"action": "workload", "state": "busy"})
    tl.add(300, BOARD, "app", {"action": "workload", "state": "idle"})
    ok = v.app_resumes_after_a_lost_transfer(tl)
    assert ok.passed and ok.message.startswith("not judged")


def test_a_non_threaded_app_is_not_silent_while_device_os_holds_it() -> None:
    """A non-threaded app runs no loop() until its cloud connection is made again
    (docs/reference/particle-ota.md §3.1): the silence after a cut counts from the reconnection.
    A threaded app taking no record for as long fails."""
    for threaded in (False, True):
        tl = Timeline()
        tl.add(0, BOARD, "hello", {"proto": 1, "threaded": threaded})
        seq = _drive(tl, 1, 10, 1)
        tl.add(12, BOARD, "sys", {"event": "firmware_update", "param": "begin"})
        tl.add(20, BOARD, "sys", {"event": "cloud_status", "param": "disconnected"})
        tl.add(200, BOARD, "sys", {"event": "cloud_status", "param": "connected"})
        for k in range(5):
            tl.add(201 + k, BOARD, "app", {"action": "record", "seq": seq + k, "persisted": False})
        verdict = v.app_resumes_after_a_lost_transfer(tl)
        assert verdict.passed is (not threaded), (threaded, verdict.message)
