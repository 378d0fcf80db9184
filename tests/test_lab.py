"""otarig.lab without a lab: reading `labgrid-client show`, the environment labgrid-client gets,
and how a place becomes a bench file (the loopback lab, tests/test_lab_loopback.py, runs it all
against a real coordinator and exporter)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from otarig.config import BenchConfig
from otarig.lab import (
    LabError,
    LabgridClient,
    client_environment,
    find_client,
    parse_show,
    place_bench,
    place_bench_data,
)

DEVICE = "e00fce680000000000000001"
#: what labgrid 26's `labgrid-client -p lab-3 show` prints for a held place
SHOW = f"""Place 'lab-3':
  tags: capabilities=psu,power_switch, device_id={DEVICE}, product=4242
  matches:
    exp/bench/*
  acquired: lab-pc/ci
  acquired resources:
    exp/bench/NetworkSerialPort/dut
    exp/bench/PyVISADevice/psu
  created: 2026-11-30 02:17:39.289452
  changed: 2026-11-30 02:17:41.577968
Acquired resource 'dut' (exp/bench/NetworkSerialPort/dut):
  {{'acquired': 'lab-3',
   'avail': True,
   'cls': 'NetworkSerialPort',
   'params': {{'extra': {{'path': '/dev/ttyACM7',
                        'proxy': 'lab-pc',
                        'proxy_required': False}},
              'host': 'lab-pc',
              'port': 33303,
              'speed': 115200}}}}
Acquired resource 'psu' (exp/bench/PyVISADevice/psu):
  {{'acquired': 'lab-3',
   'avail': True,
   'cls': 'PyVISADevice',
   'params': {{'extra': {{'proxy': 'lab-pc', 'proxy_required': False}},
              'type': 'TCPIP',
              'url': '192.168.1.50::5025::SOCKET'}}}}
"""

BASE = {
    "bench": {"name": "lab-bench", "kind": "real"},
    "cloud": {"api_url": "https://api.particle.io", "product_id": 1},
    "firmware": {"baseline": 1, "versions": {"1": "build/v1.bin"}},
    "boards": [{"id": "e00fce68ffffffffffffffff"}],
    "bench_companion": {"port": "/dev/old", "timeout_s": 4.0},
    "psu": {"resource": "TCPIP::old::5025::SOCKET", "channel": 2},
    "capabilities": {"psu": True, "antenna_switch": True},
}


def test_show_is_read_into_tags_holder_and_resources() -> None:
    place = parse_show(SHOW)
    assert place.name == "lab-3" and place.acquired == "lab-pc/ci"
    assert place.tags == {"capabilities": "psu,power_switch", "device_id": DEVICE, "product": "4242"}
    assert place.resources["dut"].params["extra"]["path"] == "/dev/ttyACM7"
    assert place.resources["psu"].exporter == "exp" and place.resources["psu"].cls == "PyVISADevice"


def test_a_released_place_reads_as_not_acquired() -> None:
    text = "Place 'lab-3':\n  matches:\n    exp/bench/*\n  acquired: None\n  acquired resources:\n"
    assert parse_show(text).acquired is None
    with pytest.raises(LabError, match="printed no place"):
        parse_show("")


def test_labgrid_client_never_sees_a_token_but_keeps_its_reservation() -> None:
    env = client_environment({"PARTICLE_ACCESS_TOKEN": "x", "OTARIG_STANDIN_TOKEN": "y", "MY_SECRET": "z",
                              "LG_TOKEN": "RESERVATION", "LG_COORDINATOR": "127.0.0.1:20408", "PATH": "/bin"})
    assert env == {"LG_TOKEN": "RESERVATION", "LG_COORDINATOR": "127.0.0.1:20408", "PATH": "/bin"}


def test_the_reserved_place_needs_its_token(tmp_path: Path) -> None:
    client = LabgridClient("/bin/false", env={})
    with pytest.raises(LabError, match=r"--place \+: .*\$LG_TOKEN.*labgrid-client reserve"), \
            place_bench("+", tmp_path / "lab.toml", client=client):
        pass


def test_a_named_labgrid_client_must_exist() -> None:
    with pytest.raises(LabError, match="OTARIG_LABGRID_CLIENT.*not an executable"):
        find_client({"OTARIG_LABGRID_CLIENT": "/nonexistent/labgrid-client"})


def test_the_place_fills_in_board_psu_product_and_capabilities(tmp_path: Path) -> None:
    data = place_bench_data(BASE, tmp_path, parse_show(SHOW), coordinator="127.0.0.1:20408", local={"lab-pc"})
    assert data["boards"] == [{"id": DEVICE, "platform": "electron", "role": "dut", "port": "/dev/ttyACM7"}]
    assert data["psu"] == {"resource": "TCPIP::192.168.1.50::5025::SOCKET", "channel": 2}
    assert data["cloud"]["product_id"] == 4242
    assert "bench_companion" not in data, "no tester resource: no tester board"
    assert data["capabilities"]["psu"] and not data["capabilities"]["antenna_switch"]
    assert not data["capabilities"]["power_switch"], "the tester's capabilities go with the tester"
    assert data["firmware"]["versions"]["1"] == str(tmp_path / "build" / "v1.bin")
    assert data["lab"] == {"place": "lab-3", "coordinator": "127.0.0.1:20408", "acquired_by": "lab-pc/ci",
                           "resources": {"dut": "exp/bench/NetworkSerialPort/dut", "psu": "exp/bench/PyVISADevice/psu"}}
    BenchConfig.model_validate(data)  # a bench file otarig accepts


def test_a_place_exported_from_another_host_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="exported by lab-pc; otarig runs on the exporter host"):
        place_bench_data(BASE, tmp_path, parse_show(SHOW), coordinator="c", local={"localhost"})


@pytest.mark.parametrize(("old", "new", "message"), [
    (f"device_id={DEVICE}, ", "", "no device_id tag"),
    ("capabilities=psu,power_switch", "capabilities=psu,warp", "capabilities names warp; known:"),
    ("product=4242", "product=abc", "product = 'abc': expected the product ID"),
    ("'avail': True,\n   'cls': 'NetworkSerialPort'", "'avail': False,\n   'cls': 'NetworkSerialPort'",
     "'dut' .* is not available"),
])
def test_a_place_that_is_not_a_bench_says_why(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in SHOW
    with pytest.raises(LabError, match=message):
        place_bench_data(BASE, tmp_path, parse_show(SHOW.replace(old, new)), coordinator="c", local={"lab-pc"})


def test_the_by_id_link_is_used_when_udev_made_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-enumerated board may come back as another ttyACM; its by-id link keeps the name."""
    tty = tmp_path / "ttyACM7"
    tty.write_text("")
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / f"usb-Particle_Electron_{DEVICE}-if00").symlink_to(tty)
    monkeypatch.setattr("otarig.discovery.BY_ID", by_id)
    data = place_bench_data(BASE, tmp_path, parse_show(SHOW.replace("/dev/ttyACM7", str(tty))), coordinator="c",
                            local={"lab-pc"})
    assert data["boards"][0]["port"] == os.fspath(by_id / f"usb-Particle_Electron_{DEVICE}-if00")
