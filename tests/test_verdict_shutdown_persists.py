"""`shutdown_persists_every_record_taken` on timelines a real bench records: a clean shutdown leaves
no record in RAM and reports each one it persisted. Added for generated defects the suite missed
(docs/selftest.md): a shutdown that skipped the open transaction (companion.cpp `persistBatch()`
left out of the shutdown callback) and a transaction that stopped acknowledging its records."""
from __future__ import annotations

from otarig import verdicts as v
from otarig.timeline import Timeline

BOARD = "board:e00fce680000000000000001"


def _tl(*lines: tuple[str, dict]) -> Timeline:
    tl = Timeline()
    tl.add(0.0, BOARD, "hello", {"hooks": ["workload", "window", "records", "reset_hold"]})
    for i, (kind, data) in enumerate(lines, start=1):
        tl.add(float(i), BOARD, kind, data)
    return tl


def _record(seq: int, persisted: bool = False) -> tuple[str, dict]:
    return "app", {"action": "record", "seq": seq, "persisted": persisted}


def _shutdown(last_seq: int) -> list[tuple[str, dict]]:
    return [("guard", {"action": "shutdown_begin"}),
            ("guard", {"action": "shutdown_complete", "records": last_seq, "last_seq": last_seq})]


TAKEN = [_record(1), _record(2), _record(3), _record(1, True), _record(2, True), _record(3, True), _record(4)]


def test_a_shutdown_that_persists_the_open_record_passes() -> None:
    tl = _tl(*TAKEN, ("guard", {"action": "shutdown_begin"}), _record(4, True),
             ("guard", {"action": "shutdown_complete", "records": 4, "last_seq": 4}), ("hello", {}))
    verdict = v.shutdown_persists_every_record_taken(tl)
    assert verdict.passed, verdict.message
    assert "1 shutdown" in verdict.message


def test_acknowledgements_right_after_the_shutdown_report_count() -> None:
    """Some apps report the shutdown, then acknowledge the records: judged at the next boot."""
    tl = _tl(*TAKEN, *_shutdown(4), _record(4, True), ("hello", {}))
    assert v.shutdown_persists_every_record_taken(tl).passed


def test_a_record_still_in_ram_at_the_shutdown_fails_and_names_it() -> None:
    tl = _tl(*TAKEN, _record(5), *_shutdown(3), ("hello", {}))
    verdict = v.shutdown_persists_every_record_taken(tl)
    assert not verdict.passed
    assert "record(s) 4-5" in verdict.message and "still in RAM" in verdict.message
    assert "persist every record taken" in (verdict.fix or verdict.message)


def test_records_persisted_but_never_acknowledged_fail_at_the_next_boot() -> None:
    tl = _tl(_record(1), _record(2), _record(3), *_shutdown(3), ("hello", {}))
    verdict = v.shutdown_persists_every_record_taken(tl)
    assert not verdict.passed
    assert "never reported record(s) 1-3 persisted" in verdict.message


def test_a_new_boot_starts_afresh() -> None:
    """Records taken before a reset the app never shut down for are other verdicts' business."""
    tl = _tl(_record(1), ("hello", {}), _record(2), _record(2, True), *_shutdown(2))
    assert v.shutdown_persists_every_record_taken(tl).passed


def test_without_a_shutdown_report_it_is_not_applicable() -> None:
    verdict = v.shutdown_persists_every_record_taken(_tl(*TAKEN))
    assert verdict.passed and verdict.message.startswith("not applicable to this firmware")
    bare = _tl(*TAKEN, ("guard", {"action": "shutdown_complete"}))
    assert v.shutdown_persists_every_record_taken(bare).message.startswith("not applicable")
