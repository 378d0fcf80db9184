"""The verdicts `record_count_matches_read_back` and `startup_does_not_grow` on timelines a real bench
can record: the agent's `hello`, `boot`, `app record` lines and its `read_back` replies
(docs/protocol.md). They were added for two generated defects a timeline could not show before: a
count that claims a record lost in every copy (RecordLog:41:039b0c0b) and a boot repair that walks
every record number ever taken (RecordLog:59:3d890863), docs/selftest.md."""
from __future__ import annotations

import pytest

from otarig import verdicts as v
from otarig.timeline import Timeline

BOARD = "board:e00fce680000000000000001"
HOOKS = ["workload", "window", "records", "reset_hold", "read_back"]


def _hello(tl: Timeline, t: float, *, hooks: list[str] = HOOKS, mode: str = "SEMI_AUTOMATIC",
           threaded: bool = True, version: int = 1) -> None:
    tl.add(t, BOARD, "hello", {"proto": 1, "hooks": hooks, "mode": mode, "threaded": threaded,
                               "product_version": version})


def _taken(tl: Timeline, t: float, last: int) -> None:
    for seq in range(1, last + 1):
        tl.add(t, BOARD, "app", {"action": "record", "seq": seq, "persisted": True})


def _read_back(tl: Timeline, t: float, **keys: object) -> None:
    tl.add(t, BOARD, "reply", {"cmd": "read_back", "ok": True, "in_order": True, **keys})


def test_a_count_that_matches_the_records_read_passes() -> None:
    tl = Timeline()
    _hello(tl, 0)
    _taken(tl, 10, 40)
    _read_back(tl, 50, readable=30, first_seq=10, last_seq=40, records=30)
    assert v.record_count_matches_read_back(tl).passed


def test_a_count_that_claims_a_record_no_copy_holds_fails_and_names_both_figures() -> None:
    tl = Timeline()
    _hello(tl, 0)
    _taken(tl, 10, 55)
    tl.add(60, "fault", "eeprom_damage", {"put": 3, "reads": "wrong"})
    _read_back(tl, 70, readable=30, first_seq=25, last_seq=55, records=31)
    bad = v.record_count_matches_read_back(tl)
    assert not bad.passed
    assert "says it holds 31 record(s), but reads back 30 (records 25-55)" in bad.message
    assert "injected fault" in bad.message
    assert "recount from the copies" in bad.fix


@pytest.mark.parametrize("keys, said", [
    ({"readable": 3, "first_seq": 1, "last_seq": 2, "records": 3, "in_order": False}, "out of order"),
    ({"readable": 3, "first_seq": 8, "last_seq": 12, "records": 3}, "never wrote"),
])
def test_a_read_back_out_of_order_or_of_a_number_never_taken_fails(keys: dict, said: str) -> None:
    tl = Timeline()
    _hello(tl, 0)
    _taken(tl, 10, 10)
    _read_back(tl, 20, **keys)
    bad = v.record_count_matches_read_back(tl)
    assert not bad.passed and said in bad.message


def test_a_firmware_without_the_read_back_hook_is_not_judged() -> None:
    tl = Timeline()
    _hello(tl, 0, hooks=["workload", "records"])
    assert "not applicable" in v.record_count_matches_read_back(tl).message


def _boot(tl: Timeline, t: float, begun_ms: int, last_seq: int) -> None:
    tl.add(t, BOARD, "boot", {"begun_ms": begun_ms, "last_seq": last_seq, "records_recovered": 31})


def test_a_start_as_quick_after_a_long_history_passes() -> None:
    tl = Timeline()
    _hello(tl, 0)
    _boot(tl, 0, 80, 0)
    _hello(tl, 10_000)
    _boot(tl, 10_000, 1_900, 10_800)  # within the quickest + 2 s (a page swap at boot)
    ok = v.startup_does_not_grow(tl)
    assert ok.passed and "1.9 s" in ok.message


def test_a_start_that_grows_with_the_records_taken_fails_and_says_what_to_bound() -> None:
    tl = Timeline()
    _hello(tl, 0)
    _boot(tl, 0, 80, 0)
    _hello(tl, 10_000)
    _boot(tl, 10_000, 7_400, 10_800)
    bad = v.startup_does_not_grow(tl)
    assert not bad.passed
    assert "took 7.4 s to start" in bad.message and "records up to 10800" in bad.message
    assert "0.1 s at the quickest boot of version 1" in bad.message
    assert "capacity" in bad.fix


def test_each_version_is_held_to_its_own_quickest_start() -> None:
    tl = Timeline()
    _hello(tl, 0, version=1)
    _boot(tl, 0, 80, 0)
    _hello(tl, 100, version=2)
    _boot(tl, 100, 5_000, 40)  # a new version that starts slower, at every boot alike
    _hello(tl, 200, version=2)
    _boot(tl, 200, 5_100, 80)
    assert v.startup_does_not_grow(tl).passed


def test_an_automatic_non_threaded_start_times_the_connection_and_is_left_out() -> None:
    tl = Timeline()
    _hello(tl, 0, mode="AUTOMATIC", threaded=False)
    _boot(tl, 0, 8_000, 0)
    _hello(tl, 100, mode="AUTOMATIC", threaded=False)
    _boot(tl, 100, 45_000, 40)
    assert "not applicable" in v.startup_does_not_grow(tl).message
