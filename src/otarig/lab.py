"""A labgrid place as a bench: `otarig run --place NAME` (docs/lab.md).

labgrid does the locking and the inventory; otarig runs on the exporter host and opens the
place's ports locally (docs/lab.md §1 says why not over ser2net). The place is acquired with
`labgrid-client` from labgrid's own venv (`otarig tools install labgrid`), read back with
`labgrid-client show`, turned into a bench file (its DUT port, tester port, VISA resource and
tags overlaid on the `--bench` file), and released whatever happens: an error, Ctrl-C, SIGTERM.

labgrid-client runs without any variable that could hold the cloud token (only `LG_TOKEN`, the
reservation token, is kept): the token never reaches the coordinator.
"""
from __future__ import annotations

import ast
import contextlib
import copy
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import resources
from .config import COMPANION_CAPABILITIES, Capabilities, read_toml

#: how long one labgrid-client call may take (the coordinator answers in ~1 s)
CLIENT_TIMEOUT_S = 60.0
#: the resource names a place uses for each part (a match may rename: `add-named-match … dut`)
DUT, TESTER, PSU, DFU = "dut", "tester", "psu", "dfu"
#: variables labgrid-client never sees: anything that may hold a credential, except labgrid's
#: own reservation token (LG_TOKEN, what `-p +` finds the reserved place by)
_SECRET_VAR = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY", re.IGNORECASE)
_RESOURCE = re.compile(r"^(?:Acquired|Matching) resource '(?P<name>[^']+)' \((?P<path>[^)]+)\):$")


class LabError(Exception):
    """A place could not be used; the message names the place, what is wrong and the fix."""


@dataclass(frozen=True)
class PlaceResource:
    """One resource of a place as the coordinator describes it."""

    name: str
    path: str  # exporter/group/class/name
    cls: str
    params: dict[str, Any]
    avail: bool

    @property
    def exporter(self) -> str:
        return self.path.split("/", 1)[0]


@dataclass(frozen=True)
class Place:
    """A place: its tags, who holds it, and its resources by name."""

    name: str
    tags: dict[str, str] = field(default_factory=dict)
    acquired: str | None = None
    resources: dict[str, PlaceResource] = field(default_factory=dict)


def parse_show(text: str) -> Place:
    """`labgrid-client -p NAME show` as a `Place` (the resource blocks are Python literals)."""
    lines = text.splitlines()
    head = re.match(r"^Place '(?P<name>[^']+)':$", lines[0]) if lines else None
    if head is None:
        raise LabError(f"labgrid-client show printed no place ({text[:200]!r})")
    tags: dict[str, str] = {}
    acquired: str | None = None
    found: dict[str, PlaceResource] = {}
    i = 1
    while i < len(lines):
        line = lines[i]
        if line.startswith("  tags: "):
            tags = dict(kv.split("=", 1) for kv in line[len("  tags: "):].split(", ") if "=" in kv)
        elif line.startswith("  acquired: "):
            value = line[len("  acquired: "):].strip()
            acquired = None if value == "None" else value
        elif (m := _RESOURCE.match(line)) is not None:
            block = []
            while i + 1 < len(lines) and lines[i + 1].startswith("  "):
                i += 1
                block.append(lines[i])
            data = ast.literal_eval("\n".join(block).strip())
            found[m["name"]] = PlaceResource(m["name"], m["path"], str(data.get("cls")),
                                             dict(data.get("params") or {}), bool(data.get("avail")))
        i += 1
    return Place(head["name"], tags, acquired, found)


def client_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The environment labgrid-client runs in: everything but what may hold a credential."""
    return {k: v for k, v in env.items() if k == "LG_TOKEN" or not _SECRET_VAR.search(k)}


def find_client(env: Mapping[str, str] | None = None) -> str:
    """labgrid-client: `$OTARIG_LABGRID_CLIENT`, else `otarig tools install labgrid`'s, else PATH's."""
    env = os.environ if env is None else env
    given = env.get("OTARIG_LABGRID_CLIENT")
    if given:
        if not os.access(given, os.X_OK):
            raise LabError(f"OTARIG_LABGRID_CLIENT = {given!r}: not an executable; point it at labgrid-client")
        return given
    pinned = resources.tool_dir("labgrid") / "venv" / "bin" / "labgrid-client"
    if pinned.is_file():
        return str(pinned)
    on_path = shutil.which("labgrid-client")
    if on_path:
        return on_path
    raise LabError("labgrid-client not found: run `otarig tools install labgrid` (labgrid in a venv of its own), "
                   "or set OTARIG_LABGRID_CLIENT to one")


class LabgridClient:
    """`labgrid-client` as a subprocess, in its own session (a Ctrl-C at the terminal reaches
    otarig, which then releases; it must not kill a release under way)."""

    def __init__(self, executable: str | None = None, *, env: Mapping[str, str] | None = None,
                 timeout_s: float = CLIENT_TIMEOUT_S) -> None:
        self.env = client_environment(os.environ if env is None else env)
        self.executable = executable or find_client(self.env)
        self.timeout_s = timeout_s

    @property
    def coordinator(self) -> str:
        return self.env.get("LG_COORDINATOR", "127.0.0.1:20408")

    def run(self, place: str, *args: str) -> str:
        """One command on one place; its stdout, or LabError with labgrid's own message."""
        cmd = [self.executable, "-p", place, *args]
        try:
            done = subprocess.run(cmd, check=False, env=self.env, capture_output=True, text=True, timeout=self.timeout_s,
                                  start_new_session=True, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise LabError(f"labgrid-client -p {place} {' '.join(args)}: no answer in {self.timeout_s:g} s from the "
                           f"coordinator at {self.coordinator} (is labgrid-coordinator running? LG_COORDINATOR)") from None
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip()).splitlines()
            why = said[-1].removeprefix("labgrid-client: ") if said else f"exit {done.returncode}"
            raise LabError(f"labgrid-client -p {place} {' '.join(args)}: {why}")
        return done.stdout

    def show(self, place: str) -> Place:
        return parse_show(self.run(place, "show"))

    def acquire(self, place: str) -> None:
        self.run(place, "acquire")

    def release(self, place: str) -> None:
        self.run(place, "release")


# -- the place as a bench file ---------------------------------------------------------------------

def _local_names() -> set[str]:
    names = {"localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()}
    with contextlib.suppress(OSError):
        names.update(socket.gethostbyname_ex(socket.gethostname())[2])
    return names


def _pick(place: Place, name: str, classes: tuple[str, ...], *, exclude: tuple[str, ...] = ()) -> PlaceResource | None:
    """The resource called `name`, else the only one of these classes (not named in `exclude`)."""
    if name in place.resources:
        return place.resources[name]
    candidates = [r for r in place.resources.values() if r.cls in classes and r.name not in exclude]
    if len(candidates) > 1:
        raise LabError(f"place {place.name}: {len(candidates)} {'/'.join(classes)} resources "
                       f"({', '.join(sorted(r.name for r in candidates))}) and none named {name!r}; rename the one "
                       f"to use (`labgrid-client -p {place.name} add-named-match EXPORTER/GROUP/CLASS/NAME {name}`)")
    return candidates[0] if candidates else None


def _local_port(place: Place, res: PlaceResource, local: set[str]) -> str:
    """The local path of an exported serial port, as the by-id link when udev made one (that name
    survives re-enumeration; the ttyACM node behind it may not)."""
    if not res.avail:
        raise LabError(f"place {place.name}: resource {res.name!r} ({res.path}) is not available (unplugged, or "
                       "its exporter is down)")
    host = str(res.params.get("host", ""))
    path = str((res.params.get("extra") or {}).get("path") or "")
    if host and host not in local:
        raise LabError(f"place {place.name}: {res.name!r} is exported by {host}; otarig runs on the exporter host "
                       f"and opens the port there (docs/lab.md §1): run otarig on {host}")
    if not path:
        raise LabError(f"place {place.name}: {res.name!r} ({res.cls}) names no local path; export it as a "
                       "USBSerialPort or RawSerialPort")
    from .discovery import BY_ID, _by_id_links

    return _by_id_links(BY_ID).get(os.path.realpath(path), path)


def _capabilities(place: Place) -> dict[str, bool] | None:
    """The `capabilities` tag (comma-separated names) as the bench file's table, or None."""
    text = place.tags.get("capabilities")
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = tuple(Capabilities.model_fields)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise LabError(f"place {place.name}: tag capabilities names {', '.join(unknown)}; known: {', '.join(known)}")
    return {n: n in names for n in known}


def _absolute(data: dict[str, Any], base: Path) -> None:
    """Paths of the `--bench` file made absolute: the place's bench file is written elsewhere."""
    fw = data.get("firmware") or {}
    for table in ("versions", "nonthreaded"):
        for key, path in list((fw.get(table) or {}).items()):
            fw[table][key] = str((base / path).resolve())
    cli = data.get("particle_cli") or {}
    if "path" in cli:
        cli["path"] = str((base / cli["path"]).resolve())


def place_bench_data(data: dict[str, Any], base: Path, place: Place, *, coordinator: str,
                     local: set[str] | None = None) -> dict[str, Any]:
    """The `--bench` file's tables with what the place says overlaid: the DUT (tag `device_id`,
    resource `dut`), the tester's port (`tester`), the PSU's VISA resource (`psu`, a PyVISADevice),
    the product (tag `product`) and the capabilities (tag `capabilities`), plus a `[lab]` table
    naming the place for the record."""
    local = _local_names() if local is None else local
    out = copy.deepcopy(data)
    _absolute(out, base)
    device_id = place.tags.get("device_id")
    if not device_id:
        raise LabError(f"place {place.name}: no device_id tag; tag it with the DUT's device ID "
                       f"(`labgrid-client -p {place.name} set-tags device_id=<24 hex digits>`)")
    dut = _pick(place, DUT, ("NetworkSerialPort", "USBSerialPort", "RawSerialPort"), exclude=(TESTER,))
    if dut is None:
        raise LabError(f"place {place.name}: no serial port resource for the DUT (name it {DUT!r})")
    out["bench"] = {**(out.get("bench") or {}), "kind": "real"}
    out["boards"] = [{"id": device_id, "platform": "electron", "role": "dut", "port": _local_port(place, dut, local)}]
    if "product" in place.tags:
        try:
            out.setdefault("cloud", {})["product_id"] = int(place.tags["product"])
        except ValueError:
            raise LabError(f"place {place.name}: tag product = {place.tags['product']!r}: expected the product ID "
                           "(a number)") from None
    caps = {**(out.get("capabilities") or {}), **(_capabilities(place) or {})}
    tester = place.resources.get(TESTER)
    if tester is not None:
        out["bench_companion"] = {**(out.get("bench_companion") or {}), "port": _local_port(place, tester, local)}
    else:
        out.pop("bench_companion", None)
        caps.update({c: False for c in COMPANION_CAPABILITIES})
    psu = _pick(place, PSU, ("PyVISADevice",))
    if psu is not None:
        out["psu"] = {**(out.get("psu") or {}), "resource": f"{psu.params['type']}::{psu.params['url']}"}
    else:
        caps["psu"] = False
    out["capabilities"] = caps
    dfu = place.resources.get(DFU)
    out["lab"] = {"place": place.name, "coordinator": coordinator, "acquired_by": place.acquired or "",
                  "resources": {r.name: r.path for r in (dut, tester, psu, dfu) if r is not None}}
    return out


# -- acquire, run, release -------------------------------------------------------------------------

#: how long the coordinator may take to list a freshly acquired place's resources
RESOURCES_WAIT_S = 30.0


def _held_resources(client: LabgridClient, name: str) -> Place:
    """The place once the coordinator lists its acquired resources: right after `acquire` it
    shows the place held with none for a moment (they are attached asynchronously)."""
    deadline = time.monotonic() + RESOURCES_WAIT_S
    while True:
        place = client.show(name)
        if place.resources:
            return place
        if time.monotonic() > deadline:
            raise LabError(f"place {name}: acquired, but the coordinator listed none of its resources within "
                           f"{RESOURCES_WAIT_S:g} s; is its exporter running? (`labgrid-client -p {name} show`)")
        time.sleep(0.2)  # polling another process (labgrid's coordinator) in wall time


@contextlib.contextmanager
def place_bench(place_name: str, bench_path: Path, *, client: LabgridClient | None = None,
                folder: Path | None = None) -> Iterator[Path]:
    """Acquire the place, yield the bench file made from it, release it in every case.

    SIGINT and SIGTERM end what runs inside like Ctrl-C (the run writes its record), and the release
    still runs; a signal during the release is only noted. What the signal ended with (its
    KeyboardInterrupt, `RunInterrupted`) passes through unchanged: the exit status is decided once,
    by `otarig run` (`cli.cmd_run`). `+` is the place `labgrid-client reserve` gave `$LG_TOKEN`."""
    import tomli_w

    from .runner import sigterm_interrupts

    client = client or LabgridClient()
    if place_name == "+" and not client.env.get("LG_TOKEN"):
        raise LabError("--place +: the reserved place is the one $LG_TOKEN names, and it is not set; reserve one "
                       "first: eval \"$(labgrid-client reserve --wait --shell device_id=…)\"")
    data = read_toml(bench_path, LabError, "pass --bench with the bench file the place completes")
    with sigterm_interrupts() as signals:  # the command's own owner when `otarig run` holds one
        name = client.show(place_name).name  # `+` → the reserved place's real name
        try:
            client.acquire(name)
        except KeyboardInterrupt:  # stopped while `labgrid-client acquire` ran: the coordinator may
            signals.raising = False  # have granted it already, and the release then runs to its end
            with contextlib.suppress(LabError):  # (not held: nothing to release)
                client.release(name)
            raise
        try:
            place = _held_resources(client, name)
            derived = place_bench_data(data, bench_path.resolve().parent, place, coordinator=client.coordinator)
            out_dir = folder or resources.cache_root() / "places"
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.toml"
            path.write_text(f"# written by `otarig run --place {name}` from {bench_path.resolve()} and the place\n"
                            + tomli_w.dumps(derived))
            yield path
        finally:
            signals.raising = False  # the release runs to its end
            try:
                client.release(name)
            except LabError as exc:
                print(f"otarig: could not release place {name}: {exc}; release it by hand: "
                      f"`labgrid-client -p {name} release`", flush=True)


def bench_for(place: str | None, bench_path: Path) -> contextlib.AbstractContextManager[Path]:
    """The bench file to run: `bench_path` itself, or (with a place) the one made from the place
    while it is held."""
    return place_bench(place, bench_path) if place else contextlib.nullcontext(bench_path)
