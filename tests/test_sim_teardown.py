"""A scenario's simulated bench is gone once the scenario is: nothing keeps its world alive.

`otarig run` composes a fresh world per scenario; a world still referenced after its scenario
(aiohttp's per-process middleware cache holding the Cloud API server, the tester board's parked
MicroPython greenlet holding its board) stayed in memory for the rest of the run, so every garbage
collection walked every earlier scenario's world and the run's memory grew with each scenario.
"""
from __future__ import annotations

import gc
import weakref
from pathlib import Path

from otarig.compose import compose
from otarig.config import load

REPO = Path(__file__).resolve().parents[1]


def test_a_closed_simulated_bench_is_freed_with_its_world(tmp_path: Path) -> None:
    bench_file = REPO / "bench_config.toml"
    cfg = load(bench_file)
    assert cfg.simulated and cfg.bench_companion is not None  # the tester board and the HTTP API are in it
    parts = compose(cfg, bench_file, tmp_path, seed=1)
    bench = weakref.ref(parts.sim.bench)
    world = weakref.ref(parts.sim.bench.world)
    # composing reached the Cloud API over HTTP (its middleware ran) and booted the tester's program
    parts.close()
    del parts
    gc.collect()
    assert bench() is None, "the closed simulated bench is still referenced"
    assert world() is None, "the closed bench's world is still referenced"
