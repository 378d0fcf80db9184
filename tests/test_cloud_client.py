"""otarig.cloud against the simulated cloud over real HTTP, with simulated Electrons running the
companion firmware behind real ptys (issue #3 "Must show" a, b, d).

Time: the world advances only in this (the test's) thread, through board waits and `bench.run_for`.
The client's HTTP calls are answered while the world is paused. Events travel to the client's SSE
reader thread over loopback, so `stream.wait_for` is a bounded wall-time wait on a queue for an
event the world has already emitted.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from otarig.board import Board
from otarig.cloud import AuthError, CloudError, Event, NotFound, ParticleCloud, ServerError, find_credentials
from otarig.sim.bench import SimBench
from otarig.sim.build import build_companion
from otarig.sim.cloud_http import CloudHttpServer
from otarig.sim.electron import Electron
from otarig.sim.images import make_app_image
from otarig.sim.link import FULL_HANDSHAKE_BYTES, ota_on_air_bytes

PRODUCT = 4242
DID = "e00fce680000000000000001"
APP_SIZE = 100 * 1024


@dataclass
class Rig:
    bench: SimBench
    server: CloudHttpServer
    client: ParticleCloud
    dev: Electron
    board: Board

    def flash_status(self, ev: Event, status: str) -> bool:
        return ev.name == "spark/flash/status" and ev.data.strip() == status and ev.coreid == DID


def _images(mutant: int) -> tuple[bytes, bytes]:
    v1 = make_app_image(build_companion(1, mutant=mutant), product_id=PRODUCT, product_version=1)
    v2 = make_app_image(build_companion(2, mutant=mutant), product_id=PRODUCT, product_version=2, size=APP_SIZE)
    return v1, v2


def _rig(tmp_path: Path, mutant: int) -> Iterator[tuple[Rig, bytes]]:
    v1, v2 = _images(mutant)
    bench = SimBench(seed=7, workdir=tmp_path / "world")
    dev = bench.add_electron(DID, product_id=PRODUCT, image=v1)
    server = CloudHttpServer(bench)
    server.start()
    client = ParticleCloud(server.url, server.token, product=PRODUCT, backoff=0.01)
    board = bench.open_board(DID, tmp_path / "board.log")
    board.expect(lambda e: e.name == "sys" and e.get("param") == "connected", 120)
    bench.run_for(30)  # past the cloud's post-connection check (docs/reference/particle-ota.md §7.8.1), so a release waits
    try:
        yield Rig(bench, server, client, dev, board), v2
    finally:
        board.close()
        server.stop()
        bench.close()


@pytest.fixture
def updates_enabled(tmp_path: Path) -> Iterator[tuple[Rig, bytes]]:
    """Companion mutant 1 ("never disables updates"): a device with updates enabled."""
    yield from _rig(tmp_path, mutant=1)


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[Rig, bytes]]:
    """The good companion: its OTA guard disables updates until an idle window (docs/reference/particle-ota.md §3.1)."""
    yield from _rig(tmp_path, mutant=0)


def _begins(board: Board) -> list:
    return [e for e in board.events("sys") if e.get("event") == "firmware_update" and e.get("param") == "begin"]


# -- Must show (a) ------------------------------------------------------------------------------


def test_standard_release_lands_at_next_full_handshake(updates_enabled: tuple[Rig, bytes]) -> None:
    """Client uploads v2 over HTTP and releases it (Standard, product default). The device (mutant 1:
    updates enabled) gets it only at its next full handshake — a power cycle, docs/reference/particle-ota.md §1.2 — and
    `spark/flash/status success` reaches the client's SSE stream; the board boots v2 on its pty."""
    rig, v2 = updates_enabled
    c = rig.client
    stream = c.events()
    assert stream.wait_open()
    fw = c.upload_firmware(2, v2, title="v2")
    assert fw["version"] == 2 and fw["size"] == APP_SIZE
    assert c.download_firmware(2) == v2
    rel = c.release(2, product_default=True)
    assert rel["product_default"] is True
    assert c.device(DID)["targeted_firmware_release_version"] == 2

    # Standard: nothing happens on the live session (docs/reference/particle-ota.md §1.1)
    rig.bench.run_for(120)
    assert not _begins(rig.board) and rig.dev.running_version == 1

    stats_before = rig.dev.link.stats.total
    rig.dev.power_off()
    rig.bench.run_for(5)
    rig.dev.power_on()
    rig.board.expect(lambda e: e.name == "hello" and e.get("product_version") == 2, 600)

    started = stream.wait_for(lambda e: rig.flash_status(e, "started"), 10)
    success = stream.wait_for(lambda e: rig.flash_status(e, "success"), 10)
    assert started.published_at <= success.published_at
    rig.board.expect(lambda e: e.name == "sys" and e.get("param") == "connected", 120)
    assert c.device(DID)["firmware_version"] == 2
    stream.close()

    stats = rig.dev.link.stats
    spent = stats.total - stats_before
    print(f"\nbytes the device spent for the update cycle: {spent} (total {stats.as_dict()})")
    assert stats.down["ota"] >= ota_on_air_bytes(APP_SIZE) - 1024  # docs/reference/particle-ota.md §5: ≈117 KB on air for 100 KB
    assert stats.up["handshake"] + stats.down["handshake"] >= 2 * FULL_HANDSHAKE_BYTES  # boot + power cycle
    assert spent < ota_on_air_bytes(APP_SIZE) + 3 * FULL_HANDSHAKE_BYTES


# -- Must show (b) ------------------------------------------------------------------------------


def test_intelligent_release_waits_for_idle_window(guarded: tuple[Rig, bytes]) -> None:
    """Intelligent release while the app is busy (updates disabled): `updates/pending` on the
    stream and `firmware_update_pending` on the board, no `firmware_update begin` while busy; the
    update lands once the companion opens its idle window (docs/reference/particle-ota.md §1.5, §7.8.2-3)."""
    rig, v2 = guarded
    c, board = rig.client, rig.board
    assert board.command("workload", state="busy")["ok"]
    board.expect(lambda e: e.name == "guard" and e.get("action") == "window_close", 10)
    assert c.device(DID)["firmware_updates_enabled"] is False
    stream = c.events(device=DID)
    assert stream.wait_open()
    c.upload_firmware(2, v2)
    c.release(2, product_default=True, intelligent=True)

    pending = stream.wait_for(lambda e: e.name == "particle/device/updates/pending", 10)
    assert pending.data == "true"
    board.expect(lambda e: e.name == "sys" and e.get("event") == "firmware_update_pending", 60)
    rig.bench.run_for(300)  # five busy minutes: the guard must hold the update off
    assert not _begins(board) and rig.dev.running_version == 1

    assert board.command("workload", state="idle")["ok"]
    opened = board.expect(lambda e: e.name == "guard" and e.get("action") == "window_open", 10)
    begin = board.expect(lambda e: e.name == "sys" and e.get("event") == "firmware_update"
                         and e.get("param") == "begin", 120)
    assert begin.t >= opened.t
    board.expect(lambda e: e.name == "hello" and e.get("product_version") == 2, 600)
    stream.wait_for(lambda e: rig.flash_status(e, "success"), 10)
    stream.close()
    print(f"\nbytes: {rig.dev.link.stats.as_dict()}")


# -- Must show (d): injected cloud faults ----------------------------------------------------------


def test_blackholed_transfer_is_retried_from_chunk_0(updates_enabled: tuple[Rig, bytes]) -> None:
    """Blackhole after 60 chunks (set over HTTP): the transfer fails, and the cloud's retry starts
    again from chunk 0 (legacy protocol, docs/reference/particle-ota.md §7.9) and lands."""
    rig, v2 = updates_enabled
    faults = rig.client.session.put(f"{rig.server.url}/otarig/v1/faults", json={"blackhole_after_chunks": 60},
                                    headers={"Authorization": f"Bearer {rig.server.token}"}).json()
    assert faults["blackhole_after_chunks"] == 60
    stream = rig.client.events(device=DID)
    assert stream.wait_open()
    rig.client.upload_firmware(2, v2)
    rig.client.release(2, product_default=True, intelligent=True)
    rig.board.expect(lambda e: e.name == "hello" and e.get("product_version") == 2, 900)
    stream.wait_for(lambda e: rig.flash_status(e, "failed"), 10)
    stream.wait_for(lambda e: rig.flash_status(e, "success"), 10)
    stream.close()
    log = rig.bench.cloud.transfer_log
    assert [t["outcome"] for t in log] == ["failed", "success"]
    assert log[0]["chunks_sent"] == 60 and log[1]["first_chunk"] == 0
    assert log[1]["chunks_sent"] >= log[1]["chunk_count"]  # the whole image again


def test_corrupted_chunk_is_resent(updates_enabled: tuple[Rig, bytes]) -> None:
    rig, v2 = updates_enabled
    rig.bench.cloud.faults.corrupt_chunks = {5, 77}
    rig.client.upload_firmware(2, v2)
    rig.client.release(2, product_default=True, intelligent=True)
    rig.board.expect(lambda e: e.name == "hello" and e.get("product_version") == 2, 600)
    (t,) = rig.bench.cloud.transfer_log
    assert t["outcome"] == "success" and t["corrupted"] == [5, 77] and sorted(t["resent"]) == [5, 77]


def test_5xx_is_retried_by_the_client(updates_enabled: tuple[Rig, bytes]) -> None:
    rig, _ = updates_enabled
    rig.server.faults.fail_every_second = True
    c = rig.client
    for _ in range(3):
        assert c.device(DID)["id"] == DID  # GET: retried
    assert c.retried >= 1
    assert c.rename(DID, "truck-1")["name"] == "truck-1"  # PUT: retried if it hits the fault
    assert [e["status"] for e in rig.server.request_log].count(503) >= 1
    # POST is not idempotent: it is not retried, so one of two consecutive publishes fails
    outcomes = []
    for i in range(2):
        try:
            c.publish("otarig/test", str(i))
            outcomes.append("ok")
        except ServerError as exc:
            assert exc.status == 503
            outcomes.append("503")
    assert sorted(outcomes) == ["503", "ok"]


def test_401_is_a_clear_authentication_error(updates_enabled: tuple[Rig, bytes]) -> None:
    rig, _ = updates_enabled
    rig.server.faults.token_expired = True
    with pytest.raises(AuthError) as exc:
        rig.client.device(DID)
    msg = str(exc.value)
    assert exc.value.status == 401 and "refused the access token" in msg and "expired" in msg
    assert rig.server.token not in msg + repr(rig.client)
    stream = rig.client.events()
    with pytest.raises(AuthError):
        stream.get(10)  # a stream does not reconnect forever on 401
    stream.close()


# -- client details ----------------------------------------------------------------------------------


def test_lock_flash_force_and_errors(updates_enabled: tuple[Rig, bytes]) -> None:
    rig, v2 = updates_enabled
    c = rig.client
    c.upload_firmware(2, v2)
    assert c.list_firmware()[0]["version"] == 2
    with pytest.raises(CloudError) as exc:
        c.upload_firmware(2, v2)
    assert exc.value.status == 400
    with pytest.raises(NotFound):
        c.device("e00fce68ffffffffffffffff")
    assert c.force_updates(DID)["firmware_updates_forced"] is True
    assert c.set_groups(DID, ["beta"])["groups"] == ["beta"]
    out = c.lock(DID, 2, flash=True)  # docs/reference/particle-ota.md §7.8.4: lock + flash now, device online
    assert out["desired_firmware_version"] == 2
    rig.board.expect(lambda e: e.name == "hello" and e.get("product_version") == 2, 600)
    rig.board.expect(lambda e: e.name == "sys" and e.get("param") == "connected", 120)
    assert c.get(DID, "version") == 2
    assert c.unlock(DID)["desired_firmware_version"] is None
    assert c.set_development(DID, True)["development"] is True


def test_token_from_env_or_particle_profile(tmp_path: Path) -> None:
    creds = find_credentials(env={"OTARIG_PARTICLE_TOKEN": "tok-env"}, home=tmp_path)
    assert creds.token == "tok-env" and "tok-env" not in repr(creds)
    cfg = tmp_path / ".particle"
    cfg.mkdir()
    (cfg / "profile.json").write_text(json.dumps({"name": "bench"}))
    (cfg / "bench.config.json").write_text(json.dumps({"apiUrl": "http://127.0.0.1:1", "access_token": "tok-file"}))
    creds = find_credentials(env={}, home=tmp_path)
    assert creds.token == "tok-file" and creds.api_url == "http://127.0.0.1:1"
    with pytest.raises(AuthError):
        find_credentials(env={}, home=tmp_path / "nobody")
