"""Shared fixtures for the rig's own tests: companion builds, simulated benches, boards.

Keep this file small: a fixture belongs here when two or more test files use it; plain helpers
(SimRig, constants) live in `sim_helpers.py`. Everything simulated runs in virtual time (docs/design.md
principle 4); nothing here sleeps in wall time.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sim_helpers import DEVICE_ID, PRODUCT_ID, ImageFactory, RigFactory, SimRig

from otarig import resources
from otarig.sim.bench import SimBench
from otarig.sim.build import build_companion
from otarig.sim.images import make_app_image


# -- firmware -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def companion_image() -> ImageFactory:
    """`companion_image(version, *, threaded=True, mode=None, mutant=0, defines=None, **image)`.

    Builds the real companion with g++ (cached by source hash, so only the first call per variant
    compiles) and wraps it in a Particle module binary; `image` goes to `make_app_image`
    (e.g. `size=OTA_SIZE`, `platform_id=12`, `required_system_version=...`).
    """
    cache: dict[tuple, bytes] = {}

    def make(version: int, *, threaded: bool = True, mode: str | None = None, mutant: int = 0,
             defines: dict[str, object] | None = None, **image: Any) -> bytes:
        extra = dict(defines or {})
        if mode is not None:
            extra["OTARIG_SYSTEM_MODE"] = mode
        key = (version, threaded, mutant, tuple(sorted(extra.items())), tuple(sorted(image.items())))
        if key not in cache:
            so = build_companion(version, threaded=threaded, mutant=mutant, product_id=PRODUCT_ID,
                                 extra_defines=extra or None)
            cache[key] = make_app_image(so, product_id=PRODUCT_ID, product_version=version, **image)
        return cache[key]

    return make


@pytest.fixture
def product_bench() -> Iterator[SimBench]:
    """A simulated bench (seed 3) whose cloud has the product PRODUCT_ID, closed after the test: for
    tests that add their own Electron and talk to the cloud."""
    b = SimBench(seed=3)
    b.cloud.add_product(PRODUCT_ID)
    yield b
    b.close()


@pytest.fixture
def sim_rig(tmp_path: Path) -> Iterator[RigFactory]:
    """`sim_rig(image, *, seed=1, board=True, factory=None, **add_electron)` → a `SimRig`.

    Each call makes its own `SimBench` (closed at teardown) with one Electron USB-flashed with
    `image`; the board is opened on the device's real pty with pyserial, and its log is
    `tmp_path/<n>.log`. `bench_kw` goes to `SimBench` (device_params, cloud_params). With
    `power_on=False` the device stays off (set up its flash, then `rig.power_on()`).
    """
    benches: list[SimBench] = []

    def make(image: bytes | None, *, seed: int = 1, board: bool = True, factory: bytes | None = None,
             bench_kw: dict[str, Any] | None = None, **add: Any) -> SimRig:
        n = len(benches)
        bench = SimBench(seed, workdir=tmp_path / f"bench{n}", **(bench_kw or {}))
        benches.append(bench)
        power_on = add.pop("power_on", True)
        dev = bench.add_electron(DEVICE_ID, product_id=PRODUCT_ID, image=image, power_on=False, **add)
        if factory is not None:
            dev.flash.factory = factory
        if power_on:
            dev.power_on()
        log = tmp_path / f"{n}.log"
        opened = bench.open_board(DEVICE_ID, log) if board and power_on else None
        return SimRig(bench, dev, opened, log)

    yield make
    for bench in benches:
        for slot in bench.slots.values():
            if slot.board is not None:
                slot.board.close()
        bench.close()


# -- installed tools: skip without them locally; in CI (env CI set) their absence is a failure -----
def _not_installed(msg: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def require_particle_cli() -> None:
    """The pinned particle CLI (`otarig tools install`, or tools/particle-cli/install.sh)."""
    from otarig.particle_cli import DEFAULT_CLI_JS

    if not DEFAULT_CLI_JS.is_file():
        _not_installed(f"particle-cli not installed ({DEFAULT_CLI_JS} missing): run `otarig tools install`")


#: the pinned MicroPython: a checkout's tools/micropython when installed there, else the user's cache
MICROPYTHON_TOOLS = resources.tool_dir("micropython")
MICROPYTHON_INSTALL = "run `otarig tools install`"


@pytest.fixture(scope="session")
def micropython_cmd() -> list[str]:
    """`[node, run.mjs]`: runs Python on MicroPython 1.27 (WebAssembly; tools/micropython/run.mjs)."""
    port = MICROPYTHON_TOOLS / "node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs"
    pinned = sorted((resources.tool_dir("particle-cli") / "node_modules").glob("node-linux-*/bin/node"))
    node = str(pinned[0]) if pinned else shutil.which("node")
    if node is None:
        _not_installed(f"no Node.js (tools/particle-cli's pinned Node 22 or node on PATH): {MICROPYTHON_INSTALL}")
    if not port.is_file():
        _not_installed(f"MicroPython (WebAssembly) not installed ({port} missing): {MICROPYTHON_INSTALL}")
    return [str(node), str(MICROPYTHON_TOOLS / "run.mjs")]


@pytest.fixture(scope="session")
def micropython_stubs() -> Path:
    """tools/micropython/stubs: MicroPython 1.27's rp2 type stubs (for tools/micropython/mypy.ini)."""
    stubs = MICROPYTHON_TOOLS / "stubs"
    if not (stubs / "machine.pyi").is_file():
        _not_installed(f"MicroPython rp2 stubs not installed ({stubs} missing): {MICROPYTHON_INSTALL}")
    return stubs


@pytest.fixture(scope="session")
def labgrid_bin() -> Path:
    """The folder of labgrid's coordinator, exporter and client (`otarig tools install labgrid`),
    with ser2net beside them (the exporter serves serial ports with it; `apt-get install ser2net`)."""
    from otarig.lab import LabError, find_client

    try:
        folder = Path(find_client()).parent
    except LabError as exc:
        _not_installed(str(exc))
    if not (folder / "labgrid-exporter").is_file():
        _not_installed(f"labgrid-exporter not beside {folder / 'labgrid-client'}: run `otarig tools install labgrid`")
    if shutil.which("ser2net") is None and not Path("/usr/sbin/ser2net").is_file():
        _not_installed("ser2net not installed: `apt-get install -y ser2net` (.ci/run does)")
    return folder


# -- the usual pair: v1 flashed over USB, a 100 KB v2 to deliver over the air ---------------------
class OtaImages:
    def __init__(self, v1: bytes, v2: bytes) -> None:
        self.v1, self.v2 = v1, v2


@pytest.fixture(scope="session")
def images(companion_image: ImageFactory) -> OtaImages:
    """`images.v1` (to flash) and `images.v2` (100 KB, docs/reference/particle-ota.md §5's example size, to release)."""
    return OtaImages(companion_image(1), companion_image(2, size=100 * 1024))

