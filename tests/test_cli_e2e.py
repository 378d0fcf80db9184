"""The real `particle` CLI (3.51.0) aimed at the simulated cloud over HTTP (issue #3 "Must show" c).

Pacing: the CLI is a separate process that waits in wall time for HTTP answers, and what it starts
(an OTA) needs virtual time to pass. Each CLI call therefore runs through
`otarig.sim.launcher.pump_while`, which advances the world in 50 ms virtual steps with a tiny wall
wait until the CLI exits. That pump is the one place a simulated test waits on wall time, because
the CLI is a real process. Everything else (board waits) runs in virtual time.

Skips locally when the CLI is not installed (tools/particle-cli/install.sh); fails under CI.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from otarig.board import Board
from otarig.particle_cli import AuthError, ParticleCli
from otarig.sim.bench import SimBench
from otarig.sim.build import build_companion
from otarig.sim.cloud_http import CloudHttpServer
from otarig.sim.electron import Electron
from otarig.sim.images import make_app_image
from otarig.sim.launcher import pump_while

PRODUCT = 4242
DID = "e00fce680000000000000001"


pytestmark = pytest.mark.usefixtures("require_particle_cli")


@dataclass
class World:
    bench: SimBench
    server: CloudHttpServer
    cli: ParticleCli
    dev: Electron
    board: Board


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One bench for the module (CLI calls cost ~1 s each; the state they leave is what the next
    test builds on, in file order). The good companion build: its guard holds updates until idle."""
    tmp = tmp_path_factory.mktemp("cli-e2e")
    v1 = make_app_image(build_companion(1), product_id=PRODUCT, product_version=1)
    bench = SimBench(seed=11, workdir=tmp / "world")
    dev = bench.add_electron(DID, product_id=PRODUCT, image=v1)
    server = CloudHttpServer(bench)
    server.start()
    board = bench.open_board(DID, tmp / "board.log")
    board.expect(lambda e: e.name == "sys" and e.get("param") == "connected", 120)
    bench.run_for(10)
    cli = ParticleCli(tmp / "home", server.url, lambda: server.token, timeout=60)
    try:
        yield World(bench, server, cli, dev, board)
    finally:
        board.close()
        server.stop()
        bench.close()


def test_publish(world: World) -> None:
    result = pump_while(world.bench, lambda: world.cli.publish("otarig/e2e", "hello"))
    assert result.rc == 0 and "otarig/e2e" in result.output
    ev = [e for e in world.bench.cloud.events if e["name"] == "otarig/e2e"]
    assert ev and ev[-1]["data"] == "hello"


def test_call_and_get(world: World) -> None:
    assert pump_while(world.bench, lambda: world.cli.get(DID, "version")) == 1
    assert pump_while(world.bench, lambda: world.cli.call(DID, "workload", "busy")) == 0
    world.board.expect(lambda e: e.name == "app" and e.get("action") == "workload" and e.get("state") == "busy", 10)
    assert pump_while(world.bench, lambda: world.cli.call(DID, "workload", "idle")) == 0
    world.board.expect(lambda e: e.name == "app" and e.get("action") == "workload" and e.get("state") == "idle", 10)


def test_subscribe_max_with_prefix(world: World) -> None:
    """`subscribe otarig --max 2`: the server filters by prefix; events are published (in the world
    thread) once the CLI's stream is open."""
    published = []

    def publish_when_subscribed() -> None:
        if not published and world.server.stream_count >= 1:
            for name in ("otarig/one", "spark/other", "otarig/two"):
                world.bench.cloud.publish_to_devices(name, name)
            published.append(True)

    events = pump_while(world.bench, lambda: world.cli.subscribe("otarig", max_events=2, timeout=60),
                        on_step=publish_when_subscribed)
    assert [e["name"] for e in events] == ["otarig/one", "otarig/two"]
    assert events[0]["data"] == "otarig/one"


def test_flash_bin_cloud_ota_applies_on_board(world: World, tmp_path: Path) -> None:
    """`particle flash <device> <file.bin>`: a cloud OTA of a module from make_app_image. The guard
    refuses it at first (updates disabled), takes the pending update in its idle window, and the
    board reboots into v3."""
    v3 = make_app_image(build_companion(3), product_id=PRODUCT, product_version=3, size=60 * 1024)
    path = tmp_path / "app-v3.bin"
    path.write_bytes(v3)
    result = pump_while(world.bench, lambda: world.cli.flash_cloud(DID, path))
    assert "Flash success" in result.output
    world.board.expect(lambda e: e.name == "hello" and e.get("product_version") == 3, 600)
    log = world.bench.cloud.transfer_log
    assert log[-1]["outcome"] == "success" and log[-1]["size"] == len(v3)
    assert world.dev.running_version == 3
    print(f"\nbytes: {world.dev.link.stats.as_dict()}")


def test_expired_token_is_auth_error(world: World) -> None:
    world.server.faults.token_expired = True
    try:
        with pytest.raises(AuthError):
            pump_while(world.bench, lambda: world.cli.get(DID, "version"))
    finally:
        world.server.faults.token_expired = False
    assert world.server.token not in str(world.cli.transcript_records())
