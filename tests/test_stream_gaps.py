"""The rig's event stream drops mid-scenario: the gap goes into the timeline, and a record whose
copy the Cloud sent while the stream was down is not counted as lost (the SSE API does not replay,
docs/reference/particle-cloud-api.md §3 "Gaps").

A whole simulated bench from the repository's bench file, reached over its real channels: the
companion on its pty, the Cloud API over HTTP and SSE. The stream is dropped with the simulated
Cloud's `streams_down` fault, over HTTP. The stream's reader thread is real, so the test waits on
its state (a bounded condition wait), never on a fixed sleep; the world moves only in this thread.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from otarig import verdicts as v
from otarig.cloud import EventStream
from otarig.compose import compose
from otarig.config import load
from otarig.rig import Rig
from otarig.strategy import BaselineStrategy
from otarig.timeline import Timeline

REPO = Path(__file__).resolve().parents[1]
BENCH_FILE = REPO / "bench_config.toml"
#: how long the stream stays down: several of the companion's records are published meanwhile
OUTAGE_S = 30.0


def _streams_down(rig: Rig, down: bool) -> None:
    """The simulated Cloud's fault, over its HTTP API (as `otarig sim` users set it)."""
    token = rig.parts.token() if rig.parts.token else ""
    resp = requests.put(f"{rig.parts.api_url}/otarig/v1/faults", json={"streams_down": down},
                        headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert resp.status_code == 200 and resp.json()["streams_down"] is down


def _without_gaps(tl: Timeline) -> Timeline:
    """The same timeline as a rig that records no gaps would have it."""
    out = Timeline()
    for e in tl.entries:
        if e.kind != v.STREAM_GAP:
            out.add(e.t, e.source, e.kind, e.data, e.device_t)
    return out


@contextmanager
def _busy_with_the_stream_dropped(tmp_path: Path) -> Iterator[tuple[Rig, EventStream, float]]:
    """The default bench, the app busy for 20 s, then the rig's stream dropped (and noticed):
    the rig, its stream and when it dropped; the rig is closed on the way out."""
    cfg = load(BENCH_FILE)
    rig = Rig(cfg, compose(cfg, BENCH_FILE, tmp_path, seed=1), tmp_path, 1)
    try:
        BaselineStrategy(cfg.simulation.firmware_version).transition(rig)
        rig.start_scenario()
        stream = rig.cloud.stream  # type: ignore[attr-defined]
        assert stream is not None and not stream.gaps, "the first connect is not a gap"
        rig.command("workload", state="busy")
        rig.wait(20)
        dropped = rig.now()
        _streams_down(rig, True)
        assert stream.wait_down(10)
        yield rig, stream, dropped
    finally:
        rig.close()


def test_a_dropped_stream_is_a_gap_and_the_records_sent_in_it_are_not_judged(tmp_path: Path) -> None:
    with _busy_with_the_stream_dropped(tmp_path) as (rig, stream, dropped):
        rig.wait(OUTAGE_S)
        restored = rig.now()
        _streams_down(rig, False)
        assert stream.wait_open(10)
        rig.wait(v.PUBLISH_SETTLES_S + 30)
        rig.command("workload", state="idle")
        rig.wait(5)
        tl = rig.timeline

    # (a) one gap, from the drop to the reconnection, in bench time
    gaps = v.without_superseded_gaps(tl.select(source="cloud", kind=v.STREAM_GAP))
    assert [(g.get("from"), g.get("to")) for g in gaps] == [(round(dropped, 3), round(restored, 3))]
    publishes = [e for e in tl.select(source="board", kind="app") if e.get("action") == "publish" and e.get("ok")]
    lost = [e for e in publishes if dropped < e.t < restored]
    assert lost, "the companion published records while the stream was down"
    copies = [e for e in tl.select(source="cloud") if e.kind == lost[0].get("event")]
    assert not [e for e in copies if dropped < e.t < restored], "nothing sent in the gap reached the rig"
    assert [e for e in copies if e.t > restored], "copies come again once the stream is back"

    # (b) the good companion passes, its detail naming the gap
    verdict = v.published_records_reach_the_cloud(tl, device_id=rig.dut_id)
    assert verdict.passed, verdict.explain()
    assert f"down from {dropped:.1f} s to {restored:.1f} s: not judged" in verdict.message
    assert v.records_published_once(tl).passed  # a gap loses copies, it never adds one

    # (c) the same timeline with no gap recorded: the lost copies fail it
    blind = v.published_records_reach_the_cloud(_without_gaps(tl), device_id=rig.dut_id)
    assert not blind.passed and "never received" in blind.message


def test_a_stream_still_down_when_judged_is_an_open_gap_until_it_closes(tmp_path: Path) -> None:
    """The stream drops and the scenario ends before it is back: the gap is in the timeline as open
    (no `to`: it has not ended), over the real channels; once the stream is back, the closed gap
    supersedes it, so what comes after it is judged again."""
    with _busy_with_the_stream_dropped(tmp_path) as (rig, stream, dropped):
        rig.wait(v.PUBLISH_SETTLES_S + 30)
        rig.command("workload", state="idle")
        rig.wait(5)
        judged = Timeline()
        for e in rig.timeline.entries:
            judged.add(e.t, e.source, e.kind, e.data, e.device_t)
        _streams_down(rig, False)
        assert stream.wait_open(10)
        rig.wait(5)
        after = rig.timeline

    open_gaps = judged.select(source="cloud", kind=v.STREAM_GAP)
    assert [(g.get("from"), g.get("to"), g.get("open")) for g in open_gaps] == [(round(dropped, 3), None, True)]
    assert v.stream_gap_end(open_gaps[0]) == float("inf")
    verdict = v.published_records_reach_the_cloud(judged, device_id=rig.dut_id)
    assert verdict.passed and f"down from {dropped:.1f} s and still down when judged: not judged" in verdict.message

    # back: the closed gap supersedes the open one (records after it are judged again)
    gaps = v.without_superseded_gaps(after.select(source="cloud", kind=v.STREAM_GAP))
    assert len(gaps) == 1 and gaps[0].get("from") == round(dropped, 3) and gaps[0].get("to") is not None


def _booted_v2_while_the_stream_was_down(gap_to: float | None) -> Timeline:
    """A board boots version 2 at 100 s; the rig's stream dropped at 90 s (closed at `gap_to`, or
    still down) and no cloud report of version 2 reached the rig."""
    tl = Timeline()
    tl.add(10, "board:e00f", "hello", {"product_version": 1}, 5_000)
    tl.add(90, "cloud", v.STREAM_GAP, {"from": 90.0, "to": None, "open": True})
    if gap_to is not None:
        tl.add(90, "cloud", v.STREAM_GAP, {"from": 90.0, "to": gap_to})
    tl.add(100, "board:e00f", "hello", {"product_version": 2}, 1_000)
    tl.add(400, "rig", "wait", {})
    return tl


def test_a_new_version_booted_while_the_stream_is_still_down_is_not_judged() -> None:
    """A drop not recovered from when the verdicts run: the cloud's report of the new version may
    have come meanwhile (no replay), so `new_version_runs` does not fail for its absence."""
    ok = v.new_version_runs(_booted_v2_while_the_stream_was_down(None), 2)
    assert ok.passed and "down from 90.0 s and still down when judged: not judged" in ok.message


def test_a_gap_closed_before_the_boot_excuses_nothing() -> None:
    """Once the closed entry is in, the open one no longer counts: a gap over before the boot leaves
    the missing report judged."""
    bad = v.new_version_runs(_booted_v2_while_the_stream_was_down(95.0), 2)
    assert not bad.passed and "never reported the new version" in bad.message
