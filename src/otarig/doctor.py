"""`otarig doctor`: what is attached to this host and whether the bench file's bench can run.

Every check is a small function returning a `Check(name, ok, detail, fix)`: `detail` says what was
found, `fix` (when not ok) what to do, in the words of docs/real-bench.md §3. `run()` picks the
checks for the bench file's kind:

* a real bench (and a stand-in, which is reached exactly like one): Particle devices on USB by
  VID 0x2B04 (serial 0xC00A, DFU 0xD00A) and the tester board by MicroPython's VID 0x2E8A, each
  board of the bench file found or not, port permissions, udev rules, group membership,
  ModemManager, the particle CLI and its Node.js, the PSU answering `*IDN?`, the cloud token and
  the product, the labgrid coordinator when `$LG_COORDINATOR` names one. On a stand-in the
  host's USB set-up (udev, groups, ModemManager) is not needed — its boards are ptys — and the
  lines say so;
* a simulated bench: g++, the host build of the device companion (cached), the particle CLI; the
  rest is simulated and one line says so.

Nothing here changes the bench: the PSU is asked `*IDN?` and closed without a set or the safe
state (a running bench keeps its power), the tester board's port is only looked at, the cloud is
only read. The access token is never printed: every text leaving `run()` has it replaced by
`<redacted>` (docs/design.md; tests/test_doctor.py checks stdout and stderr).
"""
from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .config import BenchConfig, BoardConfig, ConfigError
from .discovery import (
    BY_ID,
    ELECTRON_DFU_PID,
    ELECTRON_SERIAL_PID,
    PARTICLE_VID,
    SYSFS_USB,
    BoardNotFound,
    UsbDevice,
    dfu_devices,
    find_board,
    serial_devices,
)

__all__ = ["MICROPYTHON_VID", "UDEV_RULE", "Check", "Host", "Report", "run"]

#: the tester board (a Raspberry Pi Pico running MicroPython) enumerates with this VID
MICROPYTHON_VID = 0x2E8A
REDACTED = "<redacted>"
#: the rule file of docs/real-bench.md §3, verbatim
UDEV_RULE = (
    '# /etc/udev/rules.d/50-particle.rules\n'
    'SUBSYSTEM=="usb", ATTRS{idVendor}=="2b04", MODE="0664", GROUP="plugdev"\n'
    'SUBSYSTEM=="tty", ATTRS{idVendor}=="2b04", MODE="0664", GROUP="plugdev", ENV{ID_MM_DEVICE_IGNORE}="1"\n'
    'SUBSYSTEM=="tty", ATTRS{idVendor}=="2e8a", MODE="0664", GROUP="plugdev", ENV{ID_MM_DEVICE_IGNORE}="1"'
)
_FIX_UDEV = (f"write docs/real-bench.md §3's rule file:\n{UDEV_RULE}\nthen `sudo udevadm control --reload && "
             "sudo udevadm trigger`")
_FIX_GROUPS = 'sudo usermod -aG plugdev,dialout "$USER", then log out and in again (docs/real-bench.md §3)'
_FIX_MM = (f"tell ModemManager to ignore the Electron and the tester board (ENV{{ID_MM_DEVICE_IGNORE}}=\"1\" in "
           f"the udev rule, docs/real-bench.md §3:\n{UDEV_RULE}\nthen `sudo udevadm control --reload && sudo "
           "udevadm trigger`), or on a dedicated bench host `sudo systemctl disable --now ModemManager`")
_FIX_TOOLS = "otarig tools install"
UDEV_DIRS = (Path("/etc/udev/rules.d"), Path("/run/udev/rules.d"), Path("/usr/lib/udev/rules.d"),
             Path("/lib/udev/rules.d"))
LABGRID_PORT = 20408  # labgrid's gRPC coordinator's default port
URL_PREFIXES = ("rfc2217://", "socket://", "loop://", "spy://", "hwgrep://", "alt://")


@dataclass(frozen=True)
class Check:
    """One line of the doctor: what was checked, whether it is ok, what was found, and the fix."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def redacted(self, secrets: Iterable[str]) -> Check:
        def scrub(text: str) -> str:
            for s in secrets:
                text = text.replace(s, REDACTED)
            return text
        return Check(scrub(self.name), self.ok, scrub(self.detail), scrub(self.fix))


@dataclass(frozen=True)
class Report:
    bench: str
    kind: str  # "real", "stand-in", "simulated" or "unknown" (the bench file did not load)
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"bench": self.bench, "kind": self.kind, "ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def _run_text(argv: Sequence[str], timeout: float) -> tuple[int, str]:
    """(exit status, stdout+stderr) of a short command; 127 when it is not there, 124 on timeout."""
    try:
        done = subprocess.run(list(argv), check=False, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return 127, ""
    except subprocess.TimeoutExpired:
        return 124, ""
    except OSError as exc:
        return 126, str(exc)
    return done.returncode, (done.stdout + done.stderr).strip()


def _process_running(name: str, proc: Path = Path("/proc")) -> bool:
    try:
        entries = list(proc.iterdir())
    except OSError:
        return False
    for d in entries:
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == name:
                    return True
            except OSError:
                continue
    return False


_UNIT_STATES = ("inactive", "failed", "activating", "deactivating", "reloading", "maintenance")


def modemmanager_state() -> str:
    """"active" when ModemManager runs (systemd says so, or its process is there), else what was seen."""
    rc, out = _run_text(["systemctl", "is-active", "ModemManager"], timeout=5)
    if rc == 0 and out.splitlines()[:1] == ["active"]:
        return "active"
    if _process_running("ModemManager"):
        return "active"
    state = out.splitlines()[0].strip() if out else ""
    if state in ("activating", "reloading"):
        return "active"
    return state if state in _UNIT_STATES else "not running"


@dataclass
class Host:
    """What the checks look at on this host; a test substitutes any part (no USB here)."""

    ports: list[Any] | None = None        # pyserial's list_ports.comports(); None: ask pyserial
    sysfs: Path = SYSFS_USB               # for DFU-mode devices (they have no tty)
    by_id: Path = BY_ID
    udev_dirs: Sequence[Path] = UDEV_DIRS
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    modemmanager: Callable[[], str] = modemmanager_state
    uid: int = field(default_factory=os.getuid)
    groups: Sequence[str] | None = None   # the process's groups by name; None: ask the OS
    timeout_s: float = 5.0                # each network check waits at most this long

    def comports(self) -> list[Any]:
        if self.ports is None:
            from serial.tools import list_ports

            self.ports = list(list_ports.comports())
        return self.ports

    def group_names(self) -> list[str]:
        if self.groups is None:
            names = []
            for gid in {os.getgid(), *os.getgroups()}:
                try:
                    names.append(grp.getgrgid(gid).gr_name)
                except KeyError:
                    names.append(str(gid))
            self.groups = sorted(names)
        return list(self.groups)


# -- USB: what is attached ------------------------------------------------------------------------


def _usb_text(d: UsbDevice) -> str:
    return (f"{d.serial_number or '?'} ({PARTICLE_VID:04x}:{d.pid:04x} {d.mode}"
            f"{', ' + d.port if d.port else ', no serial port'})")


def tester_ports(ports: Iterable[Any]) -> list[Any]:
    """pyserial ports of MicroPython boards (the tester board) by VID 0x2E8A."""
    return [p for p in ports if getattr(p, "vid", None) == MICROPYTHON_VID]


def check_usb(serial: Sequence[UsbDevice], dfu: Sequence[UsbDevice], testers: Sequence[Any], *,
              needed: bool = True) -> Check:
    """Particle devices on USB (serial mode and DFU mode) and MicroPython boards: what is attached."""
    parts = [_usb_text(d) for d in [*serial, *dfu]]
    seen = (f"Particle {', '.join(parts)}" if parts else f"no Particle device (VID {PARTICLE_VID:04x})")
    seen += ("; tester board " + ", ".join(f"{getattr(p, 'serial_number', None) or '?'} ({p.device})" for p in testers)
             if testers else f"; no MicroPython board (VID {MICROPYTHON_VID:04x})")
    if not needed:
        return Check("USB devices", True, f"stand-in bench: its boards are ptys, not USB; on USB here: {seen}")
    if parts:
        return Check("USB devices", True, seen)
    return Check("USB devices", False, seen,
                 f"plug the Electron in with a USB cable that carries data (PID {ELECTRON_SERIAL_PID:04x} running, "
                 f"{ELECTRON_DFU_PID:04x} in DFU mode); `ls -l /dev/serial/by-id/` lists serial devices")


def _is_url(port: str) -> bool:
    return port.startswith(URL_PREFIXES)


def _tcp_target(url: str) -> tuple[str, int] | None:
    m = re.match(r"^(?:rfc2217|socket)://\[?([^\]/]+?)\]?:(\d+)", url)
    return (m.group(1), int(m.group(2))) if m else None


def tcp_reachable(host: str, port: int, timeout: float) -> str | None:
    """None when a TCP connection opens within `timeout`, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def check_port_present(name: str, port: str, timeout: float) -> Check:
    """A serial port the bench file names: a local path that exists, or a network port that answers."""
    if _is_url(port):
        target = _tcp_target(port)
        if target is None:
            return Check(name, True, f"{port} (a pyserial URL; checked when opened)")
        why = tcp_reachable(*target, timeout)
        if why is None:
            return Check(name, True, f"{port}: reachable")
        return Check(name, False, f"{port}: {why}",
                     f"start the serial server (ser2net / the exporter) at {target[0]}:{target[1]}, or fix the port")
    if os.path.exists(port):
        real = os.path.realpath(port)
        return Check(name, True, port + (f" → {real}" if real != port else ""))
    return Check(name, False, f"{port}: no such device",
                 "plug it in (a cable that carries data) or fix the port in the bench file; "
                 "`ls -l /dev/serial/by-id/` lists serial devices")


def check_board(board: BoardConfig, serial: Sequence[UsbDevice], dfu: Sequence[UsbDevice], timeout: float) -> Check:
    """One board of the bench file: at its port, or found on USB by its device ID."""
    name = f"board {board.id} ({board.role})"
    if board.port:
        return check_port_present(name, board.port, timeout)
    try:
        port = find_board(board.id, board.usb_serial, serial=list(serial), dfu=list(dfu))
    except BoardNotFound as exc:
        problem, _, fix = str(exc).partition("; ")  # discovery's messages: "<what is there>; <what to do>"
        return Check(name, False, problem, fix or "plug it in (a cable that carries data)")
    return Check(name, True, f"on USB by its device ID: {port}")


def check_tester(port: str, testers: Sequence[Any], timeout: float) -> Check:
    """The tester board at the bench file's [bench_companion] port (only looked at, never opened)."""
    found = check_port_present("tester board", port, timeout)
    if found.ok or not testers:
        return found
    seen = ", ".join(str(p.device) for p in testers)
    return Check(found.name, False, found.detail + f" (a MicroPython board is on USB at {seen})",
                 "set [bench_companion] port to its /dev/serial/by-id/usb-MicroPython_… link")


# -- permissions, udev, groups, ModemManager -----------------------------------------------------------


def check_port_access(ports: Sequence[str], uid: int) -> Check:
    """The user can open each local serial port for reading and writing."""
    local = [p for p in ports if not _is_url(p) and os.path.exists(p)]
    if not local:
        return Check("port permissions", True, "no local serial port to open")
    denied = [p for p in local if not os.access(p, os.R_OK | os.W_OK)]
    if not denied:
        who = "root" if uid == 0 else "this user"
        return Check("port permissions", True, f"{who} can read and write {', '.join(local)}")
    return Check("port permissions", False, f"cannot read and write {', '.join(denied)}",
                 f"{_FIX_UDEV}; and {_FIX_GROUPS}")


def _rule_files(dirs: Sequence[Path]) -> list[tuple[Path, str]]:
    out = []
    for d in dirs:
        try:
            files = sorted(d.glob("*.rules"))
        except OSError:
            continue
        for f in files:
            try:
                out.append((f, f.read_text(errors="replace")))
            except OSError:
                continue
    return out


def _names_vid(text: str, vid: int) -> bool:
    return f"{vid:04x}" in text.lower()


def check_udev_rules(dirs: Sequence[Path]) -> Check:
    """A udev rule for the Electron: a file named *particle* or any rule naming 2b04."""
    files = [f for f, text in _rule_files(dirs) if "particle" in f.name.lower() or _names_vid(text, PARTICLE_VID)]
    if files:
        return Check("udev rules", True, ", ".join(str(f) for f in files))
    return Check("udev rules", False, f"no rule for VID {PARTICLE_VID:04x} in {', '.join(str(d) for d in dirs)}",
                 _FIX_UDEV)


def check_groups(uid: int, groups: Sequence[str], user_groups: Sequence[str] = ()) -> Check:
    """The user is in plugdev or dialout (the groups the udev rule and Debian give serial ports)."""
    if uid == 0:
        return Check("groups", True, "running as root")
    have = [g for g in ("plugdev", "dialout") if g in groups]
    if have:
        return Check("groups", True, f"member of {', '.join(have)}")
    pending = [g for g in ("plugdev", "dialout") if g in user_groups]
    if pending:
        return Check("groups", False, f"added to {', '.join(pending)} but this session does not have it yet",
                     "log out and in again (or `newgrp plugdev`)")
    return Check("groups", False, f"not in plugdev or dialout (groups: {', '.join(groups) or 'none'})", _FIX_GROUPS)


def _user_groups(uid: int) -> list[str]:
    """The groups /etc/group gives the user (a fresh `usermod -aG` shows here before a new login)."""
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return []
    return [g.gr_name for g in grp.getgrall() if name in g.gr_mem]


def _mm_ignored(rules: Sequence[tuple[Path, str]], vid: int) -> Path | None:
    for f, text in rules:
        for line in text.splitlines():
            if not line.lstrip().startswith("#") and _names_vid(line, vid) and "ID_MM_DEVICE_IGNORE" in line:
                return f
    return None


def check_modemmanager(state: str, dirs: Sequence[Path]) -> Check:
    """ModemManager not running, or running with a udev rule telling it to ignore 2b04 and 2e8a."""
    if state != "active":
        return Check("ModemManager", True, "not running" if state == "not running" else f"not running ({state})")
    rules = _rule_files(dirs)
    ignored = {vid: _mm_ignored(rules, vid) for vid in (PARTICLE_VID, MICROPYTHON_VID)}
    missing = [f"{vid:04x}" for vid, f in ignored.items() if f is None]
    if not missing:
        return Check("ModemManager", True, "running, told to ignore the Electron and the tester board ("
                     + ", ".join(sorted({str(f) for f in ignored.values()})) + ")")
    return Check("ModemManager", False,
                 f"running and not told to ignore VID {' and '.join(missing)}: it probes the port with AT commands",
                 _FIX_MM)


# -- tools ------------------------------------------------------------------------------------------


def check_particle_cli(config_path: str, base: Path | None, declared: str | None = None) -> list[Check]:
    """The particle CLI the bench file names ([particle_cli] path, else the pinned install) and the
    Node.js it runs on, with the versions they report."""
    from . import particle_cli as pc

    try:
        loc = pc.locate(config_path, base=base)
    except pc.CliNotFound as exc:
        return [Check("particle CLI", False, str(exc), _FIX_TOOLS)]
    out: list[Check] = []
    if loc.executable.suffix == ".js":
        node = pc._find_node(loc.node)
        rc, text = _run_text([str(node), "--version"], timeout=20)
        if rc != 0:
            why = "not found" if rc == 127 else f"`node --version` failed (exit {rc})"
            return [Check("Node.js", False, f"{node}: {why}", f"{_FIX_TOOLS} (or set ${pc.ENV_NODE})")]
        out.append(Check("Node.js", True, f"{text.splitlines()[0] if text else '?'} ({node})"))
    try:
        version = pc.reported_version(location=loc, timeout=60)
    except pc.ParticleCliError as exc:
        out.append(Check("particle CLI", False, f"{loc.executable}: {exc}", _FIX_TOOLS))
        return out
    want = declared or pc.PINNED_VERSION
    if version != want:
        out.append(Check("particle CLI", False, f"{version} at {loc.executable}, the bench file declares {want}",
                         f"{_FIX_TOOLS} (pinned {pc.PINNED_VERSION}), or set [particle_cli] version to what runs"))
    else:
        out.append(Check("particle CLI", True, f"{version} ({loc.executable})"))
    return out


def check_compiler(env: Mapping[str, str]) -> Check:
    cxx = env.get("CXX", "g++")
    path = shutil.which(cxx)
    if path is None:
        return Check("C++ compiler", False, f"{cxx!r} not found on PATH", "install g++ (`sudo apt-get install g++`) "
                     "or set CXX")
    rc, text = _run_text([path, "--version"], timeout=20)
    return Check("C++ compiler", rc == 0, f"{text.splitlines()[0] if text else '?'} ({path})",
                 "" if rc == 0 else f"`{path} --version` failed; reinstall g++")


def check_host_build(cfg: BenchConfig) -> Check:
    """The host build of the device companion the simulated bench runs (cached after the first)."""
    from .sim.build import BuildError, build_companion

    try:
        so = build_companion(cfg.simulation.firmware_version, threaded=cfg.simulation.threaded,
                             product_id=cfg.cloud.product_id)
    except BuildError as exc:
        return Check("host build", False, str(exc).splitlines()[0],
                     "install g++ (`sudo apt-get install g++`); a compile error above is a bug in firmware/")
    return Check("host build", True, f"device companion v{cfg.simulation.firmware_version} compiles ({so})")


# -- instruments and services ---------------------------------------------------------------------------


def check_psu(resource: str, channel: int, timeout_s: float) -> Check:
    """The PSU answers `*IDN?` over PyVISA (a bounded timeout) and has a dialect here. Only the
    query is sent: no set, no safe state, so a running bench keeps its power."""
    import pyvisa
    from pyvisa.errors import VisaIOError

    from .psu import (
        PowerSupply,
        PsuError,
        PsuProtocolError,
        PsuTimeoutError,
        dialect_for,
    )

    ms = max(1, int(timeout_s * 1000))
    try:
        rm = pyvisa.ResourceManager("@py")
        res = rm.open_resource(resource, read_termination="\n", write_termination="\n", timeout=ms, open_timeout=ms)
    except (VisaIOError, OSError, ValueError) as exc:
        return Check("PSU", False, f"{resource}: cannot open the resource ({exc})",
                     "switch the supply on and check its address (LAN: ping it; `TCPIP::<ip>::5025::SOCKET`) "
                     "and [psu] resource in the bench file")
    try:
        ident = PowerSupply._identify(res, resource)
    except PsuTimeoutError as exc:
        return Check("PSU", False, f"{resource}: *IDN?: {exc.problem} within {timeout_s:g} s",
                     "switch the supply on and check [psu] resource (address, port) and that it speaks SCPI there")
    except PsuProtocolError as exc:
        return Check("PSU", False, f"{resource}: *IDN?: {exc.problem}",
                     "check that [psu] resource is the supply's SCPI port and that no other program talks to it")
    except PsuError as exc:
        return Check("PSU", False, f"{resource}: *IDN?: {exc.problem}",
                     "nothing answers at that address: switch the supply on, check its LAN/USB connection and "
                     "[psu] resource (address and port) in the bench file")
    finally:
        with contextlib.suppress(Exception):  # closing a broken session must not hide the answer
            res.close()
    found = f"{resource}: {ident.manufacturer} {ident.model} (serial {ident.serial}, firmware {ident.firmware})"
    try:
        dialect_for(ident.model, channel)
    except KeyError:
        return Check("PSU", False, found + ": no SCPI dialect for this model",
                     "use a supported supply (Keysight E36311A/E36312A/E3631A, Rigol DP8xx)")
    except ValueError as exc:
        return Check("PSU", False, f"{found}: {exc}", "fix [psu] channel in the bench file")
    return Check("PSU", True, f"{found}, channel {channel}")


def check_cloud(api_url: str, token_env: str, product: int, env: Mapping[str, str],
                timeout_s: float) -> list[Check]:
    """The token in $token_env is accepted (GET /v1/access_tokens/current) and the product's firmware
    list can be read (GET /v1/products/N/firmware). The token is never put in a line."""
    from .cloud import AuthError, CloudError, NotFound, ParticleCloud

    token = env.get(token_env, "")
    if not token:
        return [Check("cloud token", False, f"${token_env} is not set (cloud.token_env names it)",
                      f"export {token_env}=<a token of a member of product {product}> (`particle token create`; "
                      "in CI: the repository secret the workflow maps to it)")]
    cloud = ParticleCloud(api_url, token, product=product, timeout=timeout_s, retries=0)
    try:
        try:
            info = cloud.token_info()
            seen = f"expires {info.get('expires_at') or 'never'}" if isinstance(info, dict) else "accepted"
        except NotFound:
            cloud.user()
            seen = "accepted"
    except AuthError:
        return [Check("cloud token", False, f"{api_url} refused the token in ${token_env} (401)",
                      f"create a new token (`particle token create`) and put it in ${token_env} "
                      "(in CI: update the repository secret)")]
    except CloudError as exc:
        if exc.status == 0:
            return [Check("cloud token", False, f"{api_url}: no answer (cannot check the token)",
                          "check the network, proxy settings (HTTPS_PROXY) and cloud.api_url in the bench file")]
        return [Check("cloud token", False, f"{api_url}: {exc}", "check cloud.api_url in the bench file")]
    out = [Check("cloud token", True, f"${token_env} accepted by {api_url} ({seen}; not shown)")]
    try:
        versions = cloud.list_firmware(product)
    except NotFound:
        out.append(Check("product", False, f"product {product}: not found for this token",
                         "fix cloud.product_id in the bench file (the product's ID in the console)"))
    except CloudError as exc:
        fix = (f"use a token of a team member of product {product}" if exc.status in (401, 403)
               else "check the network and cloud.api_url")
        out.append(Check("product", False, f"product {product}: {exc}", fix))
    else:
        nums = sorted(int(v.get("version", 0)) for v in versions if isinstance(v, dict)) if isinstance(versions, list) \
            else []
        out.append(Check("product", True, f"product {product}: {len(nums)} firmware version(s)"
                         + (f", highest v{nums[-1]}" if nums else "")))
    finally:
        cloud.session.close()
    return out


def check_labgrid(env: Mapping[str, str], timeout_s: float) -> Check:
    """The labgrid coordinator $LG_COORDINATOR names answers a TCP connect (reachability only)."""
    value = env.get("LG_COORDINATOR", "").strip()
    if not value:
        return Check("labgrid coordinator", True, "$LG_COORDINATOR not set: no coordinator to reach")
    m = re.match(r"^(?:[a-z]+://)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?", value)
    if m is None:
        return Check("labgrid coordinator", False, f"$LG_COORDINATOR = {value!r}: not host:port",
                     "set LG_COORDINATOR=host:port (the coordinator's address, port 20408 by default)")
    host, port = m.group(1).strip("[]"), int(m.group(2) or LABGRID_PORT)
    why = tcp_reachable(host, port, timeout_s)
    if why is None:
        return Check("labgrid coordinator", True, f"{host}:{port} reachable")
    return Check("labgrid coordinator", False, f"{host}:{port}: {why}",
                 "start labgrid-coordinator there, or fix LG_COORDINATOR (host:port); check the firewall")


def check_labgrid_client(env: Mapping[str, str]) -> Check:
    """With a coordinator named, the labgrid-client `otarig run --place` uses (docs/lab.md §2)."""
    from .lab import LabError, find_client

    try:
        return Check("labgrid client", True, f"{find_client(env)} (for otarig run --place)")
    except LabError as exc:
        return Check("labgrid client", False, "no labgrid-client for otarig run --place",
                     str(exc).split(": ", 1)[-1])


# -- the whole doctor ------------------------------------------------------------------------------------


def load_bench(path: Path) -> BenchConfig:
    """The bench file checked as `otarig run` checks it, except that a board's port missing right
    now is a doctor line, not an error."""
    from pydantic import ValidationError

    from .config import _secret_problems, load, read_toml

    data = read_toml(path, ConfigError, "pass --bench PATH, or `otarig init` writes one")
    problems = _secret_problems(data, path)  # a token pasted into the file: refused, never shown
    if problems:
        raise ConfigError("\n".join(problems))
    try:
        return BenchConfig.model_validate(data)
    except ValidationError:
        load(path)  # raises ConfigError with one line per problem (and secrets redacted)
        raise


def _host_usb_checks(cfg: BenchConfig | None, host: Host, *, stand_in: bool) -> list[Check]:
    """USB devices, each board, the tester board, permissions, udev, groups, ModemManager."""
    t = host.timeout_s
    ports = host.comports()
    serial = serial_devices(ports, by_id=host.by_id)
    dfu = dfu_devices(host.sysfs)
    testers = tester_ports(ports)
    checks = [check_usb(serial, dfu, testers, needed=not stand_in)]
    open_ports: list[str] = []
    if cfg is not None:
        for b in cfg.boards:
            c = check_board(b, serial, dfu, t)
            checks.append(c)
            if c.ok:
                open_ports.append(b.port or c.detail.rsplit(": ", 1)[-1])
        if cfg.bench_companion is not None:
            checks.append(check_tester(cfg.bench_companion.port, testers, t))
            open_ports.append(cfg.bench_companion.port)
    else:
        open_ports += [d.port for d in serial if d.port] + [str(p.device) for p in testers]
    checks.append(check_port_access(open_ports, host.uid))
    if stand_in:
        not_needed = "not needed on a stand-in bench (its boards are ptys, not USB)"
        checks += [Check("udev rules", True, not_needed), Check("groups", True, not_needed),
                   Check("ModemManager", True, not_needed)]
    else:
        checks.append(check_udev_rules(host.udev_dirs))
        checks.append(check_groups(host.uid, host.group_names(), _user_groups(host.uid) if host.uid else ()))
        checks.append(check_modemmanager(host.modemmanager(), host.udev_dirs))
    return checks


def _secrets(cfg: BenchConfig | None, env: Mapping[str, str]) -> list[str]:
    from .cloud import TOKEN_ENV_VARS

    names = {*TOKEN_ENV_VARS, *([cfg.cloud.token_env] if cfg is not None else [])}
    return sorted({env[n] for n in names if len(env.get(n, "")) >= 4}, key=len, reverse=True)


def run(bench: Path, host: Host | None = None) -> Report:
    """Every check for the bench file at `bench` (see the module's docstring)."""
    host = host or Host()
    cfg: BenchConfig | None = None
    try:
        loaded = load_bench(bench)
    except ConfigError as exc:
        fix = ("`otarig init --real DIR` writes a lab bench template; or pass --bench FILE"
               if not bench.exists() else "fix the bench file (docs/real-bench.md §4)")
        checks = [Check("bench file", False, str(exc), fix)]
    else:
        cfg = loaded
        checks = [Check("bench file", True, f"{bench} ({loaded.bench.name}, kind = {loaded.bench.kind!r}"
                        + (", a stand-in: a simulated world reached as a real bench" if loaded.stand_in else "")
                        + ")")]
    base = bench.resolve().parent
    if cfg is not None and cfg.simulated:
        kind = "simulated"
        checks.append(check_compiler(host.env))
        if checks[-1].ok:
            checks.append(check_host_build(cfg))
        checks += check_particle_cli(cfg.particle_cli.path, base, cfg.particle_cli.version)
        checks.append(Check("simulated bench", True, "boards, tester board, PSU and cloud are simulated in-process: "
                            "no USB, udev, ModemManager, instrument or token to check"))
    else:
        kind = "unknown" if cfg is None else ("stand-in" if cfg.stand_in else "real")
        checks += _host_usb_checks(cfg, host, stand_in=cfg is not None and cfg.stand_in)
        checks += check_particle_cli(cfg.particle_cli.path if cfg else "tools/particle-cli",
                                     base if cfg else Path.cwd().resolve(), cfg.particle_cli.version if cfg else None)
        if cfg is not None:
            if cfg.psu is not None and cfg.capabilities.psu:
                checks.append(check_psu(cfg.psu.resource, cfg.psu.channel, min(cfg.psu.timeout_s, host.timeout_s)))
            else:
                checks.append(Check("PSU", True, "none on this bench (capabilities.psu is false)"))
            checks += check_cloud(cfg.cloud.api_url, cfg.cloud.token_env, cfg.cloud.product_id, host.env,
                                  host.timeout_s)
        checks.append(check_labgrid(host.env, host.timeout_s))
        if host.env.get("LG_COORDINATOR", "").strip():
            checks.append(check_labgrid_client(host.env))
    secrets = _secrets(cfg, host.env)
    return Report(str(bench), kind, [c.redacted(secrets) for c in checks])
