"""Bench schedules as data: what the rig does to the device under test, and when.

A `Schedule` is a world seed and a list of `Step`s: drive/park changes, releases of each kind,
the forced flag, antenna outages, sleeps, resets and power cycles. A step fires `delay_s` after
its trigger: the previous step ("time"), or the next moment the board reports — a download's
`begin` or `complete`, a pending update, the guard's shutdown, a reset, a boot — so a schedule can
land a fault exactly where OTA bugs live. `run_schedule` plays one through the `Rig` API (so it
only does what every bench can), then settles the bench (parked, powered, in coverage, one power
cycle for a full handshake) and returns every verdict of `otarig.verdicts` that applies.

Schedules are written by tests/test_schedules.py (Hypothesis draws them; failing ones shrink and
are kept in tests/schedules/regressions.json, replayed by the same test).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from . import verdicts as v
from .board import ExpectTimeout
from .rig import Rig
from .verdicts import Verdict

#: what a step can do, and the kind of argument it takes
ACTIONS: dict[str, str] = {
    "drive": "",                   # workload busy: the guard closes the idle window
    "park": "",                    # workload idle
    "release_standard": "version",  # product default, Standard release (next full handshake)
    "release_intelligent": "version",  # product default, Intelligent release (at once, pending)
    "lock_flash": "version",       # lock the device to a version and flash now
    "force_on": "",                # firmware_updates_forced = true
    "force_off": "",
    "outage": "seconds",           # antenna off for that long (the tester board's RF switch)
    "sleep_stop": "seconds",       # the app sleeps (STOP) for that long
    "sleep_hibernate": "seconds",  # HIBERNATE, woken by its timer
    "reset": "",                   # System.reset() from the app
    "power_cycle": "seconds",      # VIN and VBUS off for that long
    "wait": "",                    # nothing: a pause in the schedule
}

#: board moments a step can wait for: (event name, sys event or guard action, param)
MOMENTS: dict[str, tuple[str, str | None, str | None]] = {
    "begin": ("sys", "firmware_update", "begin"),
    "complete": ("sys", "firmware_update", "complete"),
    "pending": ("sys", "firmware_update_pending", None),
    "shutdown": ("guard", "shutdown_begin", None),
    "reset": ("sys", "reset", None),
    "boot": ("hello", None, None),
    "connected": ("sys", "cloud_status", "connected"),
}
TRIGGERS = ("time", *MOMENTS)
#: how long a step waits for its moment before it fires anyway (bench seconds)
MOMENT_TIMEOUT_S = 300.0
#: versions a schedule releases (the baseline runs 1)
VERSIONS = (2, 3)
#: the image size the releases use: docs/reference/particle-ota.md §5's 100 KB application
APP_SIZE = 100 * 1024
#: after the schedule: parked, powered and in coverage this long, so every release can land
SETTLE_S = 1800.0


class ScheduleError(ValueError):
    """A schedule that cannot be played: names the bad step and what would be accepted."""


@dataclass(frozen=True)
class Step:
    action: str
    trigger: str = "time"
    delay_s: float = 0.0
    arg: float | int | None = None

    def check(self, index: int) -> None:
        if self.action not in ACTIONS:
            raise ScheduleError(f"step {index}: unknown action {self.action!r}; known: {', '.join(ACTIONS)}")
        if self.trigger not in TRIGGERS:
            raise ScheduleError(f"step {index}: unknown trigger {self.trigger!r}; known: {', '.join(TRIGGERS)}")
        if not 0 <= self.delay_s <= 7 * 86400:
            raise ScheduleError(f"step {index}: delay_s {self.delay_s} is not within 0 .. 7 days")
        kind = ACTIONS[self.action]
        if kind == "version" and self.arg not in VERSIONS:
            raise ScheduleError(f"step {index}: {self.action} needs a version in {VERSIONS}, got {self.arg!r}")
        if kind == "seconds" and not (isinstance(self.arg, (int, float)) and 0 < self.arg <= 3600):
            raise ScheduleError(f"step {index}: {self.action} needs seconds in (0, 3600], got {self.arg!r}")


@dataclass(frozen=True)
class Schedule:
    seed: int
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def check(self) -> Schedule:
        for i, step in enumerate(self.steps):
            step.check(i)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "steps": [asdict(s) for s in self.steps]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        try:
            steps = tuple(Step(**s) for s in data["steps"])
            return cls(int(data["seed"]), steps).check()
        except (KeyError, TypeError) as exc:
            raise ScheduleError(f"not a schedule ({exc}); expected {{'seed': int, 'steps': [{{'action': ..., "
                                "'trigger': ..., 'delay_s': ..., 'arg': ...}}]}}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def uses_faults(self) -> bool:
        """Whether anything beyond releases and workload happens (outages, sleeps, resets, power)."""
        return any(s.action in ("outage", "sleep_stop", "sleep_hibernate", "reset", "power_cycle")
                   for s in self.steps)


@dataclass
class Outcome:
    """What a played schedule left: the verdicts checked, and the steps that could not act."""

    verdicts: list[Verdict]
    expected_version: int
    refused: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Verdict]:
        return [x for x in self.verdicts if not x.passed]


class _Player:
    """Plays one schedule on a rig, keeping what the cloud was told (to know what must land)."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.uploaded: set[int] = set()
        self.default: int | None = None
        self.locked: int | None = None
        self.forced = False
        self.refused: list[str] = []

    def wait_for(self, trigger: str, delay_s: float) -> None:
        rig = self.rig
        if trigger != "time":
            name, what, param = MOMENTS[trigger]
            rig.board.expect_from_now()  # the next such moment, not one already past

            def match(e: Any) -> bool:
                if e.name != name:
                    return False
                if name == "sys":
                    return e.get("event") == what and (param is None or e.get("param") == param)
                return name != "guard" or e.get("action") == what
            try:
                rig.expect(match, MOMENT_TIMEOUT_S)
            except ExpectTimeout:
                rig.timeline.add(rig.now(), "rig", "schedule", {"moment_not_seen": trigger})
        if delay_s > 0:
            rig.wait(delay_s)

    def release(self, version: int) -> None:
        if version not in self.uploaded:
            self.rig.upload(self.rig.firmware(version, size=APP_SIZE))
            self.uploaded.add(version)

    def act(self, step: Step) -> None:
        rig, a = self.rig, step.action
        if a in ("release_standard", "release_intelligent"):
            self.release(int(step.arg))  # type: ignore[arg-type]
            rig.release(int(step.arg), intelligent=a == "release_intelligent")  # type: ignore[arg-type]
            self.default = int(step.arg)  # type: ignore[arg-type]
        elif a == "lock_flash":
            self.release(int(step.arg))  # type: ignore[arg-type]
            rig.lock(int(step.arg), flash=True)  # type: ignore[arg-type]
            self.locked = int(step.arg)  # type: ignore[arg-type]
        elif a in ("force_on", "force_off"):
            self.forced = self.forced or a == "force_on"
            rig.force(a == "force_on")
        elif a == "outage":
            rig.link_outage(float(step.arg))  # type: ignore[arg-type]
        elif a == "power_cycle":
            rig.power_cycle(float(step.arg))  # type: ignore[arg-type]
        else:
            self.board_command(step)

    def board_command(self, step: Step) -> None:
        """A command to the app; a board that is off, asleep or rebooting cannot take it (noted)."""
        rig, a = self.rig, step.action
        keys: dict[str, Any]
        if a in ("drive", "park"):
            cmd, keys = "workload", {"state": "busy" if a == "drive" else "idle"}
        elif a in ("sleep_stop", "sleep_hibernate"):
            cmd, keys = "sleep", {"mode": a.split("_")[1], "seconds": max(1, round(float(step.arg)))}  # type: ignore[arg-type]
        elif a == "reset":
            cmd, keys = "reset", {}
        else:
            return
        try:
            rig.command(cmd, **keys)
        except Exception as exc:  # noqa: BLE001 - the board's state decides; the schedule goes on
            self.refused.append(f"{a}: {type(exc).__name__}")
            rig.timeline.add(rig.now(), "rig", "schedule", {"refused": a, "why": type(exc).__name__})

    def settle(self) -> None:
        """Parked, in coverage and powered, then a power cycle (a full handshake: a Standard
        release is checked, docs/reference/particle-ota.md §1.1) and time for any release to land."""
        rig = self.rig
        self.park("settle park")  # a driving app would hold any update (and costs the simulator time)
        rig.wait(3700)  # past the longest outage or sleep a step can start
        rig.board.expect_from_now()  # the boot after this cycle, not an earlier one
        rig.power_cycle(2.0)
        rig.expect(lambda e: e.name == "hello", 120)
        self.park("settle park after the power cycle")
        rig.wait(SETTLE_S)

    def park(self, why: str) -> None:
        try:
            self.rig.command("workload", state="idle")
        except Exception as exc:  # noqa: BLE001 - asleep or off: the power cycle that follows parks it
            self.refused.append(f"{why}: {type(exc).__name__}")

    @property
    def expected_version(self) -> int:
        return self.locked or self.default or 1


def play(rig: Rig, schedule: Schedule) -> _Player:
    """Run the schedule's steps on `rig` (at its baseline, scenario started), then settle."""
    schedule.check()
    player = _Player(rig)
    for step in schedule.steps:
        player.wait_for(step.trigger, step.delay_s)
        rig.timeline.add(rig.now(), "rig", "schedule", {"step": step.action, "arg": step.arg})
        player.act(step)
    player.settle()
    rig.collect()
    return player


def schedule_verdicts(rig: Rig, schedule: Schedule, player: _Player) -> list[Verdict]:
    """Every verdict that holds for any schedule on the good firmware (docs/reference/particle-ota.md §7.10).

    `new_version_runs` when something was released (the settle gives it time to land);
    `pending_honoured_within` only without faults (an outage or a sleep may hold a pending update
    past the window with no fault of the app's); `release_to_update_within` not at all (its budget
    is the schedule's own length)."""
    tl = rig.timeline
    releases = sum(1 for s in schedule.steps if ACTIONS[s.action] == "version")
    checks = [
        v.update_began_in_idle_window(tl, allow_forced=player.forced),
        v.shutdown_before_reset(tl),
        v.no_record_lost(tl),
        v.no_sleep_or_disconnect_during_download(tl),
        v.no_update_loop(tl, max_downloads=max(1, releases)),
        v.app_saw_every_update(tl),
    ]
    if player.expected_version != 1:
        checks.append(v.new_version_runs(tl, player.expected_version, device_id=rig.dut_id))
    if not schedule.uses_faults():
        checks.append(v.pending_honoured_within(tl, 120))
    return checks


def run_schedule(rig: Rig, schedule: Schedule) -> Outcome:
    """Play `schedule` and check it: the verdicts, what had to land, what the board refused."""
    player = play(rig, schedule)
    return Outcome(schedule_verdicts(rig, schedule, player), player.expected_version, player.refused)
