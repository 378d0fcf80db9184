"""The verdict `record_count_never_drops` on timelines a real bench can record: the records count
the test agent reports at each `shutdown_complete` and `boot` (docs/protocol.md). It was added for a
generated defect that survived the suite (`stored_.count += n` turned into `%=`: a log that keeps
writing records but says it holds none, docs/selftest.md)."""
from __future__ import annotations

from otarig import verdicts as v
from otarig.timeline import Timeline

BOARD = "board:e00fce680000000000000001"


def _log(reports: list[tuple[str, int, int]]) -> Timeline:
    tl = Timeline()
    for i, (kind, count, last) in enumerate(reports):
        if kind == "shutdown":
            tl.add(10.0 * i, BOARD, "guard", {"action": "shutdown_complete", "records": count, "last_seq": last})
        else:
            tl.add(10.0 * i, BOARD, "boot", {"records_recovered": count, "last_seq": last})
    return tl


def test_a_growing_or_full_ring_passes() -> None:
    ok = v.record_count_never_drops(_log([("boot", 0, 0), ("shutdown", 5, 5), ("boot", 5, 5),
                                          ("shutdown", 31, 40), ("boot", 31, 40)]))
    assert ok.passed, ok.message


def test_a_count_of_zero_with_records_persisted_fails() -> None:
    bad = v.record_count_never_drops(_log([("boot", 0, 0), ("shutdown", 0, 7)]))
    assert not bad.passed and "record 7 is persisted" in bad.message and "count what the log" in bad.fix


def test_a_count_that_drops_fails_but_a_wiped_log_starts_again() -> None:
    bad = v.record_count_never_drops(_log([("shutdown", 12, 12), ("boot", 2, 12)]))
    assert not bad.passed and "held 12 records, then reported 2" in bad.message
    assert v.record_count_never_drops(_log([("shutdown", 12, 12), ("boot", 0, 0), ("shutdown", 3, 3)])).passed


def test_firmware_without_the_records_hook_is_not_judged() -> None:
    tl = _log([("shutdown", 0, 7)])
    tl.add(0.0, BOARD, "hello", {"hooks": ["workload", "window"]})
    assert v.record_count_never_drops(tl).passed


def test_work_after_a_shutdown_for_a_running_download_fails() -> None:
    """`app_stays_down_during_update`, on the order a board prints (a closed window mid-download)."""
    tl = Timeline()
    tl.add(1, BOARD, "guard", {"action": "shutdown_complete", "records": 5, "last_seq": 5})
    tl.add(2, BOARD, "sys", {"event": "firmware_update", "param": "begin"})
    tl.add(3, BOARD, "guard", {"action": "window_close"})
    assert v.app_stays_down_during_update(tl).passed
    tl.add(4, BOARD, "app", {"action": "record", "seq": 6, "persisted": False})
    bad = v.app_stays_down_during_update(tl)
    assert not bad.passed and "recorded 6" in bad.message and "§2.5" in bad.fix
    tl2 = Timeline()
    tl2.add(1, BOARD, "guard", {"action": "shutdown_complete", "records": 5, "last_seq": 5})
    tl2.add(2, BOARD, "guard", {"action": "window_close"})  # before any begin: the guard takes the release back
    tl2.add(3, BOARD, "app", {"action": "record", "seq": 6, "persisted": False})
    assert v.app_stays_down_during_update(tl2).passed


def test_work_while_the_reset_is_held_fails() -> None:
    tl = Timeline()
    tl.add(1, BOARD, "sys", {"event": "reset_pending"})
    tl.add(2, BOARD, "guard", {"action": "reset_held"})
    tl.add(3, BOARD, "app", {"action": "record", "seq": 9, "persisted": True})
    assert v.app_stays_down_during_update(tl).passed  # the shutdown's own batch
    tl.add(4, BOARD, "app", {"action": "record", "seq": 10, "persisted": False})
    bad = v.app_stays_down_during_update(tl)
    assert not bad.passed and "while the reset was held" in bad.message


def test_record_numbers_must_go_up_from_what_a_boot_recovered() -> None:
    tl = Timeline()
    tl.add(0, BOARD, "boot", {"records_recovered": 3, "last_seq": 3})
    for t, seq in ((1, 4), (2, 5)):
        tl.add(t, BOARD, "app", {"action": "record", "seq": seq, "persisted": False})
    tl.add(3, BOARD, "boot", {"records_recovered": 3, "last_seq": 4})  # 5 was in RAM only: taken again
    tl.add(4, BOARD, "app", {"action": "record", "seq": 5, "persisted": False})
    assert v.record_numbers_go_up(tl).passed
    tl.add(5, BOARD, "app", {"action": "record", "seq": 5, "persisted": False})
    bad = v.record_numbers_go_up(tl)
    assert not bad.passed and "record 5 was taken after record 5" in bad.message


def test_a_number_skipped_after_a_boot_fails_as_a_record_a_backend_sees_lost() -> None:
    """Found by companion:160:7c37ca53 (`nextSeq = lastSeq() + 2` at boot): docs/protocol.md `app
    record`: the first record after a boot is one more than the boot's last_seq."""
    tl = Timeline()
    tl.add(0, BOARD, "boot", {"records_recovered": 4, "last_seq": 4})
    tl.add(1, BOARD, "app", {"action": "record", "seq": 6, "persisted": False})
    bad = v.record_numbers_go_up(tl)
    assert not bad.passed
    assert ("record 6 was taken next, but the app booted with its last record 4 (boot at 0.0s): record(s) 5 were "
            "never taken, and a backend counting gaps in the numbers sees them lost") in bad.message


def test_a_number_skipped_between_two_records_fails_and_one_after_another_passes() -> None:
    tl = Timeline()
    for t, seq in ((1, 7), (2, 8), (3, 9)):  # no boot in the timeline: judged from the first one seen
        tl.add(t, BOARD, "app", {"action": "record", "seq": seq, "persisted": False})
    ok = v.record_numbers_go_up(tl)
    assert ok.passed and ok.message == "3 record(s) taken, numbered one after another"
    tl.add(4, BOARD, "app", {"action": "record", "seq": 12, "persisted": False})
    bad = v.record_numbers_go_up(tl)
    assert not bad.passed and "the record before it was 9: record(s) 10-11 were never taken" in bad.message


def _damaged_then_booted(last_after: int, count_after: int) -> Timeline:
    """Records 1..45 acknowledged (31 held), the rig damages one put, the device boots."""
    tl = Timeline()
    for seq in range(1, 46):
        tl.add(float(seq), BOARD, "app", {"action": "record", "seq": seq, "persisted": False})
        tl.add(float(seq), BOARD, "app", {"action": "record", "seq": seq, "persisted": True})
    tl.add(60.0, BOARD, "boot", {"records_recovered": 31, "last_seq": 45})
    tl.add(90.0, "fault", "eeprom_damage", {"put": 2, "reads": "wrong", "bytes": 9})
    tl.add(95.0, BOARD, "boot", {"records_recovered": count_after, "last_seq": last_after})
    return tl


def test_a_record_lost_after_injected_eeprom_damage_names_the_fault_and_the_missing_repair() -> None:
    """docs/reference/particle-ota.md §2.10 "Damaged stored data": the explanation names the fault
    and what survives it (two checked copies, the damaged one written again at boot)."""
    lost = v.no_record_lost(_damaged_then_booted(44, 31))
    assert not lost.passed
    assert "record 45 was recovered at the boot at 60.0s but the device booted with last_seq 44" in lost.message
    assert "injected fault(s) on what it wrote to EEPROM (90.0s: put 2 back read wrong)" in lost.message
    assert "write again every copy that does not check" in lost.fix


def test_a_count_that_drops_to_a_record_never_taken_says_the_log_holds_what_it_never_wrote() -> None:
    bad = v.record_count_never_drops(_damaged_then_booted(22019, 1))
    assert not bad.passed and "held 31 records, then reported 1" in bad.message
    assert "its last record, 22019, is a number it never took: the highest it took is 45" in bad.message
    assert "never a variable a failed read left unset" in bad.fix
    assert v.no_record_lost(_damaged_then_booted(22019, 1)).passed, "nothing below 45 was reported lost"


def test_a_count_above_the_last_record_number_fails_as_a_record_counted_twice() -> None:
    """Records are numbered from 1, one after another (docs/protocol.md `app record`): a log whose
    last record is 20 holds at most 20, whatever its capacity."""
    bad = v.record_count_never_drops(_log([("boot", 0, 0), ("shutdown", 20, 20), ("boot", 21, 20)]))
    assert not bad.passed
    assert "holding 21 records, but the highest it holds is record 20" in bad.message
    assert "counts a record twice" in bad.message and "count a record once" in bad.fix
    assert not v.record_count_never_drops(_log([("boot", 3, 0)])).passed, "records held, none numbered"
    assert v.record_count_never_drops(_log([("boot", 0, 0), ("shutdown", 20, 20), ("boot", 20, 20)])).passed
