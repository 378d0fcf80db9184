"""The simulated board's serial path, end to end over real channels (docs/design.md principle 1).

g++ builds the companion; the image is USB-flashed into a simulated Electron; the rig reads the
companion's lines with pyserial from the board's pty (a real /dev/pts device behind a stable
symlink), never from an in-process shortcut. A reset makes the port vanish and come back like
USB CDC re-enumeration; the board's single log marks the gap and loses nothing written after it.
"""
from __future__ import annotations

import os
from pathlib import Path

import serial

from otarig.protocol import check_hello
from otarig.sim.bench import SimBench
from otarig.sim.build import build_companion
from otarig.sim.images import make_app_image, read_image

from sim_helpers import DEVICE_ID, PRODUCT_ID, RigFactory


def test_companion_built_flashed_and_heard_through_the_pty(tmp_path: Path) -> None:
    """Build with g++ → module binary → USB flash → boot → `hello`/`boot` read by pyserial from the pty."""
    so = build_companion(1, product_id=PRODUCT_ID)
    assert so.read_bytes()[:4] == b"\x7fELF", "a host shared library from g++"
    image = make_app_image(so, product_id=PRODUCT_ID, product_version=1)
    assert read_image(image).product_version == 1
    bench = SimBench(seed=3, workdir=tmp_path / "bench")
    try:
        bench.add_electron(DEVICE_ID, product_id=PRODUCT_ID, image=image)
        board = bench.open_board(DEVICE_ID, tmp_path / "board.log")
        link = bench.port_path(DEVICE_ID)
        assert link.is_symlink() and os.path.realpath(link).startswith("/dev/pts/")
        assert isinstance(board._ser, serial.Serial) and board._ser.port == str(link)
        hello = check_hello(board.expect(lambda e: e.name == "hello", 30))
        boot = board.expect(lambda e: e.name == "boot", 5)
        assert hello.get("agent") == "otarig-companion" and hello.get("product_version") == 1
        assert boot.get("reset_reason") == "power_down"
        assert board.command("ping")["product_version"] == 1, "the command path works over the pty too"
        board.close()
        log = (tmp_path / "board.log").read_text()
        assert '"ev":"hello"' in log and '"ev":"boot"' in log and '>> {"cmd":"ping"' in log
    finally:
        bench.close()


def test_reset_mid_stream_loses_no_line_after_the_port_returns(companion_image, sim_rig: RigFactory) -> None:
    """A reset while the companion streams records: every line written after the port came back is
    received, in order; lines written before the reset are not lost either; the log marks the gap."""
    rig = sim_rig(companion_image(1))
    written: list[tuple[int, bytes]] = []
    port_write = rig.bench.world.port_write

    def spy(port, data: bytes) -> None:  # ground truth: what the firmware wrote, per port generation
        written.append((port.generation, bytes(data)))
        port_write(port, data)

    rig.bench.world.port_write = spy
    rig.connected()
    rig.board.command("workload", state="busy")
    rig.run(7.35)
    rig.dev.reset("pin_reset")  # the reset button, mid-stream
    rig.board.expect(lambda e: e.name == "boot" and e.get("reset_reason") == "pin_reset", 10)
    rig.board.command("workload", state="busy")
    rig.run(8)

    by_gen: dict[int, list[str]] = {}
    for gen, data in written:
        by_gen.setdefault(gen, []).append(data.decode())
    lines = {g: "".join(chunks).splitlines() for g, chunks in by_gen.items()}
    assert sorted(lines) == [1, 2]
    received = [e.raw for e in rig.board.events()]
    assert received == lines[1] + lines[2], "every line of both generations, in order, nothing else"
    assert any('"action":"record"' in ln for ln in lines[1]) and any('"action":"record"' in ln for ln in lines[2])

    log = rig.log_path.read_text().splitlines()
    lost = next(i for i, ln in enumerate(log) if "-- port lost at" in ln)
    back = next(i for i, ln in enumerate(log) if "-- port back at" in ln)
    event_rows = [i for i, ln in enumerate(log) if ln[15:17] == '{"']
    assert [log[i][15:] for i in event_rows] == lines[1] + lines[2]
    before, after = event_rows[:len(lines[1])], event_rows[len(lines[1]):]
    assert max(before) < lost < back < min(after), "the gap sits between the two generations"
    t_lost = float(log[lost].split("at ")[1].rstrip(" -"))
    t_back = float(log[back].split("at ")[1].rstrip(" -"))
    assert t_back - t_lost >= rig.dev.params.usb_enumeration_ms / 1000
