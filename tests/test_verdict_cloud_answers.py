"""The verdicts `records_published_once` and `cloud_interface_agrees` on timelines a real bench can
record: the agent's `app publish` events and `status` replies (docs/protocol.md) beside the rig's
own `particle get` / `particle call` answers. Both were added for generated defects that survived
the suite (a boot that forgot which records were published; `workload idle` answered -1 although
the app went idle; docs/selftest.md)."""
from __future__ import annotations

from otarig import verdicts as v
from otarig.timeline import Timeline

BOARD = "board:e00fce680000000000000001"


def _published(*events: tuple[str, int, bool]) -> Timeline:
    """("publish", seq, ok) or ("boot", last_seq, _) in order, one second apart."""
    tl = Timeline()
    for i, (kind, n, ok) in enumerate(events):
        if kind == "boot":
            tl.add(float(i), BOARD, "hello", {"product_version": 2})
            tl.add(float(i), BOARD, "boot", {"records_recovered": n, "last_seq": n})
        else:
            tl.add(float(i), BOARD, "app", {"action": "publish", "seq": n, "ok": ok})
    return tl


def test_publishes_that_go_on_after_a_boot_pass() -> None:
    ok = v.records_published_once(_published(("publish", 4, True), ("publish", 5, True), ("boot", 7, False),
                                             ("publish", 6, True), ("publish", 8, True)))
    assert ok.passed and ok.message.startswith("4 record(s) published")


def test_a_refused_publish_may_be_tried_again() -> None:
    assert v.records_published_once(_published(("publish", 4, False), ("publish", 4, True))).passed


def test_republishing_after_a_boot_fails_and_says_so() -> None:
    bad = v.records_published_once(_published(("publish", 34, True), ("publish", 35, True), ("boot", 35, False),
                                              ("publish", 1, True)))
    assert not bad.passed
    assert "record 1 was published after a reset when record 35 had already been published" in bad.message
    assert "publish each record once" in bad.fix


def test_the_same_record_twice_without_a_boot_fails() -> None:
    bad = v.records_published_once(_published(("publish", 9, True), ("publish", 9, True)))
    assert not bad.passed and "after a reset" not in bad.message


def test_firmware_that_reports_no_publish_is_not_judged() -> None:
    ok = v.records_published_once(_published(("boot", 3, False)))
    assert ok.passed and ok.message == "no publish reported"


def _status(tl: Timeline, t: float, **fields: object) -> None:
    tl.add(t, BOARD, "reply", {"cmd": "status", "ok": True, "product_version": 2, "records": 15, "last_seq": 15,
                               "workload": "idle", **fields})


def test_answers_that_match_the_status_pass() -> None:
    tl = Timeline()
    _status(tl, 1)
    tl.add(2, "rig", "call", {"fn": "workload", "arg": "busy", "result": 0})
    _status(tl, 3, workload="busy")
    tl.add(4, "rig", "call", {"fn": "workload", "arg": "idle", "result": 0})
    _status(tl, 5, window_open=True)
    tl.add(6, "rig", "get", {"var": "version", "value": 2})
    tl.add(7, "rig", "get", {"var": "records", "value": 15})
    tl.add(8, "rig", "get", {"var": "lastSeq", "value": 15})
    tl.add(9, "rig", "get", {"var": "windowOpen", "value": "true"})  # a bool variable, as the cloud writes it
    tl.add(10, "rig", "get", {"var": "battery", "value": "anything"})  # not a mirrored status field
    ok = v.cloud_interface_agrees(tl)
    assert ok.passed and ok.message.startswith("6 cloud answer(s)")


def test_a_call_answered_minus_one_fails() -> None:
    tl = Timeline()
    _status(tl, 1, workload="busy")
    tl.add(2, "rig", "call", {"fn": "workload", "arg": "idle", "result": -1})
    _status(tl, 3)
    bad = v.cloud_interface_agrees(tl)
    assert not bad.passed and "`workload idle` was answered -1" in bad.message and "answers 0 when done" in bad.fix


def test_a_call_answered_0_that_did_nothing_fails() -> None:
    tl = Timeline()
    _status(tl, 1)
    tl.add(2, "rig", "call", {"fn": "workload", "arg": "busy", "result": 0})
    _status(tl, 3)  # still idle
    bad = v.cloud_interface_agrees(tl)
    assert not bad.passed and "then reported workload idle" in bad.message


def test_a_variable_that_disagrees_with_the_status_fails() -> None:
    tl = Timeline()
    _status(tl, 1)
    tl.add(2, "rig", "get", {"var": "lastSeq", "value": 0})
    bad = v.cloud_interface_agrees(tl)
    assert not bad.passed and "lastSeq read 0 while the app reported last_seq 15" in bad.message


def test_a_window_variable_left_behind_the_window_fails() -> None:
    """`windowOpen` mirrors the status reply's `window_open` (added for companion:73:ba11eb7c, a
    refresh of the variable commented out, docs/selftest.md)."""
    tl = Timeline()
    _status(tl, 1, window_open=True)
    tl.add(2, "rig", "get", {"var": "windowOpen", "value": "false"})
    bad = v.cloud_interface_agrees(tl)
    assert not bad.passed and "windowOpen read false while the app reported window_open True" in bad.message


def test_nothing_read_passes_saying_so() -> None:
    tl = Timeline()
    _status(tl, 1)
    assert v.cloud_interface_agrees(tl).message == "no cloud variable or function read"


def test_five_publish_attempts_within_a_second_of_device_time_fail() -> None:
    tl = Timeline()
    for k, ms in enumerate([0, 300, 600, 900, 1200, 1500]):
        tl.add(ms / 1000, BOARD, "app", {"action": "publish", "seq": k + 1, "ok": True}, device_t=ms)
    assert v.publishes_within_rate_limit(tl).passed
    fast = Timeline()
    for k in range(5):
        fast.add(k / 10, BOARD, "app", {"action": "publish", "seq": k + 1, "ok": k < 4}, device_t=100 * k)
    bad = v.publishes_within_rate_limit(fast)
    assert not bad.passed and "5 publish attempts within 400 ms" in bad.message
