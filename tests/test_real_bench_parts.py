"""The parts a real bench is composed of, each over its real channel where one can run here:
the firmware catalog (real files through the module parser), version allocation and group-only
releases (HTTP + SSE against the simulated Cloud API), the bench file's real-bench rules, and board
discovery on USB (no USB device here: the host's port list and sysfs are stand-ins, as the test
names say)."""
from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest

from otarig import firmware as fw
from otarig.cloud import ParticleCloud
from otarig.cloud_access import ApiCloudAccess, VersionMap
from otarig.config import ConfigError, load
from otarig.discovery import BoardNotFound, dfu_devices, find_board, serial_devices
from otarig.firmware_catalog import CatalogError, CatalogFirmware, MissingFirmware
from otarig.sim.bench import SimBench
from otarig.sim.cloud_http import CloudHttpServer
from sim_helpers import DEVICE_ID, PRODUCT_ID

DID = DEVICE_ID


def _image(version: int, *, product: int = PRODUCT_ID, platform: int = 10, size: int = 4096) -> bytes:
    return fw.build_module(b"app", product_id=product, product_version=version, platform_id=platform, size=size)


# -- the [firmware] catalog --------------------------------------------------------------------------

def test_catalog_reads_and_checks_every_binary(tmp_path: Path) -> None:
    for v in (1, 2):
        (tmp_path / f"v{v}.bin").write_bytes(_image(v))
    cat = CatalogFirmware.load({1: "v1.bin", 2: str(tmp_path / "v2.bin")}, {}, product_id=PRODUCT_ID, base=tmp_path)
    assert cat.get(2).version == 2 and fw.parse(cat.get(2).image).product_version == 2
    with pytest.raises(MissingFirmware, match="no binary for version 3"):
        cat.get(3)
    with pytest.raises(MissingFirmware, match="firmware.nonthreaded"):
        cat.get(1, threaded=False)


@pytest.mark.parametrize("make, message", [
    (lambda: _image(1)[:-100], "header says"),
    (lambda: _image(1, platform=12), "platform"),
    (lambda: _image(1, product=999), "built for product 999"),
    (lambda: bytes(b ^ 0xFF if i == 2000 else b for i, b in enumerate(_image(1))), "CRC"),
    (lambda: fw.build_module(b"x", product_id=PRODUCT_ID, product_version=1, module_function=4, size=4096),
     "system-part"),
])
def test_catalog_refuses_a_bad_binary_naming_the_entry(tmp_path: Path, make, message: str) -> None:
    (tmp_path / "bad.bin").write_bytes(make())
    with pytest.raises(CatalogError, match=message) as err:
        CatalogFirmware.load({1: "bad.bin"}, {}, product_id=PRODUCT_ID, base=tmp_path)
    assert "firmware.versions.1" in str(err.value)


def test_catalog_names_a_missing_file_and_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read .*building-firmware"):
        CatalogFirmware.load({1: "nope.bin"}, {}, product_id=PRODUCT_ID, base=tmp_path)


def test_with_product_rewrites_the_suffix_and_keeps_the_module_valid() -> None:
    original = _image(2)
    moved = fw.with_product(original, product_id=PRODUCT_ID, product_version=1002)
    info = fw.validate(moved)
    assert info.product_version == 1002 and info.crc_ok and info.sha256_ok
    assert fw.payload(moved) == fw.payload(original)
    assert fw.with_product(original, product_id=PRODUCT_ID, product_version=2) == original


def test_version_map_lies_above_every_existing_version() -> None:
    m = VersionMap.above([1, 7, 40])
    assert [m.product(v) for v in (1, 2, 3)] == [41, 42, 43]
    assert [m.product(v, variant=1) for v in (1, 2, 3)] == [44, 45, 46]
    assert m.logical(42) == 2 and m.logical(45) == 2 and m.logical(None) is None and m.logical(7) == 7
    with pytest.raises(Exception, match="16-bit"):
        VersionMap.above([65530])


# -- the cloud over HTTP + SSE -------------------------------------------------------------------------

@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[SimBench, CloudHttpServer]]:
    """The simulated Cloud API on loopback with one (unpowered) device in the product."""
    bench = SimBench(1, workdir=tmp_path / "world")
    bench.add_electron(DID, product_id=PRODUCT_ID, power_on=False, with_port=False)
    server = CloudHttpServer(bench)
    server.start()
    yield bench, server
    server.stop()
    bench.close()


def test_cloud_access_allocates_versions_above_the_product_and_releases_to_the_group_only(api, companion_image) -> None:
    bench, server = api
    _image = companion_image  # noqa: N806 - host builds: the simulated cloud only takes what it can run
    with bench.lock:  # the product already has versions 1..5 (an earlier run, a real product)
        for v in range(1, 6):
            old = fw.with_product(_image(1), product_id=PRODUCT_ID, product_version=v)
            bench.cloud.upload_firmware(PRODUCT_ID, v, old, "old")
    client = ParticleCloud(server.url, server.token, product=PRODUCT_ID)
    access = ApiCloudAccess.connect(client, PRODUCT_ID, bench.clock, group="otarig-bench", device_ids=[DID])
    try:
        assert access.versions.offset == 5
        assert "otarig-bench" in client.device(DID, PRODUCT_ID)["groups"]
        access.upload(2, _image(2))
        access.upload(2, _image(2))  # the same bytes again in one run: nothing to do
        assert sorted(int(f["version"]) for f in client.list_firmware()) == [1, 2, 3, 4, 5, 7]
        assert fw.parse(client.download_firmware(7)).product_version == 7
        access.upload(2, _image(2, threaded=False))  # another binary of version 2: its own product version
        assert fw.parse(client.download_firmware(10)).product_version == 10  # 5 + 1 × 3 + 2
        access.release(2, intelligent=False)  # the last upload of version 2
        released = client.firmware(10)
        assert released["groups"] == ["otarig-bench"] and not released.get("product_default")
        assert access.device(DID)["targeted_firmware_release_version"] == 2  # reported in logical terms
    finally:
        access.close()


def test_cloud_events_reach_the_rig_over_sse_at_their_virtual_instant(api) -> None:
    """The simulated bench's clock keeps the rig's event stream in step: after a wait, every event
    published so far has been read, stamped with its virtual time."""
    bench, server = api
    client = ParticleCloud(server.url, server.token, product=PRODUCT_ID)
    access = ApiCloudAccess.connect(client, PRODUCT_ID, bench.clock, group="g", device_ids=[DID], allocate=False)
    try:
        bench.advance(5.0)
        with bench.lock:
            bench.cloud.stream_event(bench.cloud.devices[DID], "app/hello", "1")
        bench.advance(2.5)
        events = access.new_events()
        assert [(e["name"], e["t"]) for e in events] == [("app/hello", 5.0)]
        assert access.new_events() == []
    finally:
        access.close()


# -- the bench file ------------------------------------------------------------------------------------

REAL = """
[bench]
kind = "real"
{bench}
[cloud]
api_url = "{api}"
[[boards]]
id = "{did}"
port = "{port}"
{firmware}
"""


def _real(tmp_path: Path, *, bench: str = "", api: str = "https://api.particle.io",
          firmware: str = '[firmware.versions]\n1 = "v1.bin"') -> Path:
    p = tmp_path / "bench.toml"
    port = tmp_path / "pty-of-a-stand-in"  # a path outside /dev: what a stand-in's pty links look like
    port.write_text("")
    p.write_text(REAL.format(bench=bench, api=api, did=DID, firmware=firmware, port=port))
    return p


def test_a_real_bench_needs_a_firmware_catalog(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"firmware: missing .*firmware.versions"):
        load(_real(tmp_path, firmware=""))
    assert load(_real(tmp_path)).firmware.versions == {1: "v1.bin"}


def test_a_scaled_clock_is_only_for_a_stand_in_on_loopback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not on loopback: https://api.particle.io"):
        load(_real(tmp_path, bench="time_scale = 20"))
    cfg = load(_real(tmp_path, bench="time_scale = 20", api="http://127.0.0.1:8080"))
    assert cfg.stand_in and cfg.bench.time_scale == 20
    sim = tmp_path / "sim.toml"
    sim.write_text(f'[bench]\ntime_scale = 5\n[[boards]]\nid = "{DID}"\n')
    with pytest.raises(ConfigError, match="virtual time"):
        load(sim)


# -- finding boards on USB (no USB here: the port list and sysfs are stand-ins) -------------------------

def _port(device: str, serial: str, pid: int = 0xC00A, vid: int = 0x2B04) -> SimpleNamespace:
    return SimpleNamespace(device=device, serial_number=serial, vid=vid, pid=pid)


def test_find_board_on_a_faked_port_list_prefers_the_by_id_link(tmp_path: Path) -> None:
    """Fake USB port list (no device attached here): the board is found by its device ID
    (any case) and opened through its stable /dev/serial/by-id link when udev made one."""
    tty = tmp_path / "ttyACM3"
    tty.write_text("")
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / f"usb-Particle_Electron_{DID.upper()}-if00").symlink_to(tty)
    ports = [_port("/dev/ttyUSB0", "FTDI123", vid=0x0403), _port(str(tty), DID.upper())]
    found = serial_devices(ports, by_id=by_id)
    assert [d.serial_number for d in found] == [DID.upper()]
    assert find_board(DID, serial=found, dfu=[]) == str(by_id / f"usb-Particle_Electron_{DID.upper()}-if00")


def test_find_board_in_dfu_mode_on_a_faked_sysfs_says_reset_it(tmp_path: Path) -> None:
    """Fake sysfs (no device attached here): a board in DFU mode (PID d00a) has no serial port."""
    dev = tmp_path / "1-1"
    dev.mkdir()
    (dev / "idVendor").write_text("2b04\n")
    (dev / "idProduct").write_text("d00a\n")
    (dev / "serial").write_text(DID.upper() + "\n")
    dfu = dfu_devices(tmp_path)
    assert [d.mode for d in dfu] == ["dfu"]
    with pytest.raises(BoardNotFound, match="DFU mode"):
        find_board(DID, serial=[], dfu=dfu)
    with pytest.raises(BoardNotFound, match=r"not on USB \(Particle devices seen: none\)"):
        find_board(DID, serial=[], dfu=[])


def test_event_stream_wait_seen_is_released_by_close() -> None:
    """A stream closed while someone waits for an event id does not leave the waiter hanging."""
    from otarig.cloud import EventStream

    stream = EventStream.__new__(EventStream)
    stream._seen = threading.Condition()
    stream._closed = threading.Event()
    stream.last_id = 0
    stream._closed.set()
    assert stream.wait_seen(5, timeout=1.0) is True
