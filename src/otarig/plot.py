"""The timeline as one picture (`timeline.png`, issue #5 item 2; docs/design.md principle 5).

`plot_timeline` draws every lane on one shared bench-time axis:

* per board, four rows: **state** (running / booting / offline-or-reset / sleeping / safe mode, with
  boot reasons, version changes, resets, and a thin strip while the cloud session is connected),
  **workload** (busy spans), **window** (the guard's idle windows), **OTA** (download spans with
  progress ticks, shutdown and held-reset spans, pending / reset / forced-handshake markers, with
  the idle windows shaded behind so "began inside a window" is visible at a glance);
* **cloud**: cloud stream events and rig actions (release, upload, lock, force) as markers with
  short labels; a gap in the rig's own event stream (`stream_gap`) as a light red band;
* **current**: the PSU trace in mA (log scale when it spans decades), min/max-decimated;
* injected **faults**: red lines (and light red spans for cut → restore pairs) across every lane,
  labelled above the plot.

Large timelines are decimated to the pixel grid, so 100,000 entries stay legible and quick.
Drawing uses the Agg canvas directly (no pyplot), so it is safe in threads and never opens a window.
"""
from __future__ import annotations

import bisect
import heapq
import math
import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ft2font import RenderMode
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from .timeline import Entry, Timeline
from .verdicts import STREAM_GAP, stream_gap_end, without_superseded_gaps

__all__ = ["plot_timeline", "time_unit"]

# ---------------------------------------------------------------- style

STATE_COLORS = {
    "running": "#43a047",
    "booting": "#fdd835",
    "offline": "#9e9e9e",
    "sleeping": "#5c6bc0",
    "safe mode": "#fb8c00",
}
STATE_LABELS = {"offline": "offline / reset"}
BUSY_COLOR = "#ffb300"
WINDOW_COLOR = "#81c784"
WINDOW_SHADE = "#c8e6c9"
DOWNLOAD_COLOR = "#1e88e5"
FAILED_COLOR = "#e53935"
SHUTDOWN_COLOR = "#8e24aa"
PENDING_COLOR = "#f57c00"
FAULT_COLOR = "#d32f2f"
CURRENT_COLOR = "#00838f"
CLOUD_COLOR = "#26a69a"
GRID_COLOR = "#e0e0e0"

#: fault kinds that start a span, and the kinds that end it
FAULT_PAIRS = {
    "power_cut": ("power_restore",),
    "cellular_off": ("cellular_on",),
    "antenna_off": ("antenna_on",),
    "usb_off": ("usb_on",),
    "link_outage": ("link_restore", "link_back"),
    "cloud_outage": ("cloud_restore", "cloud_back"),
}
FAULT_ENDS = {end for pair in FAULT_PAIRS.values() for end in pair}
DURATION_KEYS = ("seconds", "duration_s", "duration")

WIDTH_IN = 15.0
DPI = 100
PIXELS = int(WIDTH_IN * DPI * 0.86)   # the width of the plotting area, roughly


def time_unit(span_s: float) -> tuple[float, str]:
    """(seconds per unit, unit name) for an axis covering `span_s` seconds."""
    if span_s <= 300:
        return 1.0, "s"
    if span_s <= 3 * 3600:
        return 60.0, "min"
    if span_s <= 3 * 86400:
        return 3600.0, "h"
    return 86400.0, "days"


# ---------------------------------------------------------------- model


@dataclass
class _Marks:
    """Point events of one style: positions (bench s) and optional labels."""

    xs: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def add(self, x: float, label: str = "") -> None:
        self.xs.append(x)
        self.labels.append(label)


@dataclass
class _Board:
    """What one board's rows show, as spans (start, end) and marks."""

    states: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    busy: list[tuple[float, float]] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)
    downloads: list[tuple[float, float]] = field(default_factory=list)
    failed: list[tuple[float, float]] = field(default_factory=list)
    cut: list[tuple[float, float]] = field(default_factory=list)       # begin, then reset/end
    shutdowns: list[tuple[float, float]] = field(default_factory=list)
    held: list[tuple[float, float]] = field(default_factory=list)
    progress: list[float] = field(default_factory=list)
    boots: _Marks = field(default_factory=_Marks)
    pending: _Marks = field(default_factory=_Marks)
    resets: _Marks = field(default_factory=_Marks)
    forced: _Marks = field(default_factory=_Marks)
    versions: _Marks = field(default_factory=_Marks)
    sleeps: _Marks = field(default_factory=_Marks)
    connected: list[tuple[float, float]] = field(default_factory=list)


def _board_model(entries: list[Entry], safe_at: list[float], end: float) -> _Board:
    """Walk one board's entries (in time order) into spans and marks."""
    b = _Board()
    state: str | None = None
    since = 0.0
    busy_since: float | None = None
    window_since: float | None = None
    dl_since: float | None = None
    shut_since: float | None = None
    held_since: float | None = None
    cloud_since: float | None = None
    sleep_mode = "sleep"
    safe = sorted(safe_at)
    si = 0

    def go(new: str | None, t: float) -> None:
        nonlocal state, since
        if new == state:
            return
        if state is not None and t > since:
            b.states.setdefault(state, []).append((since, t))
        state, since = new, t

    def close_cloud(t: float) -> None:
        nonlocal cloud_since
        if cloud_since is not None:
            b.connected.append((cloud_since, t))
            cloud_since = None

    def close_app(t: float) -> None:
        nonlocal busy_since, window_since, shut_since, held_since
        close_cloud(t)
        if busy_since is not None:
            b.busy.append((busy_since, t))
        if window_since is not None:
            b.windows.append((window_since, t))
        if shut_since is not None:
            b.shutdowns.append((shut_since, t))
        if held_since is not None:
            b.held.append((held_since, t))
        busy_since = window_since = shut_since = held_since = None

    def close_download(t: float) -> None:
        nonlocal dl_since
        if dl_since is not None:
            b.cut.append((dl_since, t))
            dl_since = None

    for e in entries:
        t = e.t
        while si < len(safe) and safe[si] <= t:
            close_app(safe[si])
            go("safe mode", safe[si])
            si += 1
        k = e.kind
        if e.source == "rig":     # the sleep command names the mode; the reply may not
            sleep_mode = str(e.get("mode") or sleep_mode)
            continue
        if e.source == "fault":   # power faults aimed at this board (or at the whole bench)
            if k == "power_cut":
                close_app(t)
                close_download(t)
                go("offline", t)
            elif k == "power_restore" and state == "offline":
                go("booting", t)
            continue
        if k == "port_lost":
            close_app(t)
            close_download(t)
            go("sleeping" if state == "sleeping" else "offline", t)
        elif k == "port_back":
            go("booting", t)
        elif k == "hello":
            if state == "running":
                b.resets.add(t)  # a reboot without the port dropping
            close_app(t)
            close_download(t)
            go("running", t)
            v = e.get("product_version")
            if v is not None and (not b.versions.labels or b.versions.labels[-1] != f"v{v}"):
                b.versions.add(t, f"v{v}")
        elif k == "boot":
            b.boots.add(t, str(e.get("reset_reason", "")))
            if e.get("window_open") and window_since is None:
                window_since = t   # the guard reports an open window at boot
        elif k == "reply" and e.get("cmd") in ("workload", "status") and e.get("ok", True):
            w = e.get("state") if e.get("cmd") == "workload" else e.get("workload")
            if w == "busy" and busy_since is None:
                busy_since = t
            elif w == "idle" and busy_since is not None:
                b.busy.append((busy_since, t))
                busy_since = None
        elif k == "reply":
            if e.get("cmd") == "sleep" and e.get("ok", True):
                close_app(t)
                go("sleeping", t)
                b.sleeps.add(t, str(e.get("mode") or sleep_mode))
        elif k == "log":
            if e.get("msg") == "wake" and state == "sleeping":
                go("running", t)
        elif k == "app":
            if e.get("action") == "workload":
                if e.get("state") == "busy" and busy_since is None:
                    busy_since = t
                elif e.get("state") == "idle" and busy_since is not None:
                    b.busy.append((busy_since, t))
                    busy_since = None
        elif k == "guard":
            a = e.get("action")
            if a == "window_open" and window_since is None:
                window_since = t
            elif a == "window_close" and window_since is not None:
                b.windows.append((window_since, t))
                window_since = None
            elif a == "shutdown_begin" and shut_since is None:
                shut_since = t
            elif a == "shutdown_complete":
                b.shutdowns.append((shut_since if shut_since is not None else t, t))
                shut_since = None
            elif a == "reset_held" and held_since is None:
                held_since = t
            elif a == "reset_released" and held_since is not None:
                b.held.append((held_since, t))
                held_since = None
            elif a == "handshake_forced":
                b.forced.add(t)
        elif k == "sys":
            ev, param = e.get("event"), e.get("param")
            if ev == "firmware_update":
                if param == "begin":
                    close_download(t)
                    dl_since = t
                elif param == "progress":
                    b.progress.append(t)
                elif param in ("complete", "failed"):
                    start = dl_since if dl_since is not None else t
                    (b.downloads if param == "complete" else b.failed).append((start, t))
                    dl_since = None
            elif ev == "firmware_update_pending":
                b.pending.add(t)
            elif ev in ("reset_pending", "reset"):
                b.resets.add(t, ev)
                if ev == "reset":     # the device is going down: a reset gap until it says hello
                    close_app(t)
                    close_download(t)
                    go("offline", t)
            elif ev == "cloud_status":
                if param == "connected" and cloud_since is None:
                    cloud_since = t
                elif param in ("disconnecting", "disconnected"):
                    close_cloud(t)
    while si < len(safe):
        close_app(safe[si])
        go("safe mode", safe[si])
        si += 1
    close_app(end)
    close_download(end)
    go(None, end)
    return b


# ---------------------------------------------------------------- helpers


def _thin(xs: list[float] | np.ndarray, lo: float, hi: float, n: int = PIXELS) -> np.ndarray:
    """Indices of `xs` keeping the first point of each of `n` buckets over [lo, hi]."""
    a = np.asarray(xs, dtype=float)
    if a.size <= n:
        return np.arange(a.size)
    bucket = np.floor((a - lo) / max(hi - lo, 1e-9) * n).astype(np.int64)
    _, first = np.unique(bucket, return_index=True)
    return np.sort(first)


def _label_positions(xs: list[float], labels: list[str] | None, px: float, *, levels: int = 1,
                     limit: int = 60, fontsize: float = 7.0, hi: float = math.inf) -> list[tuple[int, int, bool]]:
    """(index, level, flipped) of the labels that fit without overlapping, greedily left to right.

    A label starting at x covers its estimated text width (`px` = bench seconds per pixel); one
    that would run past `hi` is flipped to end at x instead."""
    char_px = fontsize * 0.58 * DPI / 72
    last = [-math.inf] * levels
    out: list[tuple[int, int, bool]] = []
    for i, x in enumerate(xs):
        width = ((len(labels[i]) * char_px if labels else 0.0) + 6) * px
        flip = x + width > hi
        start, end = (x - width, x) if flip else (x, x + width)
        for lv in range(levels):
            if start >= last[lv]:
                out.append((i, lv, flip))
                last[lv] = end
                break
        if len(out) >= limit:
            break
    return out


def _merge(spans: list[tuple[float, float]], min_w: float) -> list[tuple[float, float]]:
    """Spans as (start, width), merging those closer than `min_w` and widening slivers."""
    out: list[list[float]] = []
    for s, e in sorted(spans):
        e = max(e, s)
        if out and s - out[-1][1] < min_w:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, max(e - s, min_w)) for s, e in out]


# The lanes' limits are set by hand, so what is drawn on them is added without updating their data
# limits, and as one collection per kind: `broken_barh`, `scatter`, `vlines` and `axhline` each cost
# five times as much, mostly in autoscaling (docs/lab.md §4).


def _rects(ax: Axes, xranges: list[tuple[float, float]], y0: float, h: float, **kw) -> None:
    """Rectangles (start, width) × (y0, y0 + h), as `broken_barh` draws them."""
    if xranges:
        verts = [[(x, y0), (x, y0 + h), (x + w, y0 + h), (x + w, y0)] for x, w in xranges]
        ax.add_collection(PolyCollection(verts, **kw), autolim=False)


def _bars(ax: Axes, spans: list[tuple[float, float]], y: float, h: float, px: float, **kw) -> None:
    if spans:
        _rects(ax, _merge(spans, px), y - h / 2, h, **kw)


def _vlines(ax: Axes, xs: Iterable[float], y0: float, y1: float, **kw) -> None:
    """Vertical segments at `xs` from y0 to y1 (data y unless a `transform` says otherwise)."""
    segments = [[(x, y0), (x, y1)] for x in xs]
    if segments:
        ax.add_collection(LineCollection(segments, **kw), autolim=False)


def _hlines(ax: Axes, ys: Iterable[float], **kw) -> None:
    """Lines across the whole lane at data `ys`, as `axhline` draws them."""
    segments = [[(0.0, y), (1.0, y)] for y in ys]
    if segments:
        ax.add_collection(LineCollection(segments, transform=ax.get_yaxis_transform(), **kw), autolim=False)


def _minmax(t: np.ndarray, v: np.ndarray, lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Min/max decimation: for each of `n` time buckets, its min and max in time order."""
    if t.size <= 2 * n:
        return t, v
    edges = np.linspace(lo, hi, n + 1)
    starts = np.unique(np.searchsorted(t, edges[:-1], side="left"))
    starts = starts[starts < t.size]
    mins = np.minimum.reduceat(v, starts)
    maxs = np.maximum.reduceat(v, starts)
    ends = np.append(starts[1:], t.size)
    tm = (t[starts] + t[ends - 1]) / 2
    # place min and max in the order they occurred, so spikes keep their shape
    argmax_first = np.array([np.argmax(v[s:e]) <= np.argmin(v[s:e]) for s, e in zip(starts, ends)]) \
        if starts.size < 5000 else np.zeros(starts.size, dtype=bool)
    first = np.where(argmax_first, maxs, mins)
    second = np.where(argmax_first, mins, maxs)
    tt = np.repeat(tm, 2)
    vv = np.column_stack([first, second]).ravel()
    # keep gaps: a bucket far from the previous one starts a new stroke
    return tt, vv


def _break_gaps(t: np.ndarray, v: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Insert NaN where consecutive samples are more than `gap` apart, so lines do not bridge."""
    if t.size < 2 or not math.isfinite(gap):
        return t, v
    idx = np.nonzero(np.diff(t) > gap)[0]
    if idx.size == 0:
        return t, v
    t = np.insert(t, idx + 1, (t[idx] + t[idx + 1]) / 2)
    v = np.insert(v.astype(float), idx + 1, np.nan)
    return t, v


def _short_cloud(e: Entry) -> tuple[str, str]:
    """(row, short label) for a cloud event."""
    name = e.kind
    val = str(e.get("data", "") if e.get("data") is not None else "").strip()
    if name == STREAM_GAP:  # the rig's own stream was down (otarig.cloud_access): drawn as a band too
        if stream_gap_end(e) == float("inf"):
            return "status", "stream down"
        return "status", f"stream gap {_human(stream_gap_end(e) - float(e.get('from', e.t)))}"
    if name == "spark/flash/status":
        return "flash", f"flash {val.split()[0] if val else ''}".strip()
    if name.startswith("spark/status/safe-mode"):
        return "status", "safe-mode"
    if name == "spark/status":
        return "status", val or "status"
    if name.startswith("particle/device/updates/"):
        return "updates", f"{name.rsplit('/', 1)[-1]}={val}" if val else name.rsplit("/", 1)[-1]
    short = name if len(name) <= 24 else "…" + name[-23:]
    # the app's own events (its telemetry: one a record) get a row of their own, so that they do
    # not crowd the labels of the system's rarer ones out of "other"
    return ("other" if name.startswith(("spark/", "particle/")) else "app"), short


_CLOUD_STYLE = {  # label prefix -> (marker, color)
    "online": ("o", "#43a047"),
    "offline": ("o", "#757575"),
    "safe-mode": ("X", "#fb8c00"),
    "auto-update": ("P", "#1e88e5"),
    "flash started": (">", "#1e88e5"),
    "flash success": ("*", "#2e7d32"),
    "flash failed": ("X", "#e53935"),
    "pending=true": ("v", PENDING_COLOR),
    "pending=false": ("v", "#bdbdbd"),
    "forced=true": ("D", "#c62828"),
    "forced=false": ("D", "#bdbdbd"),
    "enabled=true": ("s", "#43a047"),
    "enabled=false": ("s", "#757575"),
    "stream gap": ("|", "#e53935"),
}


def _cloud_style(label: str) -> tuple[str, str]:
    for prefix, style in _CLOUD_STYLE.items():
        if label.startswith(prefix):
            return style
    return ".", "#616161"


def _rig_label(e: Entry) -> str:
    d = e.data
    if e.kind == "release":
        v = d.get("version")
        tag = " intelligent" if d.get("intelligent") else ""
        return f"release v{v}{tag}" if v is not None else f"release{tag}"
    if e.kind == "upload":
        v = d.get("version")
        return f"upload v{v}" if v is not None else "upload"
    if e.kind == "command":
        return str(d.get("cmd") or d.get("name") or "cmd")
    return e.kind


def _fault_label(e: Entry) -> str:
    d = e.data
    for k in DURATION_KEYS:
        if isinstance(d.get(k), (int, float)):
            return f"{e.kind} {_human(float(d[k]))}"
    if isinstance(d.get("byte"), int):  # a cut timed by the bench companion on the status line
        return f"{e.kind} @ byte {d['byte']:,}"
    detail = d.get("at") or d.get("phase") or d.get("where") or ""
    return f"{e.kind} {detail}".strip() if isinstance(detail, str) else e.kind


def _human(s: float) -> str:
    if s < 120:
        return f"{s:.3g}s"
    if s < 7200:
        return f"{s / 60:.1f}min"
    if s < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


# ---------------------------------------------------------------- text, rendered once per process

#: (text, font, angle, antialiased, dpi, features, language) -> (alpha bitmap, its left and top
#: relative to the text's origin); the same labels recur picture after picture (lane names, tick
#: values, cloud events), and laying out and rendering their glyphs was about a third of a picture
#: (docs/lab.md §4)
_GLYPHS: dict[tuple, tuple[np.ndarray, int, int]] = {}
_GLYPHS_MAX = 20_000
#: (text, font, dpi) -> (width, height, descent) in pixels
_METRICS: dict[tuple, tuple[float, float, float]] = {}


def _font_key(prop: FontProperties) -> tuple:
    return (tuple(prop.get_family()), prop.get_style(), prop.get_variant(), prop.get_weight(),
            prop.get_stretch(), prop.get_size_in_points(), prop.get_file(), prop.get_math_fontfamily())


class _StampingRenderer(RendererAgg):
    """Agg, with each plain text's glyphs rendered once per process and stamped after that.

    A text's origin is rounded to a whole pixel first (matplotlib places glyphs to 1/64 px), so one
    bitmap serves every place it is drawn and a text looks the same whether it was rendered now or
    earlier: a picture does not depend on which pictures this process drew before it."""

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):  # type: ignore[override]
        if ismath:
            return super().draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
        features = mtext.get_fontfeatures() if mtext is not None else None
        language = mtext.get_language() if mtext is not None else None
        key = (s, _font_key(prop), angle, bool(gc.get_antialiased()), self.dpi,
               tuple(features) if features else None, language)
        stamp = _GLYPHS.get(key)
        if stamp is None:
            if len(_GLYPHS) >= _GLYPHS_MAX:
                _GLYPHS.clear()
            stamp = _GLYPHS[key] = self._render(s, prop, angle, bool(gc.get_antialiased()), features, language)
        bitmap, left, top = stamp
        if bitmap.size:
            ox, oy = round(x), round(self.height - y)   # the origin in whole pixels; FreeType's y is upwards
            self._renderer.draw_text_image(bitmap, ox + left, int(self.height) - (oy + top) + bitmap.shape[0],
                                           0, gc)
        return None

    def get_text_width_height_descent(self, s, prop, ismath):  # type: ignore[override]
        """Measured once per process: matplotlib caches a text's size per renderer, and each
        picture has a renderer of its own."""
        if ismath:
            return super().get_text_width_height_descent(s, prop, ismath)
        key = (s, _font_key(prop), self.dpi)
        size = _METRICS.get(key)
        if size is None:
            if len(_METRICS) >= _GLYPHS_MAX:
                _METRICS.clear()
            size = _METRICS[key] = super().get_text_width_height_descent(s, prop, ismath)
        return size

    def _render(self, s: str, prop: FontProperties, angle: float, antialiased: bool, features, language
                ) -> tuple[np.ndarray, int, int]:
        """The glyphs of `s` laid out from the origin (0, 0) into one alpha bitmap, as
        `RendererAgg._draw_text_glyphs_and_boxes` renders them one by one."""
        font = self._prepare_font(prop)
        items = font._layout(s, flags=get_hinting_flag(), features=features, language=language)
        size = prop.get_size_in_points()
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        glyphs: list[tuple[np.ndarray, int, int]] = []
        for item in items:
            ft = item.ft_object
            ft.set_size(size, self.dpi)
            ft._set_transform((0x10000 * np.array([[cos, -sin], [sin, cos]])).round().astype(int),
                              [round(0x40 * (item.x * cos - item.y * sin)),
                               round(0x40 * (item.x * sin + item.y * cos))])
            glyph = ft._render_glyph(item.glyph_index, get_hinting_flag(),
                                     RenderMode.NORMAL if antialiased else RenderMode.MONO)
            buf = np.array(glyph.buffer, dtype=np.uint8)
            if not antialiased:
                buf *= 0xff
            if buf.size:
                glyphs.append((buf, glyph.left, glyph.top))
        if not glyphs:
            return np.zeros((0, 0), np.uint8), 0, 0
        left = min(g[1] for g in glyphs)
        top = max(g[2] for g in glyphs)
        right = max(g[1] + g[0].shape[1] for g in glyphs)
        bottom = min(g[2] - g[0].shape[0] for g in glyphs)
        clear = np.full((top - bottom, right - left), 255, np.uint16)   # 255 - alpha, multiplied
        for buf, gl, gt in glyphs:
            r, c = top - gt, gl - left
            view = clear[r:r + buf.shape[0], c:c + buf.shape[1]]
            view[...] = (view * (255 - buf.astype(np.uint16)) + 127) // 255
        return np.ascontiguousarray(255 - clear, dtype=np.uint8), left, top


class _Canvas(FigureCanvasAgg):
    """The Agg canvas with `_StampingRenderer`."""

    def get_renderer(self) -> RendererAgg:
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._lastKey != key:
            self.renderer = _StampingRenderer(w, h, self.figure.dpi)
            self._lastKey = key  # type: ignore[assignment]
        return self.renderer


# ---------------------------------------------------------------- main


def plot_timeline(timeline: Timeline | Iterable[Entry], path: Path | str, *, title: str = "") -> Path:
    """Draw `timeline` into a PNG at `path` (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = list(timeline.entries if isinstance(timeline, Timeline) else timeline)
    with _DRAWING:   # one picture at a time in a process: they share the frames of their layouts
        fig = _figure(entries, title)
        canvas = fig.canvas if isinstance(fig.canvas, _Canvas) else _Canvas(fig)
        canvas.draw()   # the Agg backend, without touching pyplot's global state
        _write_png(path, np.asarray(canvas.buffer_rgba())[:, :, :3])   # opaque: the figure is white
    return path


# ---------------------------------------------------------------- frames, kept per layout

_DRAWING = threading.RLock()


@dataclass
class _Frame:
    """A figure with its lanes laid out, drawn into once and then reused for each picture of the
    same layout: creating a figure's axes and their ticks was a fifth of a picture (docs/lab.md §4)."""

    fig: Figure
    axes: list[Axes]


#: (lane heights, top pad, log current) -> its frame, the least recently used first
_FRAMES: OrderedDict[tuple, _Frame] = OrderedDict()
_FRAMES_MAX = 12


def _frame(heights: list[float], top_pad: float, bottom_pad: float, log_current: bool) -> _Frame:
    """The frame for this layout with nothing drawn in it: every artist a picture added is
    removed, and the lanes' data limits and autoscaling are as in a new figure."""
    key = (tuple(heights), top_pad, bottom_pad, log_current)
    frame = _FRAMES.get(key)
    if frame is None:
        fig_h = sum(heights) + top_pad + bottom_pad
        fig = Figure(figsize=(WIDTH_IN, fig_h), dpi=DPI, facecolor="white")
        _Canvas(fig)
        axes = list(np.atleast_1d(fig.subplots(len(heights), 1, sharex=True,
                                               gridspec_kw={"height_ratios": heights, "hspace": 0.12})))
        fig.subplots_adjust(left=0.105, right=0.985, top=1 - top_pad / fig_h, bottom=bottom_pad / fig_h)
        frame = _FRAMES[key] = _Frame(fig, axes)
        while len(_FRAMES) > _FRAMES_MAX:
            _FRAMES.popitem(last=False)
        return frame
    _FRAMES.move_to_end(key)
    for artist in [*frame.fig.texts, *frame.fig.images]:
        artist.remove()
    for ax in frame.axes:
        for artist in [*ax.collections, *ax.lines, *ax.texts, *ax.patches, *ax.images, *ax.artists]:
            artist.remove()
        ax.relim()                   # no data: the next picture's alone sets the limits
        ax.set_autoscale_on(True)
    return frame


def _write_png(path: Path, rgb: np.ndarray) -> None:
    """`rgb` (rows × columns × 3, uint8) as an 8-bit RGB PNG, rows unfiltered, zlib level 1.

    Half the time Pillow takes (its per-row adaptive filtering, which matplotlib's `savefig` goes
    through, cost more than the compression) for a file ~5 % larger; a suite writes a picture per
    scenario beside the bench (docs/lab.md §4)."""
    height, width, _ = rgb.shape
    rows = np.empty((height, 1 + 3 * width), np.uint8)
    rows[:, 0] = 0                                   # filter type 0 (None) for every row
    rows[:, 1:].reshape(height, width, 3)[...] = rgb   # a view of the rows: the pixels copied once

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)   # 8 bits, truecolour, no interlace
    dots_per_metre = round(DPI / 0.0254)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"pHYs", struct.pack(">IIB", dots_per_metre, dots_per_metre, 1))
                     + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + chunk(b"IEND", b""))


def _with_context(entries: list[Entry], extra: list[Entry], board: str) -> list[Entry]:
    """A board's entries with the power faults and rig commands aimed at it (no `board`/`device`
    key: the whole bench)."""
    mine = [f for f in extra if str(f.data.get("board", f.data.get("device", board))) == board]
    if not mine:
        return entries
    return list(heapq.merge(entries, mine, key=lambda e: e.t))


def _figure(entries: list[Entry], title: str) -> Figure:
    if not entries:
        fig = Figure(figsize=(WIDTH_IN, 2.0), dpi=DPI, facecolor="white")
        fig.text(0.5, 0.5, f"{title + ': ' if title else ''}empty timeline", ha="center", va="center",
                 fontsize=14, color="#616161")
        return fig

    t0 = min(e.t for e in entries)
    t1 = max(e.t for e in entries)
    if t1 - t0 < 1.0:
        t1 = t0 + 1.0
    scale, unit = time_unit(t1 - t0)
    pad = (t1 - t0) * 0.01
    lo, hi = t0 - pad, t1 + pad

    # split by source once
    boards: dict[str, list[Entry]] = {}
    cloud: list[Entry] = []
    rig: list[Entry] = []
    faults: list[Entry] = []
    psu_t: list[float] = []
    psu_a: list[float] = []
    for e in entries:
        s = e.source
        if s.startswith("board"):
            boards.setdefault(s.split(":", 1)[1] if ":" in s else s, []).append(e)
        elif s == "cloud":
            cloud.append(e)
        elif s == "psu":
            a = e.data.get("amps")
            if e.kind == "sample" and isinstance(a, (int, float)):
                psu_t.append(e.t)
                psu_a.append(float(a))
        elif s == "fault":
            faults.append(e)
        elif s == "rig":
            rig.append(e)
    cloud = without_superseded_gaps(cloud)
    safe: dict[str, list[float]] = {}
    for e in cloud:
        if e.kind.startswith("spark/status/safe-mode"):
            safe.setdefault(str(e.get("coreid", "")), []).append(e.t)
    if not boards and safe:
        boards = {k: [] for k in safe}
    context = sorted([f for f in faults if f.kind in ("power_cut", "power_restore")] +
                     [r for r in rig if r.kind == "command" and r.data.get("cmd") == "sleep"], key=lambda e: e.t)
    models = {bid: _board_model(_with_context(ents, context, bid), safe.get(bid, []), t1)
              for bid, ents in sorted(boards.items())}

    # layout
    heights: list[float] = [1.9] * len(models)
    has_cloud = bool(cloud or rig)
    if has_cloud:
        heights.append(0.42 * (1 + len({_short_cloud(e)[0] for e in cloud}) + (1 if rig else 0)))
    has_psu = bool(psu_t)
    if has_psu:
        heights.append(1.6)
    if not heights:
        heights.append(0.8)
    top_pad, bottom_pad = (1.15 if faults else 0.8), 1.05
    fig_h = sum(heights) + top_pad + bottom_pad
    log_current = has_psu and _log_current(np.asarray(psu_a) * 1000.0)
    frame = _frame(heights, top_pad, bottom_pad, log_current)
    fig, axes = frame.fig, frame.axes
    px = (hi - lo) / PIXELS   # one pixel in bench seconds

    i = 0
    for bid, model in models.items():
        _draw_board(axes[i], bid, model, px, scale, lo, hi)
        i += 1
    if has_cloud:
        _draw_cloud(axes[i], cloud, rig, lo, hi, scale, multi=len(models) > 1)
        i += 1
    if has_psu:
        _draw_current(axes[i], np.asarray(psu_t), np.asarray(psu_a), lo, hi, scale, log_current)
        i += 1
    for ax in axes:
        ax.set_xlim(lo / scale, hi / scale)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    # The lanes share one time axis: only the bottom one draws it (ticks, labels, grid); the others
    # get its grid as plain lines and no x axis of their own, whose ticks were a good part of every
    # picture's drawing time (docs/lab.md §4).
    axes[-1].grid(axis="x", color=GRID_COLOR, linewidth=0.6, zorder=0)
    ticks = [x for x in axes[-1].xaxis.get_majorticklocs() if lo / scale <= x <= hi / scale]
    for ax in axes[:-1]:
        ax.xaxis.set_visible(False)
        _vlines(ax, ticks, 0, 1, transform=ax.get_xaxis_transform(), colors=GRID_COLOR, linewidths=0.6, zorder=0)
    if not (models or has_cloud or has_psu):
        axes[0].set_yticks([])
        axes[0].text(0.5, 0.5, "no board, cloud or PSU entries", transform=axes[0].transAxes,
                     ha="center", va="center", color="#757575")
    axes[-1].set_xlabel(f"bench time ({unit})", fontsize=10)
    note = _draw_faults(fig, axes, faults, lo, hi, scale)

    n_faults = sum(1 for f in faults if f.kind not in FAULT_ENDS)
    head = title or "otarig timeline"
    sub = (f"{len(entries):,} entries · {_human(t1 - t0)} of bench time · "
           f"{len(models)} board{'s' if len(models) != 1 else ''} · {n_faults} injected fault"
           f"{'s' if n_faults != 1 else ''}" + (f" · {note}" if note else ""))
    fig.text(0.012, 1 - 0.14 / fig_h, head, ha="left", va="top", fontsize=13, fontweight="bold")
    fig.text(0.012, 1 - 0.42 / fig_h, sub, ha="left", va="top", fontsize=9, color="#616161")
    _legend(fig, bool(models), has_cloud, has_psu, bool(faults))
    return fig


def _draw_board(ax: Axes, bid: str, b: _Board, px: float, scale: float, lo: float, hi: float) -> None:
    """Rows (top to bottom): state, workload, window, OTA."""
    Y_STATE, Y_BUSY, Y_WIN, Y_OTA = 3.0, 2.0, 1.0, 0.0
    S = 1.0 / scale

    def sc(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(s * S, e * S) for s, e in spans]

    p = px * S
    for name, spans in b.states.items():
        kw = {"hatch": "////", "edgecolor": "#616161", "linewidth": 0} if name == "offline" else {}
        _bars(ax, sc(spans), Y_STATE, 0.62, p, facecolor=STATE_COLORS[name], zorder=2, **kw)
    _bars(ax, sc(b.connected), Y_STATE - 0.4, 0.1, p, facecolor=CLOUD_COLOR, zorder=2)
    _bars(ax, sc(b.busy), Y_BUSY, 0.55, p, facecolor=BUSY_COLOR, zorder=2)
    _bars(ax, sc(b.windows), Y_WIN, 0.55, p, facecolor=WINDOW_COLOR, zorder=2)
    # OTA row: windows shaded behind, then downloads
    _bars(ax, sc(b.windows), Y_OTA, 0.9, p, facecolor=WINDOW_SHADE, zorder=1)
    _bars(ax, sc(b.downloads), Y_OTA, 0.42, p, facecolor=DOWNLOAD_COLOR, zorder=3)
    _bars(ax, sc(b.failed), Y_OTA, 0.42, p, facecolor=FAILED_COLOR, zorder=3)
    _bars(ax, sc(b.cut), Y_OTA, 0.42, p, facecolor="white", edgecolor=FAILED_COLOR, hatch="xxx",
          linewidth=0.8, zorder=3)
    _bars(ax, sc(b.shutdowns), Y_OTA - 0.32, 0.16, p, facecolor=SHUTDOWN_COLOR, zorder=3)
    _bars(ax, sc(b.held), Y_OTA + 0.32, 0.12, p, facecolor="white", edgecolor=SHUTDOWN_COLOR,
          hatch="////", linewidth=0.6, zorder=3)
    if b.progress:   # one tick per ~5 px at most, so the bar stays a bar
        keep = _thin(b.progress, lo, hi, PIXELS // 5)
        xs = np.asarray(b.progress)[keep] * S
        _vlines(ax, xs, Y_OTA + 0.21, Y_OTA + 0.3, colors="#0d47a1", linewidths=0.6, alpha=0.55, zorder=4)
    _scatter(ax, b.pending.xs, Y_OTA + 0.36, "v", PENDING_COLOR, lo, hi, S, size=38)
    _scatter(ax, b.resets.xs, Y_STATE + 0.36, "v", "#212121", lo, hi, S, size=28)
    _scatter(ax, b.forced.xs, Y_WIN + 0.33, "D", "#546e7a", lo, hi, S, size=18)

    # boot reasons, sleep modes and safe mode inside their state bar (when they fit), versions above
    marks = sorted([(x, f"boot: {r}" if r else "boot", "#1b1b1b") for x, r in zip(b.boots.xs, b.boots.labels)] +
                   [(x, f"sleep: {m}", "white") for x, m in zip(b.sleeps.xs, b.sleeps.labels)] +
                   [(st, "safe mode", "white") for st, _ in b.states.get("safe mode", [])])
    segments = sorted((st, en) for spans in b.states.values() for st, en in spans)
    seg_starts = [st for st, _ in segments]
    char_px = 7 * 0.58 * DPI / 72
    fitting = []
    for x, text, color in marks:
        i = bisect.bisect_right(seg_starts, x + 0.05) - 1
        room = segments[i][1] - x if i >= 0 and segments[i][1] > x else 0.0
        if (len(text) * char_px + 8) * px <= room:
            fitting.append((x, text, color))
    for idx, _, _ in _label_positions([m[0] for m in fitting], [m[1] for m in fitting], px, limit=80):
        x, text, color = fitting[idx]
        ax.text(x * S, Y_STATE, f" {text}", fontsize=7, va="center", ha="left", color=color, zorder=5,
                clip_on=True)
    for idx, _, _ in _label_positions(b.versions.xs, b.versions.labels, px, limit=40, fontsize=7.5):
        ax.text(b.versions.xs[idx] * S, Y_STATE + 0.42, b.versions.labels[idx], fontsize=7.5,
                fontweight="bold", va="bottom", ha="left", color="#1b5e20", zorder=5, clip_on=True)
    n_dl, n_fail = len(b.downloads), len(b.failed) + len(b.cut)
    if n_dl or n_fail:
        ax.text(1.0, -0.02, f"downloads: {n_dl} complete, {n_fail} failed/cut", transform=ax.transAxes,
                ha="right", va="top", fontsize=7.5, color="#424242")

    ax.set_ylim(-0.6, 3.75)
    ax.set_yticks([Y_STATE, Y_BUSY, Y_WIN, Y_OTA], ["state", "workload", "idle window", "OTA"], fontsize=8)
    ax.tick_params(axis="y", length=0)
    _hlines(ax, (0.5, 1.5, 2.5), colors="#f0f0f0", linewidths=0.8, zorder=0)
    ax.set_ylabel(f"board\n{bid}", fontsize=7.5, fontweight="bold", labelpad=8, linespacing=1.4)


def _scatter(ax: Axes, xs: list[float], y: float, marker: str, color: str, lo: float, hi: float,
             S: float, size: float = 30) -> None:
    if not xs:
        return
    keep = _thin(xs, lo, hi)
    a = np.asarray(xs)[keep] * S
    # a marker `size` points² in area, as `scatter` sizes it, drawn as one line's markers (far cheaper)
    ax.add_line(Line2D(a, np.full(a.size, y), linestyle="none", marker=marker, markersize=math.sqrt(size),
                       color=color, markeredgewidth=0, zorder=6))


def _draw_cloud(ax: Axes, cloud: list[Entry], rig: list[Entry], lo: float, hi: float, scale: float,
                *, multi: bool) -> None:
    """Rows: rig actions, status, flash, updates, other, the app's own events (only those with data)."""
    rows: dict[str, list[tuple[float, str]]] = {"rig": [], "status": [], "flash": [], "updates": [], "other": [],
                                                "app": []}
    for e in rig:
        rows["rig"].append((e.t, _rig_label(e)))
    for e in cloud:
        row, label = _short_cloud(e)
        if multi and e.get("coreid"):
            label = f"{label} ·{str(e.get('coreid'))[-4:]}"
        rows[row].append((e.t, label))
    used = [r for r in rows if rows[r]]
    S = 1.0 / scale
    ys = {r: len(used) - 1 - i for i, r in enumerate(used)}
    px = (hi - lo) / PIXELS
    _hlines(ax, ys.values(), colors="#eeeeee", linewidths=0.8, zorder=0)
    for e in cloud:  # what the cloud sent then never reached the rig (no replay): a band over the rows
        if e.kind == STREAM_GAP:
            ax.axvspan(float(e.get("from", e.t)) * S, min(stream_gap_end(e), hi) * S, color="#ffcdd2", alpha=0.5,
                       zorder=0, linewidth=0)
    for r in used:
        pts = rows[r]
        y = ys[r]
        groups: dict[tuple[str, str], list[float]] = {}
        for t, label in pts:
            style = ("*", "#212121") if r == "rig" and label.startswith("release") else \
                ("^", "#546e7a") if r == "rig" else _cloud_style(label)
            groups.setdefault(style, []).append(t)
        for (marker, color), xs in groups.items():
            _scatter(ax, xs, y, marker, color, lo, hi, S, size=80 if marker == "*" else 34)
        # labels: the rig row always labels releases; others thinned
        if r == "app":  # thousands of one event: each name once, where it first comes
            first: dict[str, float] = {}
            for t, label in pts:
                first.setdefault(label, t)
            pts = sorted((t, label) for label, t in first.items())
        xs = [t for t, _ in pts]
        # level 0 above the marker, level 1 below it
        for idx, lv, flip in _label_positions(xs, [lb for _, lb in pts], px, levels=2, limit=80, hi=hi):
            t, label = pts[idx]
            ax.text(t * S, y + (0.17 if lv == 0 else -0.17), label, fontsize=7,
                    ha="right" if flip else "left", va="bottom" if lv == 0 else "top",
                    color="#263238", zorder=7, clip_on=True)
    ax.set_ylim(-0.6, len(used) - 0.5 + 0.2)
    ax.set_yticks([ys[r] for r in used], [("rig" if r == "rig" else f"cloud {r}") for r in used], fontsize=8)
    ax.tick_params(axis="y", length=0)
    ax.set_ylabel("cloud & rig", fontsize=8, fontweight="bold", labelpad=8)


def _log_current(ma: np.ndarray) -> bool:
    """Whether the current (mA) spans more than two decades, and so is drawn on a log scale."""
    positive = ma[ma > 0]
    return bool(positive.size > 0 and positive.max() / max(positive.min(), 1e-6) > 100)


def _draw_current(ax: Axes, t: np.ndarray, amps: np.ndarray, lo: float, hi: float, scale: float,
                  log: bool) -> None:
    """The PSU current in mA, min/max-decimated, log scale when it spans more than two decades."""
    order = np.argsort(t, kind="stable")
    t, ma = t[order], amps[order] * 1000.0
    positive = ma[ma > 0]
    if log:
        floor = max(positive.min() / 2, 1e-3)
        ma = np.maximum(ma, floor)
    gap = 10 * float(np.median(np.diff(t))) if t.size > 2 else math.inf
    tt, vv = _minmax(t, ma, lo, hi, PIXELS)
    tt, vv = _break_gaps(tt, vv, max(gap, (hi - lo) / PIXELS * 3))
    ax.plot(tt / scale, vv, color=CURRENT_COLOR, linewidth=0.8, zorder=3)
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        ax.set_ylim(bottom=min(0.0, float(np.nanmin(vv))))
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="y", color=GRID_COLOR, linewidth=0.5, which="major")
    ax.set_ylabel("current (mA)", fontsize=8, fontweight="bold")
    peak = float(np.max(ma)) if ma.size else 0.0
    off = " (log scale; 0 mA drawn at the floor)" if log and (amps <= 0).any() else " (log scale)" if log else ""
    ax.text(1.0, 1.0, f"peak {peak:.0f} mA · {t.size:,} samples{off}",
            transform=ax.transAxes, ha="right", va="bottom", fontsize=7.5, color="#424242")


def _draw_faults(fig: Figure, axes: list[Axes], faults: list[Entry], lo: float, hi: float, scale: float) -> str:
    """Red lines at each fault on every lane, light red spans for cut → restore, labels on top.

    Returns a note for the subtitle when the labels had to be thinned or summarised."""
    if not faults:
        return ""
    S = 1.0 / scale
    ends = FAULT_ENDS
    starts: list[Entry] = []
    restores: list[float] = []
    spans: list[tuple[float, float]] = []
    open_: dict[str, float] = {}
    for e in faults:
        if e.kind in ends:
            restores.append(e.t)
            for start, finish in FAULT_PAIRS.items():
                if e.kind in finish and start in open_:
                    spans.append((open_.pop(start), e.t))
            continue
        starts.append(e)
        dur = next((float(e.data[k]) for k in DURATION_KEYS if isinstance(e.data.get(k), (int, float))), None)
        if dur is not None:
            spans.append((e.t, e.t + dur))
        elif e.kind in FAULT_PAIRS:
            open_[e.kind] = e.t
    for t in open_.values():
        spans.append((t, hi))
    sx = np.asarray([e.t for e in starts]) * S
    keep = _thin([e.t for e in starts], lo, hi)
    rx = np.asarray(restores)[_thin(restores, lo, hi)] * S if restores else np.array([])
    merged = [(st * S, w * S) for st, w in _merge(spans, (hi - lo) / PIXELS)]
    dense = keep.size > 40
    for ax in axes:
        if merged:
            _rects(ax, merged, 0, 1, transform=ax.get_xaxis_transform(), facecolor=FAULT_COLOR,
                   alpha=0.07, zorder=0, linewidth=0)
        if sx.size:
            _vlines(ax, sx[keep], 0, 1, transform=ax.get_xaxis_transform(), colors=FAULT_COLOR,
                    linewidths=0.6 if dense else 1.2, alpha=0.55 if dense else 0.85, zorder=8)
        if rx.size:
            _vlines(ax, rx, 0, 1, transform=ax.get_xaxis_transform(), colors=FAULT_COLOR,
                    linewidths=0.5 if dense else 0.8, linestyles=(0, (3, 2)), alpha=0.5, zorder=8)
    labels = [f"⚡ {_fault_label(e)}" for e in starts]
    shown = _label_positions([e.t for e in starts], labels, (hi - lo) / PIXELS, levels=3, limit=60,
                             fontsize=8.2, hi=hi)
    kinds: dict[str, int] = {}
    for e in starts:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    summary = ", ".join(f"{n}× {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    if len(shown) * 2 < len(starts):   # too dense to label one by one: say what they were instead
        return f"faults: {summary} (too dense to label)"
    top = axes[0]
    for idx, lv, flip in shown:
        top.annotate(labels[idx], xy=(starts[idx].t * S, 1.0), xycoords=("data", "axes fraction"),
                     xytext=(-2 if flip else 2, 3 + 11 * lv), textcoords="offset points", fontsize=7.5,
                     color=FAULT_COLOR, ha="right" if flip else "left", va="bottom", fontweight="bold",
                     annotation_clip=False)
    if len(shown) < len(starts):
        return f"faults: {summary} ({len(starts) - len(shown)} unlabelled)"
    return ""


def _legend(fig: Figure, boards: bool, cloud: bool, psu: bool, faults: bool) -> None:
    """One legend under the plot for what the lanes can show. It depends only on which lanes there
    are, so each kind is drawn once per process and stamped onto the figure as pixels: drawing it
    was about a fifth of a picture's time, and a suite draws a picture per scenario (docs/lab.md §4)."""
    key = (boards, cloud, psu, faults)
    if key not in _LEGENDS:
        _LEGENDS[key] = _legend_pixels(*key)
    pixels = _LEGENDS[key]
    if pixels is not None:
        width = int(round(fig.get_figwidth() * fig.dpi))
        fig.figimage(pixels, xo=max((width - pixels.shape[1]) // 2, 0), yo=4, origin="upper", zorder=10)


_LEGENDS: dict[tuple[bool, bool, bool, bool], np.ndarray | None] = {}


def _legend_pixels(boards: bool, cloud: bool, psu: bool, faults: bool) -> np.ndarray | None:
    """The legend for these lanes as RGBA pixels at DPI, cropped to its ink (None: nothing to show)."""
    handles: list = []
    if boards:
        handles += [Patch(facecolor=c, label=STATE_LABELS.get(n, n),
                          hatch="////" if n == "offline" else None, edgecolor="#616161" if n == "offline" else c)
                    for n, c in STATE_COLORS.items()]
        handles += [Patch(facecolor=CLOUD_COLOR, label="cloud connected"),
                    Patch(facecolor=BUSY_COLOR, label="busy"),
                    Patch(facecolor=WINDOW_COLOR, label="idle window"),
                    Patch(facecolor=DOWNLOAD_COLOR, label="download (→ complete)"),
                    Patch(facecolor=FAILED_COLOR, label="download failed"),
                    Patch(facecolor="white", edgecolor=FAILED_COLOR, hatch="xxx", label="download cut"),
                    Patch(facecolor=SHUTDOWN_COLOR, label="shutdown"),
                    Patch(facecolor="white", edgecolor=SHUTDOWN_COLOR, hatch="////", label="reset held"),
                    Line2D([], [], marker="v", color=PENDING_COLOR, linestyle="", label="update pending"),
                    Line2D([], [], marker="v", color="#212121", linestyle="", label="reset")]
    if cloud:
        handles += [Line2D([], [], marker="*", color="#212121", linestyle="", markersize=9, label="release")]
    if psu:
        handles += [Line2D([], [], color=CURRENT_COLOR, label="current")]
    if faults:
        handles += [Line2D([], [], color=FAULT_COLOR, label="injected fault")]
    if not handles:
        return None
    rows = math.ceil(len(handles) / min(len(handles), 9))
    fig = Figure(figsize=(WIDTH_IN, 0.25 + 0.2 * rows), dpi=DPI, facecolor="none")
    FigureCanvasAgg(fig)
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 9), fontsize=7.5,
               frameon=False, bbox_to_anchor=(0.5, 0.0), handlelength=1.6, columnspacing=1.2)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    ink = np.argwhere(rgba[:, :, 3] > 0)
    if ink.size == 0:
        return None
    (top, left), (bottom, right) = ink.min(axis=0), ink.max(axis=0)
    return rgba[top:bottom + 1, left:right + 1].copy()
