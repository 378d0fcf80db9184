"""`bench_config.toml`: what is on the bench and how to reach it.

Validation errors name the key, the value found and what was expected, one line each, so a
lab engineer can fix the file without reading a traceback.
"""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

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
    time_scale: float = Field(1.0, gt=0, le=100_000, description=(
        "bench seconds per wall second; other than 1 only for a stand-in bench (a simulated world in "
        "another process, every endpoint on loopback) written by `otarig sim --bench-file`"))
    stand_in: bool = Field(False, description="the bench is a simulated world reached as a real one, not hardware")


class SimulationSection(_Strict):
    link: Literal["2g", "3g", "lan"] = "3g"
    firmware_version: int = Field(1, ge=1, le=65535, description="device companion version flashed at start")
    threaded: bool = True
    check_on_resume: bool = False


class BoardConfig(_Strict):
    id: str
    platform: Literal["electron"] = "electron"
    role: str = "dut"
    port: str | None = Field(None, description="real bench: without it the board is found on USB by its device ID")
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
    monitor_period_s: float = Field(120.0, gt=0, le=3600, description="bench seconds between PSU samples")


class CloudConfig(_Strict):
    api_url: str = "sim"
    product_id: int = Field(4242, ge=1)
    token_env: str = "PARTICLE_ACCESS_TOKEN"
    group: str = Field("otarig-bench", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                       description="device group the bench's boards join; releases go to it only")
    allocate_versions: bool = Field(True, description=(
        "map the scenarios' versions 1, 2, 3 above the product's highest existing version"))


class FirmwareConfig(_Strict):
    """The firmware under test. A real bench: Electron binaries by logical version
    (docs/building-firmware.md), checked before any flash. The simulated bench: a Particle project
    folder it builds for the host at versions 1, 2, 3 (docs/your-firmware.md); the device companion
    when none is given."""

    baseline: int = Field(1, ge=1, le=65535, description="the version every scenario starts from")
    versions: dict[int, str] = Field(default_factory=dict, description="logical version → .bin path")
    nonthreaded: dict[int, str] = Field(default_factory=dict,
                                        description="the same versions built without SYSTEM_THREAD(ENABLED)")
    project: str | None = Field(None, description=(
        "simulated bench only: a Particle project folder (src/, lib/) to certify instead of the device "
        "companion, relative to the bench file; `otarig run --firmware DIR` overrides it"))
    fleet_release: str | None = Field(None, description=(
        "the firmware the fleet in the field runs now, which the candidate must upgrade from and whose "
        "persisted records it must read (otarig.fleet_release): an Electron binary (.bin) on a real bench; "
        "on the simulated bench a Particle project folder or a module binary; relative to the bench file. "
        "The simulated bench defaults to the project under test, built without defects"))


class FlasherConfig(_Strict):
    """How the rig puts the baseline on a board that runs something else."""

    method: Literal["usb", "cloud"] = Field("usb", description=(
        "usb: `particle flash --local <device> FILE --application-only`; cloud: an OTA over the Cloud API"))
    timeout_s: float = Field(180.0, gt=0, le=3600)


class ParticleCliConfig(_Strict):
    path: str = "tools/particle-cli"
    version: str = "3.51.0"


class BenchCompanionConfig(_Strict):
    """The tester board beside the DUT running firmware/bench/ (docs/protocol.md)."""

    port: str = Field("sim", description='"sim" on a simulated bench; a serial path, by-id link or pyserial URL')
    timeout_s: float = Field(3.0, gt=0, le=60, description="how long to wait for its hello at bench start")
    vbus_cable: bool = Field(True, description="simulated bench: the DUT's USB carries VBUS through the tester board")


class Capabilities(_Strict):
    psu: bool = False
    power_cut: bool = False       # simulated bench: cuts placed exactly at an OTA phase (otarig.sim.faults)
    # provided by the tester board (firmware/bench/):
    power_switch: bool = False    # a MOSFET in series with the DUT's VIN
    vbus_switch: bool = False     # a switch on the DUT's USB VBUS
    antenna_switch: bool = False  # an RF switch on the DUT's antenna
    wake_pin: bool = False        # a wire to the DUT's WKP pin
    mode_button: bool = False     # an open-drain line to the DUT's MODE button (press_mode)


class LabSection(_Strict):
    """The labgrid place this bench file was made from (`otarig run --place`, otarig.lab); the record names it."""

    place: str
    coordinator: str = ""
    acquired_by: str = ""
    resources: dict[str, str] = Field(default_factory=dict, description="role → exporter/group/class/name")


COMPANION_CAPABILITIES = ("power_switch", "vbus_switch", "antenna_switch", "wake_pin", "mode_button")


class BenchConfig(_Strict):
    bench: BenchSection = BenchSection()
    simulation: SimulationSection = SimulationSection()
    boards: list[BoardConfig]
    psu: PsuConfig | None = None
    cloud: CloudConfig = CloudConfig()
    particle_cli: ParticleCliConfig = ParticleCliConfig()
    capabilities: Capabilities = Capabilities()
    bench_companion: BenchCompanionConfig | None = None
    firmware: FirmwareConfig | None = None
    flasher: FlasherConfig = FlasherConfig()
    lab: LabSection | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "BenchConfig":
        if not self.boards:
            raise ValueError("boards: expected at least one [[boards]] entry")
        ids = [b.id for b in self.boards]
        if len(set(ids)) != len(ids):
            raise ValueError(f"boards: duplicate board id in {ids}")
        if self.capabilities.psu and self.psu is None:
            raise ValueError("capabilities.psu is true but there is no [psu] section")
        for cap in COMPANION_CAPABILITIES:
            if getattr(self.capabilities, cap) and self.bench_companion is None:
                raise ValueError(f"capabilities.{cap} is true but there is no [bench_companion] section "
                                 "(the tester board running firmware/bench/ provides it)")
        if self.firmware is not None and self.bench.kind != "real" and (self.firmware.versions or
                                                                         self.firmware.nonthreaded):
            raise ValueError("firmware.versions: a catalog of Electron binaries is for a real bench; the simulated "
                             "bench builds its firmware from source: give firmware.project = \"DIR\" (a Particle "
                             "project folder) or leave [firmware] out for the device companion")
        if self.bench.kind == "real":
            self._check_real()
        elif self.bench.time_scale != 1.0:
            raise ValueError("bench.time_scale: only a real (stand-in) bench runs on a scaled clock; "
                             "the simulated bench has virtual time")
        if self.bench_companion is not None and self.bench.kind == "real" and self.bench_companion.port == "sim":
            raise ValueError('bench_companion.port: "sim" on a real bench; give the tester board\'s serial port '
                             "(e.g. /dev/serial/by-id/usb-MicroPython_Board_in_FS_mode_...-if00)")
        return self

    def _check_real(self) -> None:
        """What a real bench must name, and the loopback rule for a scaled clock."""
        if self.firmware is not None and self.firmware.project is not None:
            raise ValueError(f"firmware.project = {self.firmware.project!r}: a real bench flashes Electron binaries, "
                             "not a project folder; build them with `particle compile electron` and list them in "
                             "[firmware.versions] (docs/building-firmware.md)")
        if self.cloud.api_url == "sim":
            raise ValueError('cloud.api_url: "sim" on a real bench; give the API URL, e.g. "https://api.particle.io"')
        if self.psu is not None and self.capabilities.psu and self.psu.resource == "sim":
            raise ValueError('psu.resource: "sim" on a real bench; give the VISA resource, '
                             'e.g. "TCPIP::192.168.1.50::5025::SOCKET"')
        if self.capabilities.power_cut:
            raise ValueError("capabilities.power_cut: exact-phase power cuts exist only on the simulated bench; "
                             "on a real bench the tester board cuts power (power_switch, vbus_switch)")
        if self.firmware is None or not self.firmware.versions:
            raise ValueError("firmware: missing — a real bench needs a [firmware.versions] table mapping the "
                             "scenarios' versions 1, 2, 3 to Electron binaries (docs/building-firmware.md)")
        if self.firmware.baseline not in self.firmware.versions:
            raise ValueError(f"firmware.baseline = {self.firmware.baseline}: no binary for it in [firmware.versions]")
        if self.bench.time_scale != 1.0 or self.bench.stand_in:
            far = [e for e in self.endpoints() if not _on_loopback(e)]
            if far:
                raise ValueError(f"bench.time_scale = {self.bench.time_scale:g}: a scaled clock is for a stand-in "
                                 f"bench whose endpoints are all on loopback; not on loopback: {', '.join(far)}")

    def endpoints(self) -> list[str]:
        """Every address the bench file names (API URL, ports, VISA resource)."""
        out = [self.cloud.api_url]
        out += [b.port for b in self.boards if b.port]
        if self.bench_companion is not None:
            out.append(self.bench_companion.port)
        if self.psu is not None and self.capabilities.psu:
            out.append(self.psu.resource)
        return out

    @property
    def simulated(self) -> bool:
        return self.bench.kind == "simulated"

    @property
    def stand_in(self) -> bool:
        """A simulated world in another process, reached as a real bench (never hardware)."""
        return self.bench.kind == "real" and (self.bench.stand_in or self.bench.time_scale != 1.0)


_LOOPBACK = re.compile(r"^(https?://|rfc2217://|socket://|TCPIP\d*::)(127\.\d+\.\d+\.\d+|localhost|\[::1\])([:/]|$)",
                       re.IGNORECASE)


def _on_loopback(endpoint: str) -> bool:
    """A URL or VISA resource on this machine's loopback, or a local device path (a pty)."""
    if endpoint.startswith("/"):  # a pty of the stand-in, not a USB device of real hardware
        real = os.path.realpath(endpoint)
        return real.startswith("/dev/pts/") or not real.startswith("/dev/")
    return bool(_LOOPBACK.match(endpoint))


#: key names that would hold a credential; the bench file is shared and committed, so none belongs
#: in it (`*_env` keys name an environment variable instead and are fine)
_SECRET_KEY = re.compile(r"token|secret|passw|credential|api_?key|private_?key", re.IGNORECASE)
_TOKEN_HINT = ("tokens and passwords never go in this file: put the access token in an environment variable "
               "and name that variable in cloud.token_env (default PARTICLE_ACCESS_TOKEN)")
#: a bare TOML key; anything else is shown quoted so a key cannot break the one-line format
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: longest value text shown in an error line (a hostile file must not flood the terminal)
_SHOW_MAX = 80
_REDACTED = "<redacted>"


def _is_secret_key(part: object) -> bool:
    """A key that names a credential (why: its value must never reach a terminal or a CI log)."""
    return isinstance(part, str) and not part.endswith("_env") and bool(_SECRET_KEY.search(part))


def _key_text(part: str) -> str:
    """One key as TOML would spell it, quoted and shortened when not bare, so it stays on one line."""
    if _BARE_KEY.match(part):
        return part
    text = repr(part)
    return text if len(text) <= _SHOW_MAX else text[:_SHOW_MAX - 4] + "...'"


def _loc(loc: tuple) -> str:
    """`("boards", 0, "id")` → `boards[0].id`: the key path a lab engineer finds in the file."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{_key_text(str(part))}" if out else _key_text(str(part))
    return out


def _value_at(data: dict, loc: tuple) -> object:
    """The raw value at `loc`, or `<missing>` (why: the error shows what the file really says)."""
    cur: object = data
    for part in loc:
        try:
            cur = cur[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return "<missing>"
    return cur


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _show(value: object, loc: tuple = ()) -> str:
    """A value for an error line: scalars shortened, tables and arrays by shape only, secrets redacted.

    Why shapes: a section's content may hold anything (a token included) and can be huge or nested
    thousands deep; the line only has to tell the user what kind of thing is there.
    """
    if any(_is_secret_key(part) for part in loc):
        return _REDACTED
    if isinstance(value, dict):
        return f"<a table of {_plural(len(value), 'key')}>"
    if isinstance(value, list):
        kind = "table" if value and all(isinstance(v, dict) for v in value) else "item"
        return f"<an array of {_plural(len(value), kind)}>"
    if value == "<missing>":
        return "<missing>"
    if isinstance(value, str) and len(value) > _SHOW_MAX:
        return f"{value[:_SHOW_MAX]!r}... ({len(value)} characters)"
    return repr(value)


def _unwrap(annotation: object) -> tuple[object, bool]:
    """`X | None` → X, `list[X]` → (X, True): the type a TOML table or array entry must match."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is list and args:
        return args[0], True
    if args and get_origin(annotation) is not Literal and len(args) == 1:
        return _unwrap(args[0])
    return annotation, False


def _model_at(model: type[BaseModel] | None, loc: tuple) -> tuple[type[BaseModel] | None, bool]:
    """The pydantic model a location must hold, and whether it is an array of them (or None)."""
    current: object = model
    is_list = False
    for part in loc:
        if isinstance(part, int):
            if not is_list:
                return None, False
            is_list = False
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None, False
        current, is_list = _unwrap(current.model_fields[part].annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current, is_list
    return None, False


def _shape(model: type[BaseModel] | None, loc: tuple) -> str | None:
    """What a section must look like, from the model itself (so new sections are described too)."""
    section, is_list = _model_at(model, loc)
    if section is None:
        return None
    keys = ", ".join(section.model_fields)
    name = _loc(loc)
    if is_list:
        return f"expected [[{name}]] tables (one per entry) with keys {keys}"
    if loc and isinstance(loc[-1], int):
        return f"expected a table (one [[{_loc(loc[:-1])}]] entry) with keys {keys}"
    return f"expected one [{name}] table with keys {keys}"


_NO_SECTION = re.compile(r"no \[(\w+)\] section")


def _model_problem(msg: str, model: type[BaseModel] | None) -> str:
    """A whole-file rule broken: its message, plus the shape of a section it says is missing."""
    m = _NO_SECTION.search(msg)
    shape = _shape(model, (m.group(1),)) if m else None
    return f"{msg}; {shape}" if shape else msg


def _error_line(err: Any, data: dict, path: Path, model: type[BaseModel] | None) -> str:
    """One pydantic error as `path: key = value: what was expected`."""
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    msg = err["msg"].removeprefix("Value error, ")
    if not loc:
        return f"{path}: {_model_problem(msg, model)}"  # never the whole file as one value
    key = _loc(loc)
    if any(_is_secret_key(part) for part in loc):
        return f"{path}: {key}: not allowed (value {_REDACTED}); {_TOKEN_HINT}"
    shape = _shape(model, loc)
    if err["type"] == "missing":
        return f"{path}: {key}: missing (required)" + (f"; {shape}" if shape else "")
    if err["type"] == "extra_forbidden":
        return f"{path}: {key}: unknown key (value {_show(_value_at(data, loc), loc)}); check the spelling"
    if shape and err["type"] in ("model_type", "model_attributes_type", "dict_type", "list_type"):
        msg = shape
    return f"{path}: {key} = {_show(_value_at(data, loc), loc)}: {msg}"


def _format(exc: ValidationError, data: dict, path: Path, model: type[BaseModel] | None = None) -> str:
    """Every validation problem on its own line, naming key, value (redacted) and expectation.

    `model` (the validated class) lets a misshapen or missing section be described by its keys.
    """
    lines: list[str] = []
    for err in exc.errors():
        line = _error_line(err, data, path, model)
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


def _secret_locs(data: dict) -> list[tuple]:
    """Every key in the file that looks like a credential, at any depth (iterative: files can be deep)."""
    found: list[tuple] = []
    stack: list[tuple[tuple, object]] = [((), data)]
    while stack:
        loc, value = stack.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for part, child in items:
            if _is_secret_key(part):
                found.append((*loc, part))
            else:
                stack.append(((*loc, part), child))
    return sorted(found, key=_loc)


def _secret_problems(data: dict, path: Path) -> list[str]:
    """Credentials written into the file: one line each, value never shown."""
    lines = [f"{path}: {_loc(loc)}: not allowed (value {_REDACTED}); {_TOKEN_HINT}" for loc in _secret_locs(data)]
    token_env = _value_at(data, ("cloud", "token_env"))
    if isinstance(token_env, str) and _looks_like_token(token_env):
        lines.append(f"{path}: cloud.token_env = {_REDACTED}: looks like an access token itself; "
                     "token_env names the environment variable that holds the token (e.g. PARTICLE_ACCESS_TOKEN)")
    return lines


def _looks_like_token(text: str) -> bool:
    """A Particle access token is 40 hex digits; no sane environment variable name is."""
    return bool(re.fullmatch(r"[0-9a-fA-F]{32,}", text))


def check_ports(cfg: BenchConfig, path: Path) -> None:
    """On a real bench, a plain serial path must exist now (URLs are checked when opened)."""
    if cfg.simulated:
        return
    for i, b in enumerate(cfg.boards):
        if b.port and not b.port.startswith(URL_SCHEMES) and not os.path.exists(b.port):
            raise ConfigError(f"{path}: boards[{i}].port = {b.port!r}: no such serial device; "
                              "is the board plugged in? (`ls /dev/serial/by-id/` lists what is there)")


def read_toml(p: Path, error: type[Exception], missing_hint: str) -> dict:
    """A TOML file as a dict; a missing, unreadable, non-UTF-8 or malformed file becomes one line of `error`."""
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise error(f"{p}: no such file ({missing_hint})") from None
    except OSError as exc:
        raise error(f"{p}: cannot read: {exc.strerror or exc}") from None
    return _parse_toml(_decode(raw, p, error), p, error)


def _decode(raw: bytes, p: Path, error: type[Exception]) -> str:
    """The file's text; TOML is UTF-8 only, so say where the first other byte is and how to fix it."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(f"{p}: not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line}, column {column} "
                    "(TOML files must be UTF-8; re-save the file as UTF-8)") from None


def _parse_toml(text: str, p: Path, error: type[Exception]) -> dict:
    """tomllib, with its two failure modes turned into one line each (deep nesting recurses)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{p}: not valid TOML: {exc}") from None
    except RecursionError:
        raise error(f"{p}: not valid TOML here: arrays or inline tables nested too deeply "
                    "(a bench file needs at most two levels)") from None


def load(path: str | os.PathLike) -> BenchConfig:
    """Read and validate a bench file; raise `ConfigError` with one line per problem."""
    p = Path(path)
    data = read_toml(p, ConfigError, "pass --bench PATH, or `otarig init` writes one")
    problems = _secret_problems(data, p)
    try:
        cfg = BenchConfig.model_validate(data)
    except ValidationError as exc:
        problems += [line for line in _format(exc, data, p, BenchConfig).splitlines() if line not in problems]
    except RecursionError:
        problems.append(f"{p}: values nested too deeply to check (a bench file needs at most two levels)")
    if problems:
        raise ConfigError("\n".join(problems))
    check_ports(cfg, p)
    return cfg
