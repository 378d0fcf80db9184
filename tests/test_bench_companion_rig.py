"""The rig's side of the bench companion: config, the start check, the driver over the pty, the
simulated tester wired to the simulated Electron, and the timeline it produces."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from otarig.bench_companion import (AGENT, BenchCompanion, BenchCompanionError, CompanionTimeline,
                                    edges_for_byte)
from otarig.clock import WallClock
from otarig.config import ConfigError, load
from otarig.protocol import Event
from otarig.sim.bench import SimBench
from otarig.sim.bench_companion import bench_program_dir

REPO = Path(__file__).resolve().parents[1]
from sim_helpers import real_bench_text  # noqa: E402

GOOD = (REPO / "bench_config.toml").read_text()
DUT = "e00fce680000000000000001"


def _real_bench(tmp_path: Path, companion_port: str, dut_port: str) -> Path:
    text = real_bench_text(GOOD).replace(
        'role = "dut"', f'role = "dut"\nport = "{dut_port}"').replace('port = "sim"', f'port = "{companion_port}"')
    text = text.replace("timeout_s = 3.0", "timeout_s = 0.3")
    p = tmp_path / "real.toml"
    p.write_text(text)
    return p


# -- config ------------------------------------------------------------------------------------------

def test_a_companion_capability_without_the_section_is_one_clear_error(tmp_path):
    start = GOOD.index("[bench_companion]")
    text = GOOD[:start] + GOOD[GOOD.index("[capabilities]"):]
    (tmp_path / "b.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load(tmp_path / "b.toml")
    assert "capabilities.power_switch is true but there is no [bench_companion] section" in str(err.value)


def test_sim_port_on_a_real_bench_is_refused(tmp_path):
    text = real_bench_text(GOOD).replace('role = "dut"', 'role = "dut"\nport = "loop://"')
    (tmp_path / "b.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load(tmp_path / "b.toml")
    assert 'bench_companion.port: "sim" on a real bench' in str(err.value)


# -- the start check over a real serial channel -------------------------------------------------------

def test_absent_companion_names_the_port(tmp_path):
    with pytest.raises(BenchCompanionError) as err:
        BenchCompanion.open("/dev/ttyACM-otarig-absent", clock=WallClock(), log_path=tmp_path / "c.log")
    msg = str(err.value)
    assert "'/dev/ttyACM-otarig-absent'" in msg and "no serial device" in msg and "firmware/bench" in msg


@pytest.fixture
def pty_pair():
    """A pty standing in for the tester's USB serial: what cannot run here is the USB device itself."""
    master, slave = os.openpty()
    import tty

    tty.setraw(slave)
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_silent_companion_names_the_port_and_what_was_expected(tmp_path, pty_pair):
    _, path = pty_pair
    with pytest.raises(BenchCompanionError) as err:
        BenchCompanion.open(path, clock=WallClock(), log_path=tmp_path / "c.log", timeout_s=0.3)
    msg = str(err.value)
    assert repr(path) in msg and "silent" in msg and AGENT in msg and "printed nothing" in msg


def _answer(master: int, text: bytes) -> threading.Thread:
    """A device double on the pty master: reads the ping, writes `text` (mocks the USB board)."""
    def run() -> None:
        os.read(master, 1024)
        os.write(master, text)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def test_a_board_at_the_repl_is_recognised(tmp_path, pty_pair):
    master, path = pty_pair
    _answer(master, b'{"cmd":"ping","id":1}\r\nTraceback (most recent call last):\r\nSyntaxError\r\n>>> ')
    with pytest.raises(BenchCompanionError) as err:
        BenchCompanion.open(path, clock=WallClock(), log_path=tmp_path / "c.log", timeout_s=0.5)
    assert "REPL" in str(err.value)


def test_another_program_answering_is_refused(tmp_path, pty_pair):
    master, path = pty_pair
    _answer(master, b'{"ev":"reply","t":1,"id":1,"cmd":"ping","ok":true,"agent":"otarig-companion","proto":1}\n')
    with pytest.raises(BenchCompanionError) as err:
        BenchCompanion.open(path, clock=WallClock(), log_path=tmp_path / "c.log", timeout_s=2)
    assert "'otarig-companion'" in str(err.value) and "expected agent 'otarig-bench'" in str(err.value)


@pytest.mark.parametrize("case", ["absent", "silent"])
def test_otarig_run_stops_at_bench_start_with_one_line(tmp_path, pty_pair, case):
    _, path = pty_pair
    companion = "/dev/ttyACM-otarig-absent" if case == "absent" else path
    bench = _real_bench(tmp_path, companion, dut_port=path)
    out = subprocess.run([sys.executable, "-m", "otarig.cli", "run", "--bench", str(bench),
                          "--report", str(tmp_path / "report")], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and repr(companion) in lines[0]
    assert ("no serial device" if case == "absent" else "silent") in lines[0]


# -- the simulated companion: the real program, its pty, the simulated Electron ----------------------

@pytest.fixture
def bench(tmp_path, images):
    b = SimBench(3, workdir=tmp_path / "world")
    b.add_electron(DUT, product_id=4242, image=images.v1)
    yield b
    b.close()


def _companion(bench: SimBench, tmp_path: Path) -> BenchCompanion:
    board = bench.open_board("bench-companion", tmp_path / "companion.log")
    return BenchCompanion.connect(board, str(board.url))


@pytest.fixture
def comp(bench, tmp_path) -> BenchCompanion:
    """firmware/bench/ beside the simulated Electron, reached through its pty."""
    bench.add_bench_companion(DUT)
    return _companion(bench, tmp_path)


def test_power_off_through_the_pty_cuts_the_electron_for_exactly_the_time_asked(bench, comp):
    dev = bench.slots[DUT].device
    bench.run_for(20)
    assert dev.powered
    comp.power_off(2500)
    t_cut = bench.world.now_ms
    bench.run_for(2.499)
    assert not dev.powered
    bench.run_for(0.001)
    assert dev.powered and bench.world.now_ms == t_cut + 2500
    assert comp.status()["switches"] == {"vin": True, "vbus": True, "antenna": True}


def test_vbus_alone_keeps_the_electron_up(bench, comp):
    """docs/power.md §4: with the USB cable carrying VBUS, opening VIN alone is not a power cut."""
    dev = bench.slots[DUT].device
    bench.run_for(5)
    comp.switch(vin=False)
    bench.run_for(5)
    assert dev.powered
    comp.switch(vbus=False)
    bench.run_for(0.001)
    assert not dev.powered


def test_antenna_off_takes_the_coverage_away_and_back(bench, comp):
    link = bench.slots[DUT].device.link
    comp.antenna_off(30_000)
    bench.run_for(0.001)
    assert not link.is_up()
    bench.run_for(30)
    assert link.is_up()


def test_an_active_low_pin_map_is_honoured(bench, tmp_path):
    """The same program with VIN's MOSFET driven active-low: the board is on at start and the
    companion still cuts it (the polarity lives in bench_pins.json, not in the rig)."""
    prog = tmp_path / "bench-fw"
    shutil.copytree(bench_program_dir(), prog)
    pins = (prog / "bench_pins.json").read_text().replace(
        '"vin": {"pin": 2, "active_high": true}', '"vin": {"pin": 2, "active_high": false}')
    assert '"active_high": false' in pins
    (prog / "bench_pins.json").write_text(pins)
    from otarig.sim.bench_companion import SimBenchCompanion
    from otarig.sim.serial_port import SimSerialPort

    slot = bench.slots[DUT]
    slot.inputs.vbus_supplied = False  # data-only cable: VIN alone feeds the board
    port = SimSerialPort(bench.port_dir / "bench-companion")
    from otarig.sim.bench import BoardSlot

    sim = SimBenchCompanion(bench.world, port, slot.device, slot.inputs, program_dir=prog)
    bench.companions["bench-companion"] = BoardSlot(sim, port)
    sim.start()
    comp = _companion(bench, tmp_path)
    bench.run_for(1)
    assert slot.device.powered and sim.board.levels[2] == 0  # closed = LOW for an active-low switch
    comp.power_off(0)
    bench.run_for(1)
    assert not slot.device.powered and sim.board.levels[2] == 1


def test_release_clears_what_a_previous_run_left_on_the_tester(bench, comp):
    """A real tester keeps its state between runs: the rig disarms it and switches all on."""
    comp.arm_cut(3, 0)
    comp.switch(vbus=False, antenna=False)
    comp.release()
    st = comp.status()
    assert st["armed"] == 0 and st["switches"] == {"vin": True, "vbus": True, "antenna": True}
    assert comp.hello["switches"] == st["switches"]


def test_wkp_pulse_reaches_the_electron_pin(bench, comp):
    pins = bench.slots[DUT].device.pins
    comp.wake(20)
    bench.run_for(0.001)
    assert pins.level(17) == 1
    bench.run_for(0.020)
    assert pins.level(17) == 0


# -- what reaches the timeline ---------------------------------------------------------------------------

def _ev(ev: str, **fields) -> Event:
    return Event(name=ev, t=0, fields=fields, raw="")


def test_companion_events_become_fault_spans():
    tl = CompanionTimeline(DUT)
    assert tl.entries(_ev("switch", name="vin", closed=False, by="cmd")) == []  # VBUS still feeds it
    cut = tl.entries(_ev("switch", name="vbus", closed=False, by="cmd"))
    assert [(s, k) for s, k, _ in cut] == [("fault", "power_cut")]
    back = tl.entries(_ev("switch", name="vin", closed=True, by="timer"))
    assert [(s, k) for s, k, _ in back] == [("fault", "power_restore")]
    assert [k for _, k, _ in tl.entries(_ev("switch", name="antenna", closed=False, by="cmd"))] == ["antenna_off"]
    edge = tl.entries(_ev("cut", edges=81, off_ms=5000))
    assert edge[0][1] == "power_cut" and edge[0][2]["byte"] == 80 * 512 and edge[0][2]["edges"] == 81
    assert tl.entries(_ev("switch", name="vin", closed=False, by="cut")) == []  # already counted by `cut`
    assert [k for _, k, _ in tl.entries(_ev("wkp", level=1))] == ["wake_pulse"]
    assert tl.entries(_ev("wkp", level=1)) == []  # a second wake while WKP is high: no new edge


@pytest.mark.parametrize("byte, edges", [(0, 1), (511, 1), (512, 2), (51200, 101)])
def test_edges_for_byte(byte, edges):
    assert edges_for_byte(byte) == edges


def test_otarig_companion_on_the_simulated_bench_file_says_where_to_look():
    out = subprocess.run([sys.executable, "-m", "otarig.cli", "companion", "status", "--bench",
                          str(REPO / "bench_config.toml")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "otarig sim" in out.stderr and "--port" in out.stderr


def test_otarig_companion_absent_port_is_one_error_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "otarig.cli", "companion", "status", "--port",
                          "/dev/ttyACM-otarig-absent"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert "'/dev/ttyACM-otarig-absent'" in out.stderr and "no serial device" in out.stderr


def test_a_fault_the_bench_cannot_do_names_the_capability(tmp_path):
    """A scenario asking for the antenna switch on a bench without it gets told which capability
    and how to mark the scenario, not an AttributeError."""
    from otarig.compose import compose
    from otarig.rig import Rig

    cfg = load(REPO / "bench_config.toml")
    cfg.capabilities.antenna_switch = False
    rig = Rig(cfg, compose(cfg, REPO / "bench_config.toml", tmp_path, seed=1), tmp_path, 1)
    try:
        with pytest.raises(RuntimeError) as err:
            rig.link_outage(10)
    finally:
        rig.close()
    assert "capabilities.antenna_switch = false" in str(err.value) and "requires('antenna_switch')" in str(err.value)
