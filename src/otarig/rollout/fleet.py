"""Fleet description (TOML) for the rollout planner, validated with pydantic.

A fleet is a list of cohorts: devices that share a connectivity pattern, an app (guarded or not,
threaded or not, idle windows) and a Device OS version. Validation errors name the key, the value
found and what was expected, one line each (same style as `otarig.config`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from otarig.config import _format, read_toml  # one reader and error formatter for the rig's TOML files


class FleetError(Exception):
    """A fleet file problem; `str()` is the message for the user (no traceback)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _version_tuple(v: str) -> tuple[int, int, int]:
    parts = v.split("-")[0].split(".")
    return (int(parts[0]), int(parts[1]), int(parts[2]))


class Cohort(_Strict):
    """Devices that behave alike."""

    name: str = "devices"
    count: int = Field(ge=1, le=10_000_000)
    #: always_on: connected all the time; daily_sleep: asleep from sleep_at to wake_at every day;
    #: wake_interval: asleep, waking every wake_interval_min for awake_min; vehicle: always
    #: connected (vehicle power), parked (idle) from park_at to depart_at, driving (busy) otherwise.
    connectivity: Literal["always_on", "daily_sleep", "wake_interval", "vehicle"] = "always_on"
    #: docs/reference/particle-ota.md §3.2: STOP/ULP resume the session; HIBERNATE wakes through reset (session resumed from
    #: retained RAM); power_off = the supply is cut (cold boot: full handshake, §1.2).
    sleep_mode: Literal["stop", "ulp", "hibernate", "power_off"] = "stop"
    sleep_at: float = Field(22.0, ge=0, lt=24, description="hour of day")
    wake_at: float = Field(6.0, ge=0, lt=24, description="hour of day")
    wake_interval_min: float = Field(60.0, gt=0, le=7 * 24 * 60)
    awake_min: float = Field(2.0, gt=0)
    park_at: float = Field(19.0, ge=0, lt=24, description="hour of day the vehicle parks")
    depart_at: float = Field(7.0, ge=0, lt=24, description="hour of day the vehicle leaves")
    jitter_min: float = Field(0.0, ge=0, le=6 * 60, description="± minutes on each park/depart or window edge")
    #: The app's idle windows, [start_hour, end_hour] per day (end may be past 24 for overnight).
    #: Ignored for vehicles (parked = idle). Default: idle all day.
    idle_windows: list[tuple[float, float]] = Field(default_factory=lambda: [(0.0, 24.0)])
    power_cycles_per_day: float = Field(0.0, ge=0, le=100)
    resets_per_day: float = Field(0.0, ge=0, le=100)
    device_os: str = "2.3.1"
    threaded: bool = True
    system_mode: Literal["automatic", "semi_automatic", "manual"] = "semi_automatic"
    #: The companion's OtaGuard: updates disabled outside idle windows (firmware/companion/README.md).
    guarded: bool = True
    #: docs/reference/particle-ota.md §3.2 "Preventing sleep during download": the app does not sleep while a transfer runs.
    holds_sleep_during_ota: bool = True
    development: bool = Field(False, description="docs/reference/particle-ota.md §1.4: development devices get no automatic OTA")
    link: Literal["2g", "3g", "ltem"] = "3g"

    @field_validator("device_os")
    @classmethod
    def _devos(cls, v: str) -> str:
        try:
            major, minor, _ = _version_tuple(v)
        except (ValueError, IndexError):
            raise ValueError("expected a Device OS version like \"2.3.1\"") from None
        if (major, minor) > (3, 3):
            raise ValueError("the Electron runs Device OS 3.3.x at most (spec platform scope)")
        return v

    @field_validator("idle_windows")
    @classmethod
    def _windows(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for s, e in v:
            if not (0 <= s < 24 and s < e <= s + 24):
                raise ValueError(f"window [{s}, {e}]: expected 0 <= start < 24 and start < end <= start + 24")
        return sorted(v)

    @model_validator(mode="after")
    def _consistent(self) -> "Cohort":
        if self.connectivity == "wake_interval" and self.awake_min >= self.wake_interval_min:
            raise ValueError(f"awake_min: {self.awake_min} must be shorter than wake_interval_min "
                             f"{self.wake_interval_min}")
        if self.connectivity == "daily_sleep" and self.sleep_at == self.wake_at:
            raise ValueError("wake_at: must differ from sleep_at")
        if self.connectivity == "vehicle" and self.park_at == self.depart_at:
            raise ValueError("depart_at: must differ from park_at")
        return self

    @property
    def devos(self) -> tuple[int, int, int]:
        return _version_tuple(self.device_os)

    @property
    def intelligent_capable(self) -> bool:
        """docs/reference/particle-ota.md §1.5: Intelligent releases (HELLO_FLAG_IMMEDIATE_UPDATES_SUPPORT) from 1.2.1."""
        return self.devos >= (1, 2, 1)

    @property
    def forced_capable(self) -> bool:
        """docs/reference/particle-ota.md §2.1: `particle/device/updates/forced` / System.updatesForced() since 1.2.0."""
        return self.devos >= (1, 2, 0)

    @property
    def boot_leak(self) -> bool:
        """docs/reference/particle-ota.md §3.1: AUTOMATIC non-threaded runs setup() only after the cloud connects — "you might
        not be able to prevent the update from occurring at boot"."""
        return self.guarded and self.system_mode == "automatic" and not self.threaded


class Release(_Strict):
    running_version: int = Field(1, ge=1, le=65535)
    version: int = Field(2, ge=1, le=65535)
    size_bytes: int = Field(100 * 1024, ge=1, le=128 * 1024, description="docs/reference/particle-ota.md §2.6: 128 KB app slot")
    at_hour: float = Field(12.0, ge=0, description="release time, hours after midnight of day 0")


class Fleet(_Strict):
    name: str = "fleet"
    seed: int = 1
    horizon_days: float = Field(30.0, gt=0, le=366)
    release: Release = Release()
    cohort: list[Cohort]

    @model_validator(mode="after")
    def _some(self) -> "Fleet":
        if not self.cohort:
            raise ValueError("cohort: expected at least one [[cohort]] entry")
        return self

    @property
    def size(self) -> int:
        return sum(c.count for c in self.cohort)

    def scaled(self, devices: int) -> "Fleet":
        """The same mix of cohorts with `devices` devices in total (for benchmarks)."""
        total = self.size
        cohorts = [c.model_copy(update={"count": max(1, round(c.count * devices / total))}) for c in self.cohort]
        return self.model_copy(update={"cohort": cohorts})


def parse(data: dict, source: str = "<fleet>") -> Fleet:
    try:
        return Fleet.model_validate(data)
    except ValidationError as exc:
        raise FleetError(_format(exc, data, Path(source))) from None


def load(path: str | Path) -> Fleet:
    """Read and validate a fleet file; raise `FleetError` with one line per problem."""
    p = Path(path)
    return parse(read_toml(p, FleetError, "see examples/fleets/"), str(p))
