"""Timeline pictures drawn off the critical path.

Drawing a scenario's `timeline.png` (matplotlib, about half a second) used to hold up the next
scenario. `TimelinePictures` hands each picture to one worker process instead (`python -m
otarig.pictures`), which reads the `timeline.jsonl` the plugin has just written and draws from it
while the bench runs the next scenario; the session waits for the last ones before the report
embeds them. The worker draws exactly what `plot_timeline` draws in this process (the JSON lines
round-trip every entry), so the pictures stay deterministic. In a pool run (`otarig.pool`) the
pool's controller owns the one worker and draws every pool worker's pictures, each named by its
scenario's teardown report.

The worker takes one request per line on its stdin and ends at end of input. It ignores SIGINT and
SIGTERM, which a terminal or CI sends to the whole process group: the run's teardown finishes the
pictures and closes its input. Where no worker can be started, or it died, pictures are drawn in
this process.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path


def draw(jsonl: Path, png: Path, title: str) -> Path:
    """`png` from the timeline written to `jsonl` (in the worker, or inline)."""
    from .plot import plot_timeline
    from .timeline import Timeline

    return plot_timeline(Timeline.read_jsonl(jsonl), png, title=title)


def _draw_reporting(jsonl: Path, png: Path, title: str) -> None:
    try:
        draw(jsonl, png, title)
    except Exception as exc:  # noqa: BLE001 - a picture that fails must not hide a test result
        print(f"otarig: timeline plot failed for {png}: {exc}", file=sys.stderr, flush=True)


class TimelinePictures:
    """One worker process drawing `timeline.png` files in the order they are asked for."""

    def __init__(self) -> None:
        self._worker: subprocess.Popen[str] | None = None
        self._asked: list[tuple[Path, Path, str]] = []
        self._inline = False

    def start(self) -> None:
        """Start the worker now, so it has imported matplotlib by the first picture."""
        if self._worker is not None or self._inline:
            return
        try:
            self._worker = subprocess.Popen([sys.executable, "-m", "otarig.pictures"], stdin=subprocess.PIPE,
                                            text=True, bufsize=1)
        except OSError as exc:  # no processes here: draw in this process
            print(f"otarig: drawing timeline pictures inline ({exc})", file=sys.stderr)
            self._inline = True

    def submit(self, jsonl: Path, png: Path, title: str) -> None:
        """Draw `png` from `jsonl` soon; `close` returns once it is on disk (or reported failed)."""
        self.start()
        if self._worker is not None and self._worker.stdin is not None:
            try:
                self._worker.stdin.write(json.dumps([str(jsonl), str(png), title]) + "\n")
                self._asked.append((jsonl, png, title))
                return
            except OSError:  # the worker died: this one, and any it left undone, are drawn at `close`
                self._asked.append((jsonl, png, title))
                return
        _draw_reporting(jsonl, png, title)

    def close(self) -> None:
        """Until every picture asked for is drawn (failures are reported, never raised); the worker ends."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        try:
            if worker.stdin is not None:
                worker.stdin.close()
        except OSError:
            pass
        code = worker.wait()
        asked, self._asked = self._asked, []
        if code != 0:  # it died on the way: what it left undone is drawn here
            print(f"otarig: the timeline picture worker stopped (exit {code}); drawing the rest here",
                  file=sys.stderr)
            for jsonl, png, title in asked:
                if not png.exists():
                    _draw_reporting(jsonl, png, title)


def _serve() -> None:
    """The worker: draw each `[jsonl, png, title]` line of stdin until it ends."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    try:
        # below the bench in the scheduler: a picture waits for a core the scenarios leave idle
        # (with 2 pool workers on 2 cores that is the run's tail, when one worker has finished)
        os.nice(10)
    except OSError:
        pass
    import gc

    from . import plot  # noqa: F401 - matplotlib, imported before the first request arrives

    # matplotlib, numpy and PIL live as long as the worker: frozen out of its full garbage
    # collections, which each walked them again (~0.3 CPU-s a run, docs/lab.md §4)
    gc.collect()
    gc.freeze()

    for line in sys.stdin:
        jsonl, png, title = json.loads(line)
        # what a picture allocates (its timeline's entries, its artists) is garbage together once the
        # PNG is written: collected then, once, not again and again while it is built (~6 ms a picture)
        gc.disable()
        try:
            _draw_reporting(Path(jsonl), Path(png), title)
        finally:
            gc.enable()
            gc.collect(1)


if __name__ == "__main__":
    _serve()
