"""The reporting side of the certification suite: timeline.png, the JSON record, the HTML report."""
from __future__ import annotations

import base64
import io
import json
import math
import random
import re
import struct
from pathlib import Path

import pytest
from rich.console import Console

from otarig import plot, record, report
from otarig.timeline import Entry, Timeline
from otarig.verdicts import Verdict

BOARD = "e00fce68a1b2c3d4e5f60718"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- synthetic timelines


def ota_story(tl: Timeline, *, t0: float = 0.0, board: str = BOARD, old: int = 1, new: int = 2,
              psu: bool = True, psu_dt: float = 0.1, rng: random.Random | None = None,
              stretch: float = 1.0, progress_step: float = 0.25) -> float:
    """An Intelligent release while busy → pending → download in the idle window, cut by a power
    cut, retried, completed, clean shutdown, reset into `new`, then a STOP sleep and a link outage.
    `stretch` scales every duration; `progress_step` is the (unstretched) spacing of progress events. Returns the bench time at which the story ends."""
    rng = rng or random.Random(1)
    out = Timeline()   # built here, merged into `tl` in time order at the end (no O(n²) inserts)
    src = f"board:{board}"
    ms = [0]

    def at(t: float) -> float:
        return t0 + t * stretch

    def dev(t: float, kind: str, data: dict) -> None:
        out.add(at(t), src, kind, data, device_t=int(at(t) * 1000) - ms[0])

    def cloud(t: float, name: str, data: str, version: int | None = None) -> None:
        d = {"data": data, "coreid": board}
        if version is not None:
            d["version"] = version
        out.add(at(t), "cloud", name, d)

    out.add(at(0.5), src, "port_back")
    dev(1.0, "hello", {"proto": 1, "agent": "otarig-companion", "product_version": old, "mode": "SEMI_AUTOMATIC"})
    dev(1.01, "boot", {"reset_reason": "power_down", "records_recovered": 0, "last_seq": 0})
    dev(3.0, "sys", {"event": "cloud_status", "param": "connected"})
    cloud(3.1, "spark/status", "online", old)
    dev(5.0, "app", {"action": "workload", "state": "busy"})
    dev(5.01, "guard", {"action": "updates_disabled"})
    for seq in range(1, 6):
        dev(5 + seq * 8, "app", {"action": "record", "seq": seq, "persisted": True})
    out.add(at(30.0), "rig", "release", {"version": new, "intelligent": True})
    cloud(30.5, "particle/device/updates/pending", "true")
    dev(31.0, "sys", {"event": "firmware_update_pending"})
    dev(60.0, "app", {"action": "workload", "state": "idle"})
    dev(60.1, "guard", {"action": "window_open"})
    dev(60.2, "guard", {"action": "updates_enabled"})
    dev(62.0, "sys", {"event": "firmware_update", "param": "begin"})
    cloud(62.1, "spark/flash/status", "started ")
    t = 62.5
    while t < 80:
        dev(t, "sys", {"event": "firmware_update", "param": "progress"})
        t += progress_step
    out.add(at(80.0), "fault", "power_cut", {"phase": "download"})
    out.add(at(80.01), src, "port_lost")
    cloud(80.5, "spark/flash/status", "failed ")
    cloud(81.0, "spark/status", "offline")
    out.add(at(95.0), "fault", "power_restore", {})
    out.add(at(96.0), src, "port_back")
    ms[0] = int(at(97) * 1000) - 20  # device millis restart at the new boot
    dev(97.0, "hello", {"proto": 1, "product_version": old, "mode": "SEMI_AUTOMATIC"})
    dev(97.01, "boot", {"reset_reason": "power_down", "records_recovered": 5, "last_seq": 5})
    cloud(99.0, "spark/status", "online", old)
    cloud(99.2, "particle/device/updates/pending", "true")
    dev(99.3, "sys", {"event": "firmware_update_pending"})
    dev(100.0, "app", {"action": "workload", "state": "busy"})
    dev(150.0, "app", {"action": "workload", "state": "idle"})
    dev(150.1, "guard", {"action": "window_open"})
    dev(152.0, "sys", {"event": "firmware_update", "param": "begin"})
    cloud(152.1, "spark/flash/status", "started ")
    t = 152.5
    while t < 200:
        dev(t, "sys", {"event": "firmware_update", "param": "progress"})
        t += progress_step
    dev(200.0, "sys", {"event": "firmware_update", "param": "complete"})
    dev(200.5, "guard", {"action": "shutdown_begin"})
    dev(200.6, "guard", {"action": "reset_held"})
    dev(203.0, "guard", {"action": "shutdown_complete", "records": 5, "last_seq": 5})
    dev(203.1, "guard", {"action": "reset_released"})
    dev(203.2, "sys", {"event": "reset_pending"})
    out.add(at(204.0), src, "port_lost")
    cloud(204.2, "spark/flash/status", "success ")
    out.add(at(207.0), src, "port_back")
    ms[0] = int(at(208) * 1000) - 15
    dev(208.0, "hello", {"proto": 1, "product_version": new, "mode": "SEMI_AUTOMATIC"})
    dev(208.01, "boot", {"reset_reason": "update", "records_recovered": 5, "last_seq": 5})
    cloud(210.0, "spark/status", "online", new)
    cloud(210.2, "particle/device/updates/pending", "false")
    out.add(at(230.0), "fault", "link_outage", {"seconds": 25})
    dev(260.0, "reply", {"id": 9, "cmd": "sleep", "ok": True, "mode": "stop"})
    dev(320.0, "log", {"msg": "wake", "reason": "rtc"})
    end = 340.0
    if psu:
        n = int(end / psu_dt)
        samples = []
        for i in range(n):
            s = i * psu_dt
            if 80 <= s < 95:
                amps = 0.0
            elif 260 <= s < 320:
                amps = 0.0021 + rng.random() * 0.0003
            elif 62 <= s < 80 or 152 <= s < 200:
                amps = 0.18 + (0.55 if rng.random() < 0.08 else 0.0) + rng.random() * 0.02
            elif 5 <= s < 60 or 100 <= s < 150:
                amps = 0.085 + rng.random() * 0.01
            else:
                amps = 0.045 + rng.random() * 0.005
            samples.append(Entry(round(at(s), 3), "psu", "sample",
                                 {"volts": 0.0 if amps == 0 else 4.2, "amps": round(amps, 5)}))
        out.entries = sorted(out.entries + samples, key=lambda e: e.t)
    if not tl.entries or not out.entries or out.entries[0].t >= tl.entries[-1].t:
        tl.entries.extend(out.entries)
    else:
        tl.entries = sorted(tl.entries + out.entries, key=lambda e: e.t)
    return at(end)


def story_timeline() -> Timeline:
    tl = Timeline()
    ota_story(tl)
    return tl


def big_timeline(n: int = 100_000) -> Timeline:
    """A week of bench time: the story once a day on each of two boards (thousands of progress
    events per download) and the PSU sampled densely enough to reach `n` entries."""
    rng = random.Random(7)
    cycle = 86400.0
    other = Timeline()
    for k in range(7):
        ota_story(other, t0=k * cycle + cycle / 3, board="e00fce68ffffffffffff0002", old=1 + k, new=2 + k,
                  psu=False, rng=rng, stretch=cycle / 600, progress_step=0.02)
    per_day_events = 2 * len(other) // 7
    psu_dt = 340.0 / max(1.0, n / 7 - per_day_events + 20)
    tl = Timeline()
    for k in range(7):
        ota_story(tl, t0=k * cycle, old=1 + k, new=2 + k, rng=rng, stretch=cycle / 400,
                  progress_step=0.02, psu_dt=psu_dt)
    tl.entries = sorted(tl.entries + other.entries, key=lambda e: e.t)
    return tl


def png_size(path: Path) -> tuple[int, int]:
    raw = path.read_bytes()
    assert raw[:8] == PNG_MAGIC
    assert raw[12:16] == b"IHDR"
    return struct.unpack(">II", raw[16:24])


# ---------------------------------------------------------------- plot


def test_plot_story_is_a_readable_png(tmp_path: Path) -> None:
    out = plot.plot_timeline(story_timeline(), tmp_path / "sub" / "timeline.png", title="intelligent_release")
    assert out == tmp_path / "sub" / "timeline.png"
    w, h = png_size(out)
    assert 1000 <= w <= 2000 and 400 <= h <= 1500
    assert 20_000 < out.stat().st_size < 2_000_000


def test_the_png_holds_exactly_the_pixels_drawn(tmp_path: Path) -> None:
    """`plot_timeline` writes its PNG itself (docs/lab.md §4): a reader gets the canvas back, pixel
    for pixel, at the drawing's resolution."""
    import numpy as np
    from PIL import Image

    fig = plot._figure(list(story_timeline().entries), "intelligent_release")
    canvas = plot._Canvas(fig)
    canvas.draw()
    drawn = np.asarray(canvas.buffer_rgba())
    out = plot.plot_timeline(story_timeline(), tmp_path / "timeline.png", title="intelligent_release")
    with Image.open(out) as im:
        assert im.mode == "RGB"
        assert round(im.info["dpi"][0]) == plot.DPI
        assert np.array_equal(np.asarray(im), drawn[:, :, :3])
    assert (drawn[:, :, 3] == 255).all()   # nothing transparent was dropped with the alpha channel


def test_plot_model_reads_the_story() -> None:
    tl = story_timeline()
    entries = tl.select(source=f"board:{BOARD}")
    m = plot._board_model(entries, [], tl.entries[-1].t)
    # two idle windows, one busy span per boot, one completed and one cut download
    assert [round(s) for s, _ in m.windows] == [60, 150]
    assert [(round(s), round(e)) for s, e in m.busy] == [(5, 60), (100, 150)]
    assert [(round(s), round(e)) for s, e in m.downloads] == [(152, 200)]
    assert [(round(s), round(e)) for s, e in m.cut] == [(62, 80)]
    assert [(round(s), round(e)) for s, e in m.shutdowns] == [(200, 203)]
    assert len(m.pending.xs) == 2
    assert m.versions.labels == ["v1", "v2"]
    assert [(round(s), round(e)) for s, e in m.states["sleeping"]] == [(260, 320)]
    assert [(round(s), round(e)) for s, e in m.states["offline"]] == [(80, 96), (204, 207)]
    assert m.boots.labels == ["power_down", "power_down", "update"]


def test_plot_safe_mode_and_reset_without_port_drop() -> None:
    tl = Timeline()
    src = f"board:{BOARD}"
    tl.add(1, src, "hello", {"product_version": 3})
    tl.add(5, src, "hello", {"product_version": 3})      # rebooted, port never dropped
    tl.add(10, src, "port_lost")
    tl.add(12, src, "port_back")
    tl.add(20, "cloud", "spark/status/safe-mode", {"data": "{}", "coreid": BOARD})
    tl.add(60, src, "hello", {"product_version": 4})
    m = plot._board_model(tl.select(source="board"), [20.0], 80.0)
    assert m.states["safe mode"] == [(20.0, 60.0)]
    assert m.states["booting"] == [(12.0, 20.0)]
    assert m.resets.xs == [5]


def test_plot_model_as_the_simulator_reports_it() -> None:
    """No port drop on reset (a stable link): the power cut, `sys reset`, the boot's open window,
    workload replies and the rig's sleep command still give the right lanes."""
    tl = Timeline()
    src = f"board:{BOARD}"
    tl.add(1.0, src, "hello", {"product_version": 1})
    tl.add(1.0, src, "boot", {"reset_reason": "power_down", "window_open": True})
    tl.add(2.0, src, "sys", {"event": "cloud_status", "param": "connected"})
    tl.add(3.0, src, "reply", {"cmd": "workload", "ok": True, "state": "busy"})
    tl.add(8.0, src, "reply", {"cmd": "workload", "ok": True, "state": "idle"})
    tl.add(10.0, "fault", "power_cut", {"phase": "download"})
    tl.add(15.0, "fault", "power_restore", {})
    tl.add(16.0, src, "hello", {"product_version": 1})
    tl.add(20.0, "rig", "command", {"board": BOARD, "cmd": "sleep", "mode": "ulp", "seconds": 60})
    tl.add(20.1, src, "reply", {"cmd": "sleep", "ok": True})
    tl.add(80.0, src, "log", {"msg": "wake"})
    tl.add(90.0, src, "sys", {"event": "reset"})
    tl.add(93.0, src, "hello", {"product_version": 2})
    faults = tl.select(source="fault")
    rig = tl.select(source="rig")
    entries = plot._with_context(tl.select(source="board"), sorted(faults + rig, key=lambda e: e.t), BOARD)
    m = plot._board_model(entries, [], 100.0)
    assert m.states["offline"] == [(10.0, 15.0), (90.0, 93.0)]
    assert m.states["booting"] == [(15.0, 16.0)]
    assert m.states["sleeping"] == [(20.1, 80.0)] and m.sleeps.labels == ["ulp"]
    assert m.busy == [(3.0, 8.0)]
    assert m.windows[0] == (1.0, 10.0)        # open from boot until the power went
    assert m.connected == [(2.0, 10.0)]
    # a power cut aimed at another board leaves this one alone
    other = tl.select(source="fault")[0]
    aimed = type(other)(other.t, other.source, other.kind, {"board": "someone-else"})
    assert plot._with_context([], [aimed], BOARD) == []


def test_time_unit_switches_with_span() -> None:
    assert plot.time_unit(90)[1] == "s"
    assert plot.time_unit(1800)[1] == "min"
    assert plot.time_unit(30 * 3600)[1] == "h"
    assert plot.time_unit(7 * 86400)[1] == "days"


def test_plot_empty_and_sparse_timelines(tmp_path: Path) -> None:
    assert png_size(plot.plot_timeline(Timeline(), tmp_path / "empty.png"))[0] > 0
    tl = Timeline()
    tl.add(3.0, "fault", "power_cut", {})
    tl.add(4.0, "rig", "command", {"cmd": "ping"})
    assert png_size(plot.plot_timeline(tl, tmp_path / "sparse.png"))[0] > 0
    only_psu = Timeline()
    for i in range(100):
        only_psu.add(i, "psu", "sample", {"volts": 4.2, "amps": 0.05})
    assert png_size(plot.plot_timeline(only_psu.entries, tmp_path / "psu.png"))[0] > 0


def test_plot_100k_entries_draws_a_bounded_number_of_points(tmp_path: Path) -> None:
    """What keeps a week's picture cheap: whatever the number of entries, no line or collection
    holds much more than a few points per pixel column (PSU samples are min/max-decimated, progress
    ticks thinned). How long it takes is measured by bench/ and docs/lab.md §4, not asserted here."""
    from matplotlib.collections import Collection
    from matplotlib.lines import Line2D

    tl = big_timeline(100_000)
    assert len(tl) >= 100_000
    out = plot.plot_timeline(tl, tmp_path / "big.png", title="a week, two boards")
    assert png_size(out)[0] > 1000
    fig = plot._figure(list(tl.entries), "a week, two boards")
    drawn = [len(a.get_xdata()) for ax in fig.axes for a in ax.get_children() if isinstance(a, Line2D)]
    drawn += [len(a.get_paths()) for ax in fig.axes for a in ax.get_children() if isinstance(a, Collection)]
    assert drawn and max(drawn) <= 4 * plot.PIXELS, f"a series of {max(drawn)} points for {plot.PIXELS} pixel columns"
    assert sum(drawn) < len(tl) // 5, f"{sum(drawn)} points drawn for {len(tl)} entries"


def test_minmax_decimation_keeps_spikes() -> None:
    import numpy as np
    t = np.arange(200_000, dtype=float) * 0.01
    v = np.full(t.size, 40.0)
    v[123_457] = 900.0
    tt, vv = plot._minmax(t, v, 0.0, float(t[-1]), 1000)
    assert tt.size <= 2000
    assert vv.max() == 900.0 and vv.min() == 40.0


# ---------------------------------------------------------------- results and record


@pytest.fixture(scope="module")
def story_png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The story's timeline.png, drawn once for the report tests."""
    out = tmp_path_factory.mktemp("png") / "timeline.png"
    return plot.plot_timeline(story_timeline(), out, title="test_intelligent_release").read_bytes()


@pytest.fixture
def results(tmp_path: Path, story_png: bytes) -> list[dict]:
    return _results(tmp_path, story_png)


def _results(tmp_path: Path, png: bytes) -> list[dict]:
    """Three scenarios as the plugin writes them: meta.json (+ timeline.png) per test folder."""
    tests = tmp_path / "tests"
    ok = tests / "hil__test_intelligent_release"
    bad = tests / "hil__test_power_cut_during_copy"
    skip = tests / "hil__test_psu_only"
    for d in (ok, bad, skip):
        d.mkdir(parents=True)
    (ok / "timeline.png").write_bytes(png)
    v_bad = Verdict("shutdown completed before reset", False,
                    "the device reset after an update without a completed shutdown",
                    story_timeline().window(200, 210))
    metas = [
        (ok, {"nodeid": "hil/test_ota.py::test_intelligent_release", "name": "test_intelligent_release",
              "outcome": "passed", "duration_wall_s": 1.234, "device_time_s": 340.0, "data_bytes": 123_456,
              "verdicts": [{"name": "update began only inside an idle window", "passed": True,
                            "message": "1 update(s) began", "explanation": "PASS ..."}],
              "artifacts_dir": str(ok), "longrepr": ""}),
        (bad, {"nodeid": "hil/test_power.py::test_power_cut_during_copy", "name": "test_power_cut_during_copy",
               "outcome": "failed", "duration_wall_s": 2.5, "device_time_s": 3 * 86400 + 7200.0,
               "data_bytes": 6_000, "verdicts": [{"name": v_bad.name, "passed": False, "message": v_bad.message,
                                                  "explanation": v_bad.explain()}],
               "artifacts_dir": "hil__test_power_cut_during_copy", "longrepr": "VerdictFailed: FAIL shutdown <x>"}),
        (skip, {"nodeid": "hil/test_power.py::test_psu_only", "name": "test_psu_only", "outcome": "skipped",
                "duration_wall_s": 0.0, "device_time_s": 0.0, "data_bytes": 0, "verdicts": [],
                "artifacts_dir": str(skip), "longrepr": "bench has no PSU"}),
    ]
    for i, (d, meta) in enumerate(metas):
        meta["index"] = i
        (d / "meta.json").write_text(json.dumps(meta))
    return report.load_results(tests)


def _record(results: list[dict], tmp_path: Path) -> dict:
    fw = tmp_path / "app-v2.bin"
    fw.write_bytes(b"\x00module" * 100)
    return record.build_record(
        results,
        firmware=[{"version": 2, "path": str(fw), "sha256": record.sha256_file(fw)}],
        boards=[{"id": BOARD, "platform": "electron", "versions_seen": [1, 2]}],
        bench={"name": "sim", "simulated": True, "psu": "sim-psu"},
        tools={"otarig": "0.1.0", "python": "3.11.2", "device_os": "2.3.1", "particle_cli": "3.23.0"},
        seed=42,
    )


def test_load_results_reads_meta_in_run_order(tmp_path: Path, results: list[dict]) -> None:
    assert [r["name"] for r in results] == ["test_intelligent_release", "test_power_cut_during_copy",
                                            "test_psu_only"]
    # a relative artifacts_dir resolves against the tests folder
    assert Path(results[1]["artifacts_dir"]).is_absolute()


def test_load_results_survives_a_broken_meta(tmp_path: Path) -> None:
    (tmp_path / "t1").mkdir()
    (tmp_path / "t1" / "meta.json").write_text("{not json")
    (tmp_path / "t2").mkdir()
    (tmp_path / "t2" / "meta.json").write_text(json.dumps({"name": "t2", "outcome": "passed"}))
    results = report.load_results(tmp_path)
    by = {r["name"]: r for r in results}
    assert by["t1"]["outcome"] == "error" and "meta.json" in by["t1"]["longrepr"]
    assert by["t2"]["verdicts"] == [] and by["t2"]["device_time_s"] == 0.0
    assert report.load_results(tmp_path / "nowhere") == []


def test_sha256_file(tmp_path: Path) -> None:
    p = tmp_path / "x.bin"
    p.write_bytes(b"abc")
    assert record.sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_record_schema_round_trip(tmp_path: Path, results: list[dict]) -> None:
    rec = _record(results, tmp_path)
    assert rec["schema"] == "otarig.certification/1"
    assert rec["passed"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rec["created_utc"])
    assert rec["seed"] == 42
    assert rec["summary"] == {"total": 3, "passed": 1, "failed": 1, "skipped": 1, "error": 0,
                              "device_time_s": 340.0 + 3 * 86400 + 7200.0, "data_bytes": 129_456,
                              "duration_wall_s": pytest.approx(3.734)}
    sc = rec["results"][1]
    assert set(sc) == {"name", "nodeid", "outcome", "duration_wall_s", "device_time_s", "data_bytes", "verdicts"}
    assert sc["verdicts"] == [{"name": "shutdown completed before reset", "passed": False,
                               "message": "the device reset after an update without a completed shutdown"}]
    path = record.write_record(tmp_path / "out" / "certification.json", rec)
    again = record.load_record(path)
    assert again == rec
    record.validate_record(again)


def test_record_passes_only_without_failures(tmp_path: Path, results: list[dict]) -> None:
    ok = [r for r in results if r["outcome"] != "failed"]
    assert _record(ok, tmp_path)["passed"] is True
    assert _record([], tmp_path)["passed"] is False  # nothing ran: nothing certified


def test_record_accepts_verdict_objects_and_rejects_bad_input(tmp_path: Path) -> None:
    res = [{"name": "t", "outcome": "passed", "verdicts": [Verdict("v", True, "ok")]}]
    rec = _record(res, tmp_path)
    assert rec["results"][0]["verdicts"] == [{"name": "v", "passed": True, "message": "ok"}]
    with pytest.raises(ValueError, match="sha256"):
        record.build_record(res, firmware=[{"version": 1, "path": "x"}], boards=[], bench={}, tools={}, seed=0)
    with pytest.raises(ValueError, match="outcome"):
        record.build_record([{"name": "t", "outcome": "maybe"}], firmware=[], boards=[], bench={}, tools={}, seed=0)
    bad = dict(rec, schema="other/9")
    with pytest.raises(ValueError, match="schema"):
        record.validate_record(bad)


def test_record_created_time_is_utc(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone
    when = datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    rec = record.build_record([], firmware=[], boards=[], bench={}, tools={}, seed=1, created=when)
    assert rec["created_utc"] == "2024-05-01T12:00:00Z"


def test_default_tools_reports_versions() -> None:
    tools = record.default_tools(device_os="2.3.1", particle_cli="3.23.0")
    assert tools["device_os"] == "2.3.1" and tools["particle_cli"] == "3.23.0"
    assert re.match(r"\d+\.\d+", tools["python"]) and tools["otarig"]


# ---------------------------------------------------------------- HTML and summary


def test_html_report_is_self_contained(tmp_path: Path, results: list[dict]) -> None:
    rec = _record(results, tmp_path)
    out = report.write_html(tmp_path / "report", results, rec)
    assert out == tmp_path / "report" / "report.html"
    html = out.read_text()
    for name in ("test_intelligent_release", "test_power_cut_during_copy", "test_psu_only"):
        assert name in html
    # the embedded image decodes to the PNG the plot wrote
    m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert m, "no embedded timeline image"
    assert base64.b64decode(m.group(1)) == (Path(results[0]["artifacts_dir"]) / "timeline.png").read_bytes()
    # the failed verdict's explanation with its timeline slice, escaped, in a <pre>
    pre = re.findall(r"<pre[^>]*>(.*?)</pre>", html, re.S)
    assert any("FAIL shutdown completed before reset" in p and "reset_pending" in p for p in pre)
    # … with the PSU samples folded so the board events stay readable
    slice_pre = next(p for p in pre if "FAIL shutdown" in p)
    assert "psu sample ×" in slice_pre
    assert slice_pre.count("psu                              sample") < 10 < v_bad_samples(results)
    assert "VerdictFailed: FAIL shutdown &lt;x&gt;" in html
    # header: firmware hash, board, seed, tools; summary rows with humanised device time and KB
    assert rec["firmware"][0]["sha256"] in html and BOARD in html and "42" in html and "3.23.0" in html
    assert "3d 2h" in html and "120.6 KB" in html
    assert "<link" not in html and "<script src" not in html  # nothing fetched from elsewhere
    assert "FAIL" in html


def test_print_summary_table(tmp_path: Path, results: list[dict]) -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=140, color_system=None, force_terminal=False)
    counts = report.print_summary(results, console)
    text = buf.getvalue()
    assert counts == {"passed": 1, "failed": 1, "skipped": 1, "error": 0}
    for needle in ("test_intelligent_release", "PASS", "FAIL", "SKIP", "5m 40s", "3d 2h", "120.6", "total"):
        assert needle in text, needle
    assert "1 passed, 1 failed, 1 skipped" in text
    buf = io.StringIO()
    report.print_summary([dict(results[0], name="test_power_cut[download-1]")], Console(file=buf, width=140))
    assert "test_power_cut[download-1]" in buf.getvalue()   # parametrized ids are not rich markup


def v_bad_samples(results: list[dict]) -> int:
    """PSU sample lines in the failed verdict's raw explanation."""
    return results[1]["verdicts"][0]["explanation"].count("psu                              sample")


def test_condense_samples_folds_only_long_runs() -> None:
    tl = Timeline()
    tl.add(1.0, "board:x", "hello", {})
    for i in range(5):
        tl.add(1.1 + i * 0.1, "psu", "sample", {"volts": 4.2, "amps": 0.04 + i * 0.001})
    tl.add(2.0, "fault", "power_cut", {})
    tl.add(2.1, "psu", "sample", {"volts": 0.0, "amps": 0.0})
    text = report.condense_samples(Timeline.render(tl.entries))
    lines = text.splitlines()
    assert len(lines) == 4
    assert "psu sample ×5, 40.0–44.0 mA" in lines[1] and "1.100" in lines[1] and "1.500" in lines[1]
    assert "power_cut" in lines[2] and "sample" in lines[3]   # a lone sample stays as it was


def test_humanise_device_time() -> None:
    h = report.human_duration
    assert h(0) == "0s" and h(12.5) == "12.5s" and h(200) == "3m 20s"
    assert h(5 * 3600 + 12 * 60) == "5h 12m" and h(7 * 86400 + 3 * 3600) == "7d 3h"
    assert h(float("nan")) == "—" and h(None) == "—"
    assert math.isclose(report.kb(1536), 1.5)


def test_the_app_s_own_cloud_events_get_a_row_of_their_own() -> None:
    """The companion publishes one `otarig/telemetry` a record: in "other" they would crowd the
    labels of the system's rarer events out; the system's namespaces stay where they were."""
    telemetry = Entry(1.0, "cloud", "otarig/telemetry", {"data": '{"seq":1}'})
    assert plot._short_cloud(telemetry) == ("app", "otarig/telemetry")
    assert plot._short_cloud(Entry(1.0, "cloud", "spark/device/session/end", {}))[0] == "other"
    assert plot._short_cloud(Entry(1.0, "cloud", "particle/firmware/release", {}))[0] == "other"
