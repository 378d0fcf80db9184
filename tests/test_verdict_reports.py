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


def _begin(tl: Timeline, t: float) -> None:
    tl.add(t, BOARD, "sys", {"event": "firmware_update", "param": "begin"}, device_t=int(t * 1000))


def test_an_unforced_update_while_reported_disabled_fails() -> None:
    """Found by OtaGuard:56:d69aedf9 (`emit("")` for `updates_enabled`): Device OS let the update in,
    so updates were enabled whatever the app last said (docs/reference/particle-ota.md §2.1)."""
    tl = Timeline()
    tl.add(0, BOARD, "hello", {"product_version": 1})
    tl.add(0.1, BOARD, "guard", {"action": "updates_disabled"}, device_t=100)
    tl.add(5, BOARD, "guard", {"action": "window_open"}, device_t=5000)
    _begin(tl, 9)
    bad = v.reports_agree_with_status(tl)
    assert not bad.passed
    assert "while the app's last report was updates_disabled (at 0.1s, and no updates_enabled since its boot)" \
        in bad.message


def test_an_update_after_updates_enabled_or_forced_passes() -> None:
    enabled = Timeline()
    enabled.add(0, BOARD, "hello", {"product_version": 1})
    _guard(enabled, 0.1, "updates_disabled")
    _guard(enabled, 5, "updates_enabled")
    _begin(enabled, 9)
    ok = v.reports_agree_with_status(enabled)
    assert ok.passed and ok.message.endswith("1 update(s) began, none while it reported updates disabled")
    forced = Timeline()
    forced.add(0, BOARD, "hello", {"product_version": 1})
    _guard(forced, 0.1, "updates_disabled")
    forced.add(3, "cloud", "particle/device/updates/forced", {"data": "true"})
    _begin(forced, 9)
    assert v.reports_agree_with_status(forced).passed


def test_a_begin_whose_line_crossed_the_disable_passes() -> None:
    """Accepted while enabled, reported just after the app's disable (two threads, one port)."""
    tl = Timeline()
    tl.add(0, BOARD, "hello", {"product_version": 1})
    tl.add(5, BOARD, "guard", {"action": "updates_enabled"}, device_t=5000)
    tl.add(20, BOARD, "guard", {"action": "updates_disabled"}, device_t=20000)
    _begin(tl, 20.2)
    assert v.reports_agree_with_status(tl).passed
    _begin(tl, 40)  # a second one, long after the disable, is not
    assert not v.reports_agree_with_status(tl).passed


def test_a_firmware_that_reports_no_updates_state_is_not_judged_on_begins() -> None:
    tl = Timeline()
    tl.add(0, BOARD, "hello", {"product_version": 1})
    _guard(tl, 1, "window_open")
    _begin(tl, 2)
    assert v.reports_agree_with_status(tl).passed


def test_an_empty_or_unknown_guard_action_fails() -> None:
    for action in ("", "updates_on"):
        tl = Timeline()
        _guard(tl, 1, action)
        bad = v.reports_agree_with_status(tl)
        assert not bad.passed and f"a guard action {action!r}, which is none the protocol defines" in bad.message


def test_a_shutdown_report_without_its_records_fails() -> None:
    """A `shutdown_complete` must carry `records` and `last_seq` (docs/protocol.md `guard`): a
    generated defect that dropped them (companion.cpp `r = nullptr`, docs/selftest.md) left
    `shutdown_persists_every_record_taken` nothing to check."""
    for fields in ({}, {"records": 3}, {"last_seq": 9}, {"records": True, "last_seq": 9}):
        tl = Timeline()
        tl.add(1, BOARD, "guard", {"action": "shutdown_complete", **fields})
        bad = v.reports_agree_with_status(tl)
        assert not bad.passed and "without the records it holds and its last persisted record" in bad.message
    tl = Timeline()
    tl.add(1, BOARD, "guard", {"action": "shutdown_complete", "records": 0, "last_seq": 0})
    assert v.reports_agree_with_status(tl).passed
