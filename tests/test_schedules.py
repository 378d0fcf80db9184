"""Schedules nobody wrote: Hypothesis draws bench schedules, the simulated bench plays them, and
every verdict of `otarig.verdicts` that applies must hold on the resulting timeline.

A schedule (`otarig.schedule`) is drive/park changes, releases of each kind, the forced flag,
antenna outages, sleeps, resets and power cycles, each fired a drawn delay after its trigger —
most often a moment that matters (a download's begin or complete, the pending notice, the
guard's shutdown, a reset, a boot), with short delays weighted toward 0 — plus the world's seed.
Each example is a fresh simulated bench (the real companion firmware, the Rig API as `hil/`
scenarios use it). A failing schedule is shrunk by Hypothesis to a minimal one and written to
`$OTARIG_SCHEDULES_FOUND` (default: a file in the temp folder) for adding to
tests/schedules/regressions.json, which `test_regression_schedule` replays.

Deterministic: derandomized, no example database. CI budget: `OTARIG_SCHEDULE_EXAMPLES`
examples (default 8, about 30 s). Long profile: `bench/schedules.py --examples N --seed S`
(or `OTARIG_SCHEDULES_LONG=N`, `OTARIG_SCHEDULE_SEED=S`), which also prints the figures.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from otarig.compose import compose
from otarig.config import load
from otarig.rig import Rig
from otarig.schedule import (
    ACTIONS,
    MOMENTS,
    VERSIONS,
    Outcome,
    Schedule,
    ScheduleError,
    Step,
    run_schedule,
)
from otarig.strategy import BaselineStrategy

REPO = Path(__file__).resolve().parents[1]
BENCH_FILE = REPO / "bench_config.toml"
REGRESSIONS = Path(__file__).parent / "schedules" / "regressions.json"
LONG = int(os.environ.get("OTARIG_SCHEDULES_LONG", "0"))
EXAMPLES = LONG or int(os.environ.get("OTARIG_SCHEDULE_EXAMPLES", "8"))
FOUND = Path(os.environ.get("OTARIG_SCHEDULES_FOUND", Path(tempfile.gettempdir()) / "otarig-schedules-found.json"))
STATS = os.environ.get("OTARIG_SCHEDULE_STATS")
#: a shipped defect (firmware/mutants/NN-*.patch) instead of the good firmware: shows the family can fail
MUTANT = int(os.environ.get("OTARIG_SCHEDULE_MUTANT", "0"))

#: what this process played: schedules, verdicts checked, failures (for bench/schedules.py)
_stats = {"schedules": 0, "verdicts": 0, "failed_schedules": 0, "refused_steps": 0, "actions": {}}


def play_on_sim_bench(schedule: Schedule, workdir: Path, *, mutant: int = MUTANT) -> Outcome:
    """A fresh simulated bench from the repository's bench file, at its baseline, plays `schedule`."""
    cfg = load(BENCH_FILE)
    workdir.mkdir(parents=True, exist_ok=True)
    rig = Rig(cfg, compose(cfg, BENCH_FILE, workdir, seed=schedule.seed, mutant=mutant), workdir, schedule.seed)
    try:
        BaselineStrategy(cfg.simulation.firmware_version).transition(rig)
        rig.start_scenario()
        outcome = run_schedule(rig, schedule)
    finally:
        rig.close()
    _stats["schedules"] += 1
    _stats["verdicts"] += len(outcome.verdicts)
    _stats["failed_schedules"] += bool(outcome.failed)
    _stats["refused_steps"] += len(outcome.refused)
    for s in schedule.steps:
        _stats["actions"][s.action] = _stats["actions"].get(s.action, 0) + 1
    if STATS:
        Path(STATS).write_text(json.dumps(_stats, indent=2) + "\n")
    return outcome


def _explain(schedule: Schedule, outcome: Outcome) -> str:
    return (f"schedule {schedule.to_json()}\n" + "\n\n".join(x.explain() for x in outcome.failed))


# -- the strategy: schedules weighted toward the moments that matter ---------------------------------
_near = st.one_of(st.sampled_from([0.0, 0.05, 0.2, 0.5, 1.0, 2.0, 5.0]), st.floats(0, 30, allow_nan=False))
_later = st.one_of(st.sampled_from([1.0, 10.0, 30.0, 120.0, 600.0]), st.floats(0, 900, allow_nan=False))
_SECONDS = {
    "outage": st.one_of(st.sampled_from([1.0, 5.0, 20.0, 60.0, 300.0]), st.floats(0.5, 900, allow_nan=False)),
    "sleep_stop": st.sampled_from([5, 30, 120, 600]),
    "sleep_hibernate": st.sampled_from([5, 30, 120, 600]),
    "power_cycle": st.sampled_from([0.1, 0.5, 2.0, 10.0]),
}


#: how often each action is drawn: driving (the app busy) is what an OTA guard must respect, so it
#: comes often (a uniform draw drove in 1 step of 13 and let a guard that ignores the window pass)
_WEIGHTS = {"drive": 4, "park": 2, "release_standard": 2, "release_intelligent": 2, "power_cycle": 2}
_ANY_ACTION = st.sampled_from([a for a in ACTIONS for _ in range(_WEIGHTS.get(a, 1))])


@st.composite
def steps(draw: st.DrawFn, action: st.SearchStrategy[str] = _ANY_ACTION) -> Step:
    act = draw(action)
    trigger = draw(st.sampled_from(["time", "time", *MOMENTS]))
    delay = draw(_later if trigger == "time" else _near)
    kind = ACTIONS[act]
    arg = draw(st.sampled_from(VERSIONS)) if kind == "version" else \
        draw(_SECONDS[act]) if kind == "seconds" else None
    return Step(act, trigger, round(delay, 3), arg)


_RELEASES = st.sampled_from([a for a, kind in ACTIONS.items() if kind == "version"])


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    """One release at least (the moments that matter follow from it), among up to 7 other steps,
    often with the app driving from the start."""
    others = draw(st.lists(steps(), max_size=7))
    release = draw(steps(_RELEASES))
    at = draw(st.integers(0, len(others)))
    start = [Step("drive")] if draw(st.booleans()) else []
    return Schedule(draw(st.integers(0, 2**16)), tuple(start + others[:at] + [release] + others[at:]))


_profile = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not LONG,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.timeout(0 if LONG else 600)
@seed(int(os.environ.get("OTARIG_SCHEDULE_SEED", "0")))
@_profile
@given(schedule=schedules())
def test_drawn_schedules_keep_every_verdict(schedule: Schedule) -> None:
    """Every drawn schedule on the good firmware: each applicable verdict holds. A failure is saved
    (the last one written is Hypothesis's shrunk example) for tests/schedules/regressions.json."""
    with tempfile.TemporaryDirectory(prefix="otarig-schedule-") as tmp:
        outcome = play_on_sim_bench(schedule, Path(tmp))
    if outcome.failed:
        FOUND.write_text(json.dumps({"why": "found by test_drawn_schedules_keep_every_verdict",
                                     "schedule": schedule.to_dict()}, indent=2) + "\n")
        raise AssertionError(f"{_explain(schedule, outcome)}\n(saved to {FOUND})")


def _regressions() -> list[dict]:
    return json.loads(REGRESSIONS.read_text())


@pytest.mark.parametrize("entry", _regressions(), ids=lambda e: e["name"])
def test_regression_schedule(entry: dict, tmp_path: Path) -> None:
    """A schedule kept because it once broke a verdict (or was picked by hand as a hard case):
    on the good firmware it must keep every verdict; an entry with `mutant` is one the family
    found and shrank on that shipped defect, and must still catch it (`catches`: the verdict)."""
    schedule = Schedule.from_dict(entry["schedule"])
    mutant = int(entry.get("mutant", 0))
    outcome = play_on_sim_bench(schedule, tmp_path, mutant=mutant)
    assert len(outcome.verdicts) >= 5
    if not mutant:
        assert not outcome.failed, _explain(schedule, outcome)
    else:
        assert entry["catches"] in [x.name for x in outcome.failed], [x.explain() for x in outcome.verdicts]


def test_a_bad_schedule_is_refused_naming_the_step_and_the_fix() -> None:
    with pytest.raises(ScheduleError, match=r"step 1: unknown action 'explode'; known: drive"):
        Schedule.from_dict({"seed": 1, "steps": [{"action": "drive"}, {"action": "explode"}]})
    with pytest.raises(ScheduleError, match=r"step 0: release_standard needs a version in \(2, 3\)"):
        Schedule(1, (Step("release_standard", arg=7),)).check()
    with pytest.raises(ScheduleError, match="expected"):
        Schedule.from_dict({"steps": []})


def test_a_schedule_survives_json() -> None:
    s = Schedule(5, (Step("drive"), Step("power_cycle", "begin", 0.2, 0.5), Step("release_intelligent", arg=2)))
    assert Schedule.from_dict(json.loads(s.to_json())) == s
