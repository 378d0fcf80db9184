"""Timeline pictures drawn in a worker process (`otarig.pictures`) and the JSON lines they are
drawn from: the same bytes as a picture drawn in the run's own process, and a picture that cannot
be drawn is reported without failing anything."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from otarig.pictures import TimelinePictures
from otarig.plot import plot_timeline
from otarig.timeline import Timeline

BOARD = "board:e00fce680000000000000001"


@dataclass(frozen=True)
class _Reading:
    volts: float
    amps: float


def _timeline() -> Timeline:
    tl = Timeline()
    tl.add(0.5, BOARD, "hello", {"product_version": 1, "proto": 1})
    tl.add(1.0, BOARD, "sys", {"event": "cloud_status", "param": "connected"}, device_t=1000)
    tl.add(2.0, BOARD, "app", {"action": "workload", "state": "busy"}, device_t=2000)
    tl.add(3.0, "rig", "release", {"version": 2, "intelligent": True})
    tl.add(3.5, "cloud", "particle/device/updates/pending", {"data": "true", "version": 1})
    for i in range(40):
        tl.add(4.0 + i * 0.25, "psu", "sample", {"volts": 5.0, "amps": 0.04 + (i % 7) * 0.01})
    tl.add(8.0, "fault", "power_cut", {"board": BOARD.split(":")[1], "tuple": (1, 2.5)})
    tl.add(9.0, BOARD, "guard", {"action": "shutdown_complete", "records": 3}, device_t=9000)
    return tl


def test_write_jsonl_writes_what_asdict_wrote_and_reads_back(tmp_path: Path) -> None:
    tl = _timeline()
    tl.add(9.5, "psu", "reading", {"reading": _Reading(5.0, 0.1)})  # a dataclass inside data
    path = tmp_path / "timeline.jsonl"
    tl.write_jsonl(path)
    old_format = [json.dumps(asdict(e), sort_keys=True, separators=(",", ":")) for e in tl]
    assert path.read_text().splitlines() == old_format
    back = Timeline.read_jsonl(path)
    assert [(e.t, e.source, e.kind, e.device_t) for e in back] == [(e.t, e.source, e.kind, e.device_t) for e in tl]
    assert back.select(kind="reading")[0].data == {"reading": {"volts": 5.0, "amps": 0.1}}


def test_write_jsonl_refuses_what_json_cannot_hold(tmp_path: Path) -> None:
    tl = Timeline()
    tl.add(0.0, "rig", "odd", {"what": object()})
    with pytest.raises(TypeError, match="object in a timeline entry is not JSON serializable"):
        tl.write_jsonl(tmp_path / "timeline.jsonl")


def test_the_worker_draws_the_picture_the_run_would_have_drawn(tmp_path: Path) -> None:
    tl = _timeline()
    jsonl = tmp_path / "a" / "timeline.jsonl"
    jsonl.parent.mkdir()
    tl.write_jsonl(jsonl)
    inline = plot_timeline(tl, tmp_path / "inline.png", title="scenario_a")
    pictures = TimelinePictures()
    pictures.start()
    try:
        pictures.submit(jsonl, tmp_path / "a" / "timeline.png", "scenario_a")
        pictures.submit(jsonl, tmp_path / "b" / "timeline.png", "scenario_b")
    finally:
        pictures.close()
    assert (tmp_path / "a" / "timeline.png").read_bytes() == inline.read_bytes()
    assert (tmp_path / "b" / "timeline.png").read_bytes() != inline.read_bytes()  # another title


def test_a_picture_that_cannot_be_drawn_is_reported_and_the_rest_are_drawn(tmp_path: Path,
                                                                         capfd: pytest.CaptureFixture) -> None:
    good = tmp_path / "good.jsonl"
    _timeline().write_jsonl(good)
    pictures = TimelinePictures()
    pictures.submit(tmp_path / "missing.jsonl", tmp_path / "missing.png", "missing")
    pictures.submit(good, tmp_path / "good.png", "good")
    pictures.close()
    err = capfd.readouterr().err  # the worker writes to the run's stderr
    assert f"otarig: timeline plot failed for {tmp_path / 'missing.png'}" in err
    assert "missing.jsonl" in err  # the cause: the file it was to be drawn from
    assert not (tmp_path / "missing.png").exists()
    assert (tmp_path / "good.png").read_bytes().startswith(b"\x89PNG")


def test_what_a_dead_worker_left_undone_is_drawn_at_close(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    jsonl = tmp_path / "timeline.jsonl"
    _timeline().write_jsonl(jsonl)
    pictures = TimelinePictures()
    pictures.start()
    assert pictures._worker is not None
    pictures._worker.kill()  # as the OOM killer or a stray `kill` would
    pictures._worker.wait()
    pictures.submit(jsonl, tmp_path / "a.png", "a")
    pictures.submit(jsonl, tmp_path / "b.png", "b")
    pictures.close()
    assert "the timeline picture worker stopped (exit -9); drawing the rest here" in capfd.readouterr().err
    assert (tmp_path / "a.png").is_file() and (tmp_path / "b.png").is_file()


def test_without_a_worker_pictures_are_drawn_in_this_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    """A machine where no process can be started (mocked: starting one fails)."""
    import otarig.pictures as pictures_module

    def no_processes(*args: object, **kwargs: object) -> None:
        raise OSError("no processes here")

    monkeypatch.setattr(pictures_module.subprocess, "Popen", no_processes)
    jsonl = tmp_path / "timeline.jsonl"
    _timeline().write_jsonl(jsonl)
    pictures = TimelinePictures()
    pictures.submit(jsonl, tmp_path / "timeline.png", "inline")
    assert (tmp_path / "timeline.png").is_file()  # drawn before submit returned
    pictures.close()
    assert "drawing timeline pictures inline (no processes here)" in capsys.readouterr().err
