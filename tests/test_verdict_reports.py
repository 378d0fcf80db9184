"""The verdict `reports_agree_with_status`: the guard's reported decisions against the agent's
`status` replies, in the board's own order (docs/protocol.md `guard`, `reply`). It was added for a
generated defect that survived the suite (OtaGuard's `emit("updates_disabled")` commented out: the
decision was taken, the report that the window verdicts and the plot rest on was gone,
docs/selftest.md)."""
from __future__ import annotations

from otarig import verdicts as v
from otarig.timeline import Timeline

BOARD = "board:e00fce680000000000000001"


def _status(tl: Timeline, t: float, *, updates: bool, window: bool) -> None:
    tl.add(t, BOARD, "reply", {"cmd": "status", "ok": True, "updates_enabled": updates, "window_open": window})


def _guard(tl: Timeline, t: float, action: str) -> None:
    tl.add(t, BOARD, "guard", {"action": action})


def test_reports_that_match_the_status_pass() -> None:
    tl = Timeline()
    _status(tl, 0, updates=False, window=False)  # before any report: nothing to compare
    _guard(tl, 1, "window_open")
    _guard(tl, 1, "updates_enabled")
    _status(tl, 2, updates=True, window=True)
    _guard(tl, 3, "window_close")
    _guard(tl, 3, "updates_disabled")
    _status(tl, 4, updates=False, window=False)
    ok = v.reports_agree_with_status(tl)
    assert ok.passed and ok.message.startswith("4 status field(s)")


def test_a_missing_report_fails_naming_the_last_one() -> None:
    tl = Timeline()
    _guard(tl, 1, "updates_enabled")
    _guard(tl, 3, "window_close")  # updates_disabled never reported
    _status(tl, 4, updates=False, window=False)
    bad = v.reports_agree_with_status(tl)
    assert not bad.passed
    assert "last reported updates_enabled (at 1.0s) but its status says updates_enabled False" in bad.message


def test_a_boot_forgets_the_reports_before_it() -> None:
    tl = Timeline()
    _guard(tl, 1, "updates_enabled")
    tl.add(2, BOARD, "hello", {"product_version": 2})
    _status(tl, 3, updates=False, window=False)
    assert v.reports_agree_with_status(tl).passed


def _download_with(tl: Timeline, threaded: bool, during: str | None) -> Timeline:
    tl.add(0, BOARD, "hello", {"product_version": 1, "threaded": threaded})
    tl.add(1, BOARD, "sys", {"event": "firmware_update", "param": "begin"})
    tl.add(2, BOARD, "sys", {"event": "firmware_update", "param": "progress"})
    if during:
        tl.add(3, BOARD, "app", {"action": during, "seq": 7, "persisted": False})
    tl.add(4, BOARD, "sys", {"event": "firmware_update", "param": "complete"})
    tl.add(5, BOARD, "guard", {"action": "shutdown_complete", "records": 7, "last_seq": 7})
    return tl


def test_a_non_threaded_claim_with_an_app_running_mid_download_fails() -> None:
    bad = v.reported_threading_holds(_download_with(Timeline(), False, "record"))
    assert not bad.passed and "says it is not threaded, yet its app ran during a download (app record)" in bad.message
    ok = v.reported_threading_holds(_download_with(Timeline(), False, None))
    assert ok.passed and ok.message.startswith("1 download(s)")
    assert v.reported_threading_holds(_download_with(Timeline(), True, "record")).message.startswith("not judged")
