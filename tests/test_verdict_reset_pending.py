"""Verdicts over a reset Device OS announced (`reset_pending`) without an update: a MODE double
click's power-off (docs/reference/particle-ota.md §2.11), on timelines a real bench records. Added
for generated defects of the guard that only such a reset shows (docs/selftest.md): no shutdown
under the app's own hold (OtaGuard:146), updates let in once a reset is pending (OtaGuard:132)."""
from __future__ import annotations

from otarig import verdicts as v
from otarig.timeline import Timeline

BOARD = "board:e00fce680000000000000001"


def _tl(*lines: tuple[str, dict]) -> Timeline:
    tl = Timeline()
    tl.add(0.0, BOARD, "hello", {"hooks": ["workload", "window", "records", "reset_hold"]})
    tl.add(0.0, BOARD, "boot", {"last_seq": 0, "records_recovered": 0})
    for i, (kind, data) in enumerate(lines, start=1):
        tl.add(float(i), BOARD, kind, data)
    return tl


def _sys(event: str) -> tuple[str, dict]:
    return "sys", {"event": event}


def _guard(action: str, **more: int) -> tuple[str, dict]:
    return "guard", {"action": action, **more}


def _record(seq: int, persisted: bool = False) -> tuple[str, dict]:
    return "app", {"action": "record", "seq": seq, "persisted": persisted}


CLEAN = [_record(1), _guard("updates_disabled"), _sys("reset_pending"), _guard("reset_held"),
         _guard("shutdown_begin"), _guard("shutdown_complete", records=1, last_seq=1), _record(1, True),
         _guard("reset_released"), _sys("reset"), ("hello", {}), ("boot", {"last_seq": 1, "records_recovered": 1})]


def test_a_clean_power_off_passes_all_three() -> None:
    tl = _tl(*CLEAN)
    for verdict in (v.shutdown_before_reset(tl), v.no_new_work_once_reset_pending(tl),
                    v.updates_stay_disabled_once_reset_pending(tl)):
        assert verdict.passed, verdict.message
    assert "1 other announced reset" in v.shutdown_before_reset(tl).message


def test_work_taken_after_reset_pending_fails_and_names_it() -> None:
    tl = _tl(_record(1), _sys("reset_pending"), _guard("reset_held"), _record(2), _record(3),
             _guard("shutdown_begin"), _guard("shutdown_complete", records=3, last_seq=3), ("hello", {}))
    bad = v.no_new_work_once_reset_pending(tl)
    assert not bad.passed and "record 2" in bad.message and "reset_pending" in bad.message
    assert "disableReset" in bad.fix
    # the next boot starts afresh: records after it are judged against that boot's own announcement
    assert v.no_new_work_once_reset_pending(_tl(_sys("reset_pending"), ("hello", {}), _record(1))).passed


def test_updates_enabled_after_reset_pending_fails_before_it_passes() -> None:
    before = _tl(_guard("updates_enabled"), _sys("reset_pending"), _guard("shutdown_complete"), ("hello", {}))
    assert v.updates_stay_disabled_once_reset_pending(before).passed
    after = _tl(_guard("updates_disabled"), _sys("reset_pending"), _guard("updates_enabled"), ("hello", {}))
    bad = v.updates_stay_disabled_once_reset_pending(after)
    assert not bad.passed and "enabled updates" in bad.message


def test_a_power_off_without_a_shutdown_fails_shutdown_before_reset() -> None:
    unheld = _tl(_record(1), _sys("reset_pending"), _sys("reset"), ("hello", {}))
    bad = v.shutdown_before_reset(unheld)
    assert not bad.passed and "without an update" in bad.message and "nothing held it" in bad.message
    held = _tl(_sys("reset_pending"), _guard("reset_held"), _guard("reset_released"), ("hello", {}))
    assert "let it go without a clean shutdown" in v.shutdown_before_reset(held).message


def test_firmware_that_reports_neither_records_nor_guard_is_not_judged() -> None:
    tl = Timeline()
    tl.add(0.0, BOARD, "hello", {"hooks": ["workload"]})
    tl.add(1.0, BOARD, "sys", {"event": "reset_pending"})
    tl.add(2.0, BOARD, "app", {"action": "record", "seq": 1, "persisted": False})
    assert "not applicable" in v.no_new_work_once_reset_pending(tl).message
    assert "not applicable" in v.updates_stay_disabled_once_reset_pending(tl).message
