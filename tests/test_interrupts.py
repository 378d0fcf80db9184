"""Interrupted processes, over the real channel: signals sent to `otarig sim` and `otarig run`
running as subprocesses, as `timeout`, CI and a person at the keyboard send them.

`otarig sim` must stop on any number of SIGINT/SIGTERM, within a bound, and leave no world folder
(a temporary `otarig-world-*` folder holding its ports). An interrupted `otarig run` must leave a
consistent record marked interrupted (never passed), a junit.xml that agrees, and a non-zero exit
status (128 + the signal); the same for a scenario that crashes.

These tests wait on real processes in wall time; every wait is bounded.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OTARIG = [sys.executable, "-m", "otarig.cli"]
#: how long a stopping `otarig sim` may take (it stops within a pacer tick and a close)
SIM_STOP_BOUND_S = 30
#: how long an interrupted `otarig run` may take to tear down and write its record
RUN_STOP_BOUND_S = 180


# -- otarig sim -------------------------------------------------------------------------------------

def _start_sim(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([*OTARIG, "sim", "--json"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline() if proc.stdout else ""
    if not first:
        proc.kill()
        pytest.fail(f"otarig sim did not start: {proc.communicate()[1][-2000:]}")
    info = json.loads(first)
    world = Path(info["boards"][0]["port"]).parent.parent  # <world>/dev/<device id>
    assert world.name.startswith("otarig-world-"), world
    assert Path(info["bench_companion"]["port"]).is_relative_to(world)
    return proc, world


@pytest.mark.parametrize("first, second", [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGTERM),
                                           (signal.SIGTERM, signal.SIGINT)],
                         ids=["TERM+TERM", "INT+TERM", "TERM+INT"])
def test_otarig_sim_stops_on_two_quick_signals_and_leaves_no_world_folder(tmp_path: Path, first: int,
                                                                           second: int) -> None:
    """Two signals in quick succession (what `timeout` and CI do), at varying instants after the
    bench is up, repeated: it exits every time within the bound and its world folder is gone."""
    failures = []
    for i in range(20):
        proc, world = _start_sim(tmp_path)
        try:
            time.sleep((i % 5) * 0.01)  # vary where the signals land: pacing, serving, sleeping
            proc.send_signal(first)
            if i % 2:
                time.sleep(0.001 * (i % 7))
            proc.send_signal(second)
            try:
                proc.wait(SIM_STOP_BOUND_S)
            except subprocess.TimeoutExpired:
                failures.append(f"try {i}: still running {SIM_STOP_BOUND_S} s after two signals")
                continue
            if world.exists():
                failures.append(f"try {i}: exit {proc.returncode}, world folder left behind: {world}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
    assert not failures, "\n".join(failures)


def test_otarig_sim_stops_on_a_burst_of_signals(tmp_path: Path) -> None:
    """Ten signals back to back (a held Ctrl-C, or several supervisors): still one clean stop."""
    for _ in range(3):
        proc, world = _start_sim(tmp_path)
        for k in range(10):
            try:
                proc.send_signal(signal.SIGINT if k % 2 else signal.SIGTERM)
            except ProcessLookupError:
                break
        try:
            proc.wait(SIM_STOP_BOUND_S)
        finally:
            if proc.poll() is None:
                proc.kill()
            out, err = proc.communicate()
        assert proc.returncode == 0, err[-2000:]
        assert not world.exists(), f"world folder left behind: {world}"
        assert "Traceback" not in err, err[-2000:]
