"""The SimPy yardstick (bench/rollout_simpy.py, issue 15) follows the planner's rules: same draws,
and on a 10,000-device fleet the same adoption percentiles within the stated tolerance."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("simpy", reason="the SimPy yardstick needs the bench extra: pip install -e '.[bench]'")

from otarig import rollout  # noqa: E402
from otarig.rollout import event_model, patterns, report  # noqa: E402
from otarig.rollout.strategies import Strategy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import rollout_simpy  # noqa: E402

DEFAULT = ROOT / "examples" / "fleets" / "default.toml"


def test_scalar_draws_are_the_planner_draws():
    """The yardstick's per-device draws are `patterns.u01`'s, including negative k (window days
    before day 0) and seeds wider than 32 bits."""
    rng = np.random.default_rng(7)
    for seed in (1, 12345, 2**40 + 3):
        gid = rng.integers(0, 10_000_000, 50)
        k = rng.integers(-300, 3000, 50)
        for stream in (patterns.S_PC, patterns.S_LAG, patterns.S_WIN):
            want = patterns.u01(seed, stream, gid, k)
            heads = [rollout_simpy.draw_head(seed, stream, int(g)) for g in gid]
            assert heads == patterns.draw_key(seed, stream, gid).tolist()  # the bulk-hashed heads it uses
            got = [rollout_simpy.draw(h, int(kk)) for h, kk in zip(heads, k)]
            assert np.array_equal(want, np.array(got))


@pytest.mark.parametrize("strategy", [Strategy.STANDARD, Strategy.FORCED], ids=lambda s: s.value)
def test_simpy_yardstick_is_the_event_model_device_by_device(strategy):
    """On every kind of cohort, the yardstick and the reference event model (both whole ms, both
    (time, insertion) order) give each device the very same timeline."""
    from test_rollout import mixed_fleet

    fleet = mixed_fleet()
    ev = event_model.simulate(fleet, strategy)
    simp = rollout_simpy.simulate(fleet, strategy)
    for f in ("updated_at", "began_outside", "ended_in_window", "full_handshakes", "resumes", "ota_bytes",
              "retry_bytes", "retries"):
        assert np.array_equal(getattr(ev, f), getattr(simp, f)), f


def test_batches_of_devices_give_the_same_result_as_one_environment():
    """Devices are independent: batches (cut across cohorts here) change no device's outcome."""
    fleet = rollout.load(DEFAULT).scaled(2_000)
    whole = rollout_simpy.simulate(fleet, Strategy.STANDARD_DAILY)
    batched = rollout_simpy.simulate(fleet, Strategy.STANDARD_DAILY, chunk=333)
    for f in ("updated_at", "began_outside", "ended_in_window", "full_handshakes", "resumes", "ota_bytes",
              "retry_bytes", "retries"):
        assert np.array_equal(getattr(whole, f), getattr(batched, f)), f
    assert whole.extra["events"] == batched.extra["events"] > 2_000


@pytest.fixture(scope="module")
def fleet_10k() -> rollout.Fleet:
    return rollout.load(DEFAULT).scaled(10_000)


@pytest.mark.parametrize("strategy", list(Strategy), ids=lambda s: s.value)
def test_simpy_yardstick_agrees_with_the_planner_on_10000_devices(fleet_10k, strategy):
    plan = rollout.plan(fleet_10k, strategy)
    assert plan.model == "aggregate"
    simp = rollout_simpy.simulate(fleet_10k, strategy)
    sp, ss = report.summary(plan), report.summary(simp)
    for q in ("50", "90", "99", "100"):
        a, b = sp["hours_to"][q], ss["hours_to"][q]
        assert a is not None and b is not None
        assert abs(a - b) <= rollout_simpy.AGREEMENT_H, (q, a, b)
    assert sp["not_reached"] == ss["not_reached"]
    assert sp["began_outside_idle"] == ss["began_outside_idle"]
    assert sp["ended_in_same_idle_window"] == ss["ended_in_same_idle_window"]
    for k in ("full_handshakes", "resumes", "retry_count", "fleet_total"):
        assert sp["data_bytes"][k] == pytest.approx(ss["data_bytes"][k], rel=0.005), k
    # per device, not only the percentiles: every device updates within a second of its SimPy twin
    both = np.isfinite(plan.updated_at) & np.isfinite(simp.updated_at)
    assert np.array_equal(np.isfinite(plan.updated_at), np.isfinite(simp.updated_at))
    assert np.abs(plan.updated_at[both] - simp.updated_at[both]).max() <= 1_000
