"""`bench_config.toml`: what is on the bench and how to reach it.

Validation errors name the key, the value found and what was expected, one line each, so a
lab engineer can fix the file without reading a traceback.
"""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEVICE_ID = re.compile(r"^[0-9a-f]{24}$")
PLATFORMS = {"electron": 10}
URL_SCHEMES = ("rfc2217://", "socket://", "loop://", "spy://", "hwgrep://", "alt://")


class ConfigError(Exception):
    """A bench_config.toml problem; `str()` is the message for the user (no traceback)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BenchSection(_Strict):
    name: str = "bench"
    kind: Literal["simulated", "real"] = "simulated"
    seed: int = 1


class SimulationSection(_Strict):
    link: Literal["2g", "3g", "lan"] = "3g"
    firmware_version: int = Field(1, ge=1, le=65535, description="companion version flashed at start")
    threaded: bool = True
    check_on_resume: bool = False


class BoardConfig(_Strict):
    id: str
    platform: Literal["electron"] = "electron"
    role: str = "dut"
    port: str | None = None
    usb_serial: str | None = None

    @field_validator("id")
    @classmethod
    def _device_id(cls, v: str) -> str:
        if not DEVICE_ID.match(v):
            raise ValueError("expected a Particle device ID: 24 lowercase hex digits")
        return v

    @property
    def platform_id(self) -> int:
        return PLATFORMS[self.platform]


class PsuConfig(_Strict):
    resource: str = "sim"
    model: Literal["keysight-e36xx", "rigol-dp8xx", "auto"] = "auto"
    channel: int = Field(1, ge=1, le=3)
    voltage: float = Field(5.0, gt=0, le=30)
    current_limit: float = Field(2.5, gt=0, le=10)
    safe_state: Literal["off", "restore"] = "off"
    timeout_s: float = Field(2.0, gt=0, le=60)


class CloudConfig(_Strict):
    api_url: str = "sim"
    product_id: int = Field(4242, ge=1)
    token_env: str = "PARTICLE_ACCESS_TOKEN"


class ParticleCliConfig(_Strict):
    path: str = "tools/particle-cli"
    version: str = "3.51.0"


class BenchCompanionConfig(_Strict):
    """The tester board beside the DUT running firmware/bench/ (docs/protocol.md)."""

    port: str = Field("sim", description='"sim" on a simulated bench; a serial path, by-id link or pyserial URL')
    timeout_s: float = Field(3.0, gt=0, le=60, description="how long to wait for its hello at bench start")
    vbus_cable: bool = Field(True, description="simulated bench: the DUT's USB carries VBUS through the companion")


class Capabilities(_Strict):
    psu: bool = False
    power_cut: bool = False       # simulated bench: cuts placed exactly at an OTA phase (otarig.sim.faults)
    # provided by the bench companion (firmware/bench/):
    power_switch: bool = False    # a MOSFET in series with the DUT's VIN
    vbus_switch: bool = False     # a switch on the DUT's USB VBUS
    antenna_switch: bool = False  # an RF switch on the DUT's antenna
    wake_pin: bool = False        # a wire to the DUT's WKP pin


COMPANION_CAPABILITIES = ("power_switch", "vbus_switch", "antenna_switch", "wake_pin")


class BenchConfig(_Strict):
    bench: BenchSection = BenchSection()
    simulation: SimulationSection = SimulationSection()
    boards: list[BoardConfig]
    psu: PsuConfig | None = None
    cloud: CloudConfig = CloudConfig()
    particle_cli: ParticleCliConfig = ParticleCliConfig()
    capabilities: Capabilities = Capabilities()
    bench_companion: BenchCompanionConfig | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "BenchConfig":
        if not self.boards:
            raise ValueError("boards: expected at least one [[boards]] entry")
        ids = [b.id for b in self.boards]
        if len(set(ids)) != len(ids):
            raise ValueError(f"boards: duplicate board id in {ids}")
        if self.bench.kind == "real":
            for i, b in enumerate(self.boards):
                if not (b.port or b.usb_serial):
                    raise ValueError(f"boards[{i}].port: missing — a real bench needs a serial path, "
                                     "a pyserial URL, or usb_serial")
        if self.capabilities.psu and self.psu is None:
            raise ValueError("capabilities.psu is true but there is no [psu] section")
        for cap in COMPANION_CAPABILITIES:
            if getattr(self.capabilities, cap) and self.bench_companion is None:
                raise ValueError(f"capabilities.{cap} is true but there is no [bench_companion] section "
                                 "(the tester board running firmware/bench/ provides it)")
        if self.bench_companion is not None and self.bench.kind == "real" and self.bench_companion.port == "sim":
            raise ValueError('bench_companion.port: "sim" on a real bench; give the tester board\'s serial port '
                             "(e.g. /dev/serial/by-id/usb-MicroPython_Board_in_FS_mode_...-if00)")
        return self

    @property
    def simulated(self) -> bool:
        return self.bench.kind == "simulated"


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _value_at(data: dict, loc: tuple) -> object:
    cur: object = data
    for part in loc:
        try:
            cur = cur[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return "<missing>"
    return cur


def _format(exc: ValidationError, data: dict, path: Path) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = _loc(loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            lines.append(f"{path}: {key}: missing (required)")
        elif err["type"] == "extra_forbidden":
            lines.append(f"{path}: {key}: unknown key (value {_value_at(data, loc)!r}); check the spelling")
        else:
            lines.append(f"{path}: {key} = {_value_at(data, loc)!r}: {msg}")
    return "\n".join(lines)


def check_ports(cfg: BenchConfig, path: Path) -> None:
    """On a real bench, a plain serial path must exist now (URLs are checked when opened)."""
    if cfg.simulated:
        return
    for i, b in enumerate(cfg.boards):
        if b.port and not b.port.startswith(URL_SCHEMES) and not os.path.exists(b.port):
            raise ConfigError(f"{path}: boards[{i}].port = {b.port!r}: no such serial device; "
                              "is the board plugged in? (`ls /dev/serial/by-id/` lists what is there)")


def read_toml(p: Path, error: type[Exception], missing_hint: str) -> dict:
    """A TOML file as a dict; a missing or malformed file becomes one line of `error`."""
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise error(f"{p}: no such file ({missing_hint})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{p}: not valid TOML: {exc}") from None


def load(path: str | os.PathLike) -> BenchConfig:
    """Read and validate a bench file; raise `ConfigError` with one line per problem."""
    p = Path(path)
    data = read_toml(p, ConfigError, "pass --bench PATH, or run from the project folder")
    try:
        cfg = BenchConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format(exc, data, p)) from None
    check_ports(cfg, p)
    return cfg
