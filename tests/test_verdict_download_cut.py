"""The verdict `no_sleep_or_disconnect_during_download` on timelines a real bench can record.

A disconnect ends a transfer WITHOUT `firmware_update failed` (docs/reference/particle-ota.md §2.2,
corrected; device-os v2.3.1 `system/src/system_task.cpp` ~597-640: `cloud_disconnect()` clears
SPARK_FLASH_UPDATE and emits only cloud_status disconnecting/disconnected), so the verdict finds a cut
download by the board's `cloud_status` lines between a `begin` and its end (`complete`, `failed`, a
new `begin`, `hello`); only an event-loop error emits `failed`, before the disconnect
(`communication/src/protocol.cpp` ~487-492, `communication/src/chunked_transfer.cpp` ~361-369).
"""
from __future__ import annotations

from otarig import verdicts as v
from otarig.timeline import Timeline

BOARD = "board:e00fce680000000000000001"


def _sys(tl: Timeline, t: float, event: str, param: str | None = None) -> None:
    tl.add(t, BOARD, "sys", {"event": event, **({"param": param} if param else {})})


def _download_cut_then_retried(tl: Timeline, *, fault: bool = False, rig_cmd: str | None = None,
                               failed_first: bool = False) -> Timeline:
    _sys(tl, 10, "firmware_update", "begin")
    _sys(tl, 11, "firmware_update", "progress")
    if fault:
        tl.add(12, "fault", "antenna_off", {"by": "cmd"})
    if rig_cmd:
        tl.add(12, "rig", "command", {"cmd": rig_cmd})
    if failed_first:
        _sys(tl, 20, "firmware_update", "failed")
    _sys(tl, 20, "cloud_status", "disconnecting")
    _sys(tl, 20, "cloud_status", "disconnected")
    tl.add(20.1, "cloud", "spark/flash/status", {"data": "failed "})
    _sys(tl, 60, "cloud_status", "connected")
    _sys(tl, 70, "firmware_update", "begin")
    _sys(tl, 80, "firmware_update", "complete")
    return tl


def test_download_cut_by_the_apps_own_disconnect_fails_without_any_failed_event() -> None:
    """No `failed` arrives: the cut shows as `disconnecting` between `begin` and the next `begin`."""
    verdict = v.no_sleep_or_disconnect_during_download(_download_cut_then_retried(Timeline()))
    assert not verdict.passed and "did not cause" in verdict.message
    assert any(e.is_sys("cloud_status", "disconnecting") for e in verdict.evidence)


def test_download_cut_by_an_injected_fault_or_a_rig_command_is_excused() -> None:
    assert v.no_sleep_or_disconnect_during_download(_download_cut_then_retried(Timeline(), fault=True)).passed
    assert v.no_sleep_or_disconnect_during_download(_download_cut_then_retried(Timeline(), rig_cmd="cloud")).passed


def test_event_loop_failure_before_the_disconnect_is_not_the_apps_doing() -> None:
    """`failed` first (event-loop error), then the system's disconnect: not a cut by the app."""
    assert v.no_sleep_or_disconnect_during_download(_download_cut_then_retried(Timeline(), failed_first=True)).passed


def test_cut_download_never_retried_is_still_caught() -> None:
    tl = Timeline()
    _sys(tl, 10, "firmware_update", "begin")
    _sys(tl, 20, "cloud_status", "disconnecting")
    assert not v.no_sleep_or_disconnect_during_download(tl).passed


def test_disconnects_outside_a_download_do_not_count() -> None:
    tl = Timeline()
    _sys(tl, 5, "cloud_status", "disconnected")
    _sys(tl, 10, "firmware_update", "begin")
    _sys(tl, 30, "firmware_update", "complete")
    _sys(tl, 31, "cloud_status", "disconnecting")  # the update's reset
    tl.add(40, BOARD, "hello", {"product_version": 2})
    verdict = v.no_sleep_or_disconnect_during_download(tl)
    assert verdict.passed and "1 download" in verdict.message
