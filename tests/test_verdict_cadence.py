"""The verdicts over a firmware's declared record cadence (`records_keep_declared_cadence`) and over
the cloud's copy of its published records (`cloud_copy_names_published_records`), on timelines a
real bench records: the agent's `hello`/`status` declaration, its `app` lines stamped with the
device's millis, and the cloud's event stream. Both were added for generated defects that survived
the suite (docs/selftest.md): a drive's first record taken at once, records timed from the last one
(drifting), and a telemetry payload that lost its record number. The last test reads the lines the
real TestAgent writes (host build of the device companion)."""
from __future__ import annotations

import ctypes
import json
from pathlib import Path

import pytest

from otarig import verdicts as v
from otarig.protocol import Event, LineDecoder
from otarig.sim.build import build_companion
from otarig.sim.host_runtime import CLOUD, DELAY, GPIO, LOOP_DONE, MILLIS, SERIAL, SLEEP, SYSTEM, HostApi
from otarig.timeline import Timeline

DEVICE = "e00fce680000000000000001"
BOARD = f"board:{DEVICE}"


def _hello(tl: Timeline, t: float, *, period: int | None = 1000, threaded: bool = True) -> None:
    tl.add(t, BOARD, "hello", {"proto": 1, "threaded": threaded,
                               **({"record_period_ms": period} if period is not None else {})}, device_t=10)


def _drive(tl: Timeline, start_ms: int, records: int, *, late_ms: list[int] | int = 60, period: int = 1000,
           first_seq: int = 1, idle: bool = True) -> int:
    """Busy at device time `start_ms`, `records` records (record k at start + k·period + its lateness),
    then idle half a period after the last; bench time = device time here. Returns the next number."""
    lates = late_ms if isinstance(late_ms, list) else [late_ms] * records
    tl.add(start_ms / 1000, BOARD, "app", {"action": "workload", "state": "busy"}, device_t=start_ms)
    for k in range(1, records + 1):
        at = start_ms + k * period + lates[k - 1]
        tl.add(at / 1000, BOARD, "app", {"action": "record", "seq": first_seq + k - 1, "persisted": False},
               device_t=at)
    if idle:
        end = start_ms + records * period + period // 2
        tl.add(end / 1000, BOARD, "app", {"action": "workload", "state": "idle"}, device_t=end)
    return first_seq + records


def test_records_on_the_declared_grid_pass_with_a_loop_s_lateness() -> None:
    """Each record up to one 100 ms loop pass late, and a second drive on a grid of its own."""
    tl = Timeline()
    _hello(tl, 0.01)
    seq = _drive(tl, 20_000, 15, late_ms=[(17 * k) % 110 for k in range(15)])
    _drive(tl, 60_000, 15, late_ms=0, first_seq=seq)
    ok = v.records_keep_declared_cadence(tl)
    assert ok.passed and ok.message == "2 busy stretch(es), every record on the declared grid"


def test_records_timed_from_the_last_one_drift_off_the_grid_and_fail() -> None:
    """20 ms more each period (the due time taken from the last record, not advanced on the grid):
    record 13 is 260 ms late, past a quarter period."""
    tl = Timeline()
    _hello(tl, 0.01)
    _drive(tl, 20_000, 15, late_ms=[20 * k for k in range(1, 16)])
    bad = v.records_keep_declared_cadence(tl)
    assert not bad.passed
    assert bad.message.startswith("record 13 (number 13 of the busy stretch that began at 20.0s) came 260 ms after")
    assert "advance the due time by one period per record" in bad.fix


def test_a_first_record_taken_as_the_drive_begins_fails() -> None:
    tl = Timeline()
    _hello(tl, 0.01)
    _drive(tl, 20_000, 10, late_ms=[-1000] + [0] * 9)
    bad = v.records_keep_declared_cadence(tl)
    assert not bad.passed and "came 1000 ms before its time" in bad.message


def test_a_record_missing_when_the_drive_ends_fails() -> None:
    """Nine records in a drive of 10.5 s: the tenth was due at 10 s."""
    tl = Timeline()
    _hello(tl, 0.01)
    tl.add(20, BOARD, "app", {"action": "workload", "state": "busy"}, device_t=20_000)
    for k in range(1, 10):
        tl.add(20 + k, BOARD, "app", {"action": "record", "seq": k, "persisted": False}, device_t=20_000 + k * 1000)
    tl.add(30.5, BOARD, "app", {"action": "workload", "state": "idle"}, device_t=30_500)
    bad = v.records_keep_declared_cadence(tl)
    assert not bad.passed and bad.message.startswith("record 10 of the busy stretch that began at 20.0s was due")


def test_the_declaration_in_a_status_reply_counts_for_a_board_booted_before_the_scenario() -> None:
    tl = Timeline()
    tl.add(1, BOARD, "state", {"workload": "idle"})
    tl.add(1, BOARD, "reply", {"cmd": "status", "record_period_ms": 1000}, device_t=900_000)
    _drive(tl, 901_000, 5, late_ms=[0, 0, 400, 0, 0])
    assert not v.records_keep_declared_cadence(tl).passed


def test_a_stopped_app_ends_the_stretch_and_its_work_afterwards_is_judged_from_the_next_busy() -> None:
    """A guard shutdown, a sleep the rig asked for, a download that freezes a non-threaded app
    (docs/reference/particle-ota.md §2.8): what comes after is on a grid of its own."""
    for stop, threaded in ((("guard", {"action": "shutdown_begin"}), True),
                           (("reply", {"cmd": "sleep", "ok": True}), True),
                           (("sys", {"event": "firmware_update", "param": "begin"}), False)):
        tl = Timeline()
        _hello(tl, 0.01, threaded=threaded)
        _drive(tl, 20_000, 3, late_ms=0, idle=False)
        tl.add(23.5, BOARD, stop[0], stop[1], device_t=23_500)
        tl.add(40.3, BOARD, "app", {"action": "record", "seq": 4, "persisted": False}, device_t=40_300)
        assert v.records_keep_declared_cadence(tl).passed, stop


def _stalled_by_a_reconnection(threaded: bool, after: list[int]) -> Timeline:
    """A drive of 3 records, coverage lost at 23.5 s and the cloud back at 130 s (device ms = bench
    ms), then records at `after` (device ms) and idle at 133.5 s."""
    tl = Timeline()
    _hello(tl, 0.01, threaded=threaded)
    _drive(tl, 20_000, 3, late_ms=0, idle=False)
    tl.add(23.5, BOARD, "sys", {"event": "cloud_status", "param": "disconnected"}, device_t=23_500)
    tl.add(130.0, BOARD, "sys", {"event": "cloud_status", "param": "connected"}, device_t=130_000)
    for k, at in enumerate(after, start=4):
        tl.add(at / 1000, BOARD, "app", {"action": "record", "seq": k, "persisted": False}, device_t=at)
    tl.add(133.5, BOARD, "app", {"action": "workload", "state": "idle"}, device_t=133_500)
    return tl


def test_a_non_threaded_app_held_while_its_cloud_reconnects_goes_on_from_its_first_record_after() -> None:
    """Device OS runs no loop() of a non-threaded app while its cloud connection is being made
    (docs/reference/particle-ota.md §3.1): the stretch resumes when the cloud is back, the overdue
    record may come at once and the grid goes on from it. A threaded app has no such excuse."""
    after = [130_001, 131_020, 132_060, 133_010]
    assert v.records_keep_declared_cadence(_stalled_by_a_reconnection(False, after)).passed
    bad = v.records_keep_declared_cadence(_stalled_by_a_reconnection(True, after))
    assert not bad.passed and "record 4 (number 4 of the busy stretch that began at 20.0s)" in bad.message


def test_a_burst_of_catch_up_records_or_none_after_the_hold_fails() -> None:
    """After the hold, records taken back to back to make up for it (the old grid kept), or no
    record at all for more than a period while still busy."""
    burst = v.records_keep_declared_cadence(_stalled_by_a_reconnection(False, [130_001, 130_002, 130_003]))
    assert not burst.passed and "came 999 ms before its time" in burst.message
    assert "resumed after Device OS held the non-threaded app, with its first record at 130.0s" in burst.message
    none = v.records_keep_declared_cadence(_stalled_by_a_reconnection(False, []))
    assert not none.passed
    assert "record 1 of the busy stretch that resumed after Device OS held the non-threaded app, at 130.0s" \
        in none.message


def test_a_firmware_that_declares_no_period_is_not_judged() -> None:
    tl = Timeline()
    _hello(tl, 0.01, period=None)
    _drive(tl, 20_000, 5, late_ms=[-900, 0, 0, 0, 0])
    verdict = v.records_keep_declared_cadence(tl)
    assert verdict.passed and verdict.message.startswith("not applicable to this firmware")


# -- the cloud's copy of the app's published records -----------------------------------------------

def _published(tl: Timeline, t: float, seq: int, payload: str, *, event: str | None = "otarig/telemetry",
               coreid: str = DEVICE) -> None:
    tl.add(t, BOARD, "app", {"action": "publish", "seq": seq, "ok": True, **({"event": event} if event else {})},
           device_t=int(t * 1000))
    tl.add(t + 0.2, "cloud", "otarig/telemetry", {"coreid": coreid, "data": payload})


def test_cloud_copies_that_name_their_records_pass_and_lost_ones_are_not_judged() -> None:
    tl = Timeline()
    for seq in range(1, 6):
        _published(tl, seq, seq, json.dumps({"seq": seq, "speed": 40 + seq}))
    tl.add(6, BOARD, "app", {"action": "publish", "seq": 6, "ok": True, "event": "otarig/telemetry"})  # lost
    tl.add(7, "cloud", "otarig/telemetry", {"coreid": "e00fce68000000000000ffff", "data": ""})  # another device
    tl.add(8, "cloud", "spark/status", {"coreid": DEVICE, "data": "online"})
    ok = v.cloud_copy_names_published_records(tl, device_id=DEVICE)
    assert ok.passed and ok.message.startswith("5 cloud copies of 6 reported publish(es)")


def test_an_empty_or_wrong_payload_fails() -> None:
    for payload in ("", "{\"seq\":", "{\"seq\":999}"):
        tl = Timeline()
        _published(tl, 1, 1, "{\"seq\":1}")
        _published(tl, 2, 2, payload)
        bad = v.cloud_copy_names_published_records(tl)
        assert not bad.passed, payload
        assert f"payload {payload!r}, which names no record the app reported publishing" in bad.message
        assert "buffer large enough" in bad.fix


def test_a_copy_of_a_record_published_just_before_the_timeline_began_passes() -> None:
    tl = Timeline()
    tl.add(0.5, "cloud", "otarig/telemetry", {"coreid": DEVICE, "data": "{\"seq\":40}"})
    _published(tl, 0.4, 41, "{\"seq\":41}")
    assert v.cloud_copy_names_published_records(tl).passed


def test_publishes_without_an_event_name_are_not_judged() -> None:
    tl = Timeline()
    _published(tl, 1, 1, "", event=None)
    verdict = v.cloud_copy_names_published_records(tl)
    assert verdict.passed and verdict.message.startswith("not applicable to this firmware")


# -- what the real TestAgent writes -----------------------------------------------------------------

def test_the_companion_s_agent_declares_its_period_and_names_its_published_event(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hello, a ping reply and a status reply carry `record_period_ms` (TestAgentInfo.recordPeriodMs)
    and `record_copies` (TestAgentInfo.recordCopies),
    decoded by the rig's LineDecoder as plain fields; nothing else in hello changed."""
    monkeypatch.setenv("OTARIG_CACHE", str(tmp_path / "cache"))
    lib = ctypes.CDLL(str(build_companion(1, threaded=True)))
    out = bytearray()
    rx = bytearray(b'{"cmd":"ping","id":1}\n{"cmd":"status","id":2}\n')
    now = [0]
    delays: list[int] = []

    def millis() -> int:
        now[0] += 1
        return now[0]

    def delay(ms: int) -> int:
        delays.append(ms)
        now[0] += ms
        return 1 if len(delays) >= 2 else 0

    def serial(op: int, buf, length: int) -> int:  # noqa: ANN001 - ctypes buffer
        if op == 0:
            out.extend(ctypes.string_at(buf, length))
            return length
        if op == 1:
            n = min(length, len(rx))
            ctypes.memmove(buf, bytes(rx[:n]), n)
            del rx[:n]
            return n
        return len(rx) if op == 2 else 1 if op == 3 else 0

    callbacks = (MILLIS(millis), DELAY(delay), LOOP_DONE(lambda: 1 if len(delays) >= 2 else 0), SERIAL(serial),
                 SYSTEM(lambda op, arg: 0x02030100 if op == 13 else 0), CLOUD(lambda *a: 0), SLEEP(lambda req: -1))
    eeprom = (ctypes.c_uint8 * 2047)(*([0xFF] * 2047))
    api = HostApi(*callbacks, ctypes.cast(eeprom, ctypes.POINTER(ctypes.c_uint8)), 2047, GPIO())
    lib.otarig_bind(ctypes.byref(api))
    lib.otarig_run()
    events = [e for e in LineDecoder().feed(bytes(out)) if isinstance(e, Event)]
    hello = events[0]
    assert hello.name == "hello" and hello["record_period_ms"] == 1000 and hello["proto"] == 1
    assert hello["record_copies"] == 2  # TestAgentInfo.recordCopies: RecordLog's copies A and B
    assert hello["publish_every_ms"] == 1000  # TestAgentInfo.publishEveryMs: one loop pass parked
    replies = {e["id"]: e for e in events if e.name == "reply"}
    assert replies[1]["record_period_ms"] == 1000 and replies[2]["record_period_ms"] == 1000
    assert replies[1]["record_copies"] == 2 and replies[2]["record_copies"] == 2
    assert all(len(line) + 1 <= 512 for line in bytes(out).splitlines())
