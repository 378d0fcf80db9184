"""What `otarig.plot` keeps from one picture to the next in a process (the picture worker draws a
suite's pictures one after the other, docs/lab.md §4): a picture must be the same whether it is the
first one drawn or the fortieth, and what is kept must draw what matplotlib would have drawn."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.font_manager import FontProperties

from otarig import plot
from otarig.timeline import Timeline

BOARD = "board:e00fce680000000000000001"


def _ota(version: int, *, fault: bool, cloud_rows: int, sleeping: bool = False) -> Timeline:
    """A short OTA story; `version`, `fault` and `cloud_rows` change what every lane shows, and
    `sleeping` (a few µA between the samples) puts the current on a log scale."""
    tl = Timeline()
    tl.add(0.5, BOARD, "hello", {"product_version": version})
    tl.add(0.6, BOARD, "boot", {"reset_reason": "power_down"})
    tl.add(2.0, BOARD, "app", {"action": "workload", "state": "busy"})
    tl.add(9.0 + version, BOARD, "app", {"action": "workload", "state": "idle"})
    tl.add(10.0 + version, BOARD, "guard", {"action": "window_open"})
    tl.add(11.0 + version, BOARD, "sys", {"event": "firmware_update", "param": "begin"})
    tl.add(20.0 + version, BOARD, "sys", {"event": "firmware_update", "param": "complete"})
    tl.add(21.0 + version, BOARD, "sys", {"event": "firmware_update_pending"})
    tl.add(25.0 + version, BOARD, "hello", {"product_version": version + 1})
    tl.add(3.0, "rig", "release", {"version": version + 1})
    names = ["spark/status", "spark/flash/status", "particle/device/updates/pending", "spark/device/x", "app/t"]
    for i, name in enumerate(names[:cloud_rows]):
        tl.add(4.0 + i, "cloud", name, {"data": "online" if i == 0 else "true"})
    if fault:
        tl.add(15.0 + version, "fault", "power_cut", {"board": BOARD.split(":")[1]})
        tl.add(16.0 + version, "fault", "power_restore", {})
    for i in range(60):
        amps = 0.000004 * version if sleeping and i % 7 == 0 else 0.05 + (i % 5) * 0.02 * version
        tl.add(i * 0.5, "psu", "sample", {"volts": 4.1, "amps": amps})
    return tl


def _forget() -> None:
    """A process that has drawn nothing yet."""
    plot._GLYPHS.clear()
    plot._METRICS.clear()
    plot._FRAMES.clear()


@pytest.mark.parametrize("sleeping", [False, True], ids=["linear current", "log current"])
@pytest.mark.parametrize("versions", [(1, 4), (4, 1)], ids=["then more current", "then less current"])
def test_a_picture_does_not_depend_on_the_pictures_drawn_before_it(tmp_path: Path, sleeping: bool,
                                                                   versions: tuple[int, int]) -> None:
    """Two timelines of one layout (the same lanes, other data, labels and current range) are
    drawn in one frame, one after the other: the second picture is the one drawn fresh."""
    first, second = (_ota(v, fault=True, cloud_rows=3, sleeping=sleeping) for v in versions)
    _forget()
    fresh = plot.plot_timeline(second, tmp_path / "fresh.png", title="second").read_bytes()
    plot.plot_timeline(first, tmp_path / "first.png", title="first")
    after = plot.plot_timeline(second, tmp_path / "after.png", title="second").read_bytes()
    assert len(plot._FRAMES) == 1, "the two layouts differ: this test would not reuse a frame"
    assert (tmp_path / "first.png").read_bytes() != fresh
    assert after == fresh


def test_pictures_of_other_layouts_get_frames_of_their_own(tmp_path: Path) -> None:
    _forget()
    layouts = [_ota(1, fault=False, cloud_rows=3), _ota(1, fault=True, cloud_rows=3),
               _ota(1, fault=True, cloud_rows=5), _ota(1, fault=True, cloud_rows=5, sleeping=True)]
    sizes = set()
    for i, tl in enumerate(layouts):
        out = plot.plot_timeline(tl, tmp_path / f"{i}.png")
        with Image.open(out) as im:
            sizes.add(im.size)
    assert len(plot._FRAMES) == 4
    assert len(sizes) == 3          # a taller cloud lane, more room for fault labels; the log one is as tall


def test_kept_text_draws_the_glyphs_matplotlib_draws() -> None:
    """A text stamped from the kept bitmap against matplotlib's own glyph-by-glyph rendering at the
    same whole-pixel origin: the same pixels, give or take a level where two glyphs overlap."""
    _forget()
    prop = FontProperties(size=8, weight="bold")
    canvases = []
    for renderer_class in (RendererAgg, plot._StampingRenderer):
        renderer = renderer_class(300, 60, 100)
        gc = renderer.new_gc()
        gc.set_foreground("#1b5e20")
        for angle, (x, y) in ((0, (10.0, 30.0)), (90, (200.0, 55.0))):
            renderer.draw_text(gc, x, y, "boot: update v2 ⚡", prop, angle)
        canvases.append(np.asarray(renderer.buffer_rgba()).astype(int))
    ours_again = plot._StampingRenderer(300, 60, 100)    # now from the kept bitmaps
    gc = ours_again.new_gc()
    gc.set_foreground("#1b5e20")
    for angle, (x, y) in ((0, (10.0, 30.0)), (90, (200.0, 55.0))):
        ours_again.draw_text(gc, x, y, "boot: update v2 ⚡", prop, angle)
    matplotlib_s, ours = canvases
    assert matplotlib_s[..., 3].sum() > 0
    assert np.abs(matplotlib_s - ours).max() <= 2
    assert np.array_equal(np.asarray(ours_again.buffer_rgba()), ours.astype(np.uint8))


@pytest.mark.parametrize("s", ["", " ", "cloud updates"])
def test_kept_text_measures_what_matplotlib_measures(s: str) -> None:
    _forget()
    prop = FontProperties(size=7.5)
    expected = RendererAgg(10, 10, 100).get_text_width_height_descent(s, prop, False)
    ours = plot._StampingRenderer(10, 10, 100)
    assert ours.get_text_width_height_descent(s, prop, False) == expected
    assert ours.get_text_width_height_descent(s, prop, False) == expected   # kept
