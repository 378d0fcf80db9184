"""The fleet rollout planner: what to expect when a release goes out (issue #6).

`plan(fleet, strategy)` simulates one release on a fleet and returns a `RolloutResult`; small
fleets run the per-device event model, large ones its vectorised twin (same rules, same draws).
"""
from __future__ import annotations

from typing import Callable

from .common import RolloutResult
from .fleet import Cohort, Fleet, FleetError, Release, load, parse
from .strategies import ALL, PlannerParams, Strategy, parse_strategies

#: Above this many devices `model="auto"` uses the vectorised model.
EVENT_MODEL_MAX_DEVICES = 2_000


def plan(fleet: Fleet, strategy: Strategy, params: PlannerParams | None = None, *, model: str = "auto",
         progress: Callable[[float], None] | None = None) -> RolloutResult:
    """Simulate one release of `fleet` under `strategy`."""
    from . import aggregate_model, event_model

    if model == "auto":
        model = "event" if fleet.size <= EVENT_MODEL_MAX_DEVICES else "aggregate"
    if model == "event":
        return event_model.simulate(fleet, strategy, params, progress)
    if model == "aggregate":
        return aggregate_model.simulate(fleet, strategy, params, progress)
    raise ValueError(f"model = {model!r}: expected auto, event or aggregate")


__all__ = ["ALL", "Cohort", "Fleet", "FleetError", "PlannerParams", "Release", "RolloutResult", "Strategy",
           "load", "parse", "parse_strategies", "plan"]
