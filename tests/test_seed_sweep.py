"""The short seed sweep CI runs (bench/seeds.py is the long one: 100 seeds, the whole suite).

Three seeds of `otarig run` (real child processes, two at a time) over a few quick scenarios on
the simulated bench with the good firmware: no scenario may fail on any seed, and every seed must
give each scenario its own timeline — the seed drives the bench's random choices
(`otarig.sim.randomness`), so three seeds are three interleavings.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = "lock_and_flash or power_cut_during_ota or forced_update"


def _seeds_module():
    spec = importlib.util.spec_from_file_location("otarig_bench_seeds", REPO / "bench" / "seeds.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_three_seeds_no_failure_and_one_timeline_per_seed(tmp_path: Path) -> None:
    seeds = _seeds_module()
    result = seeds.sweep([1, 2, 3], tmp_path, jobs=2, keyword=SCENARIOS, timeout_s=600)
    assert [r.returncode for r in result.runs] == [0, 0, 0], [r.tail for r in result.runs]
    names = result.scenarios()
    assert len(names) >= 5, names  # lock_and_flash, forced_update, three power-cut phases
    assert result.failures() == {}
    assert result.distinct_timelines() == {name: 3 for name in names}


def test_the_sweep_refuses_more_than_two_jobs(tmp_path: Path) -> None:
    """Two cores: a third concurrent run is refused with the reason, before anything starts."""
    seeds = _seeds_module()
    try:
        seeds.sweep([1], tmp_path, jobs=3)
    except ValueError as exc:
        assert "2 cores" in str(exc)
    else:
        raise AssertionError("jobs=3 was accepted")
    assert not any(tmp_path.iterdir())
