"""The simulated PSU wired to a simulated Electron, driven through PyVISA (issue #4 "Must show").

Real channels: the rig's `PowerSupply` opens the simulated SCPI server over TCP with pyvisa-py; the
board is the companion firmware on a pty. Virtual time throughout: the only waits are the bench
clock's, except the real PyVISA timeouts of the "PSU does not answer" cases (kept at 0.5 s).
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from otarig.board import Board
from otarig.monitor import PowerMonitor, Sample, bursts
from otarig.power_faults import PowerFaults
from otarig.psu import PowerSupply, PsuConnectionError, PsuError, PsuProtocolError, PsuTimeoutError
from otarig.sim.app_thread import QUEUE_DEPTH
from otarig.sim.bench import SimBench
from otarig.sim.power_model import DEFAULT_FIGURES, VIN_MIN_V, OperatingPoint, PowerState
from otarig.timeline import Timeline

DID = "e00fce680000000000000001"
PRODUCT = 4242
F = DEFAULT_FIGURES
FAULT_TIMEOUT_S = 0.5
MARGIN_S = 0.5




@pytest.fixture
def bench() -> Iterator[SimBench]:
    b = SimBench(seed=7)
    yield b
    b.close()


def _connected(e: Any) -> bool:
    return e.name == "sys" and e.get("param") == "connected"


def _run(bench: SimBench, seconds: float) -> None:
    bench.run_for(seconds)


def _close(value: float, want: float, rel: float = 1e-6) -> bool:
    return abs(value - want) <= max(abs(want) * rel, 1e-9)


# -- 1. PyVISA drives the simulated PSU; the current follows the board ------------------------------


@pytest.mark.parametrize("model", ["E36312A", "DP832"])
def test_pyvisa_psu_powers_the_board_and_reads_its_state(bench: SimBench, images: Any, tmp_path: Path,
                                                         model: str) -> None:
    dev = bench.add_electron(DID, product_id=PRODUCT, image=images.v1, power_on=False)
    resource = bench.start_psu(model, output=False)
    assert resource.startswith("TCPIP::127.0.0.1::") and resource.endswith("::SOCKET")
    with PowerSupply.open(resource, timeout_s=2.0) as psu:
        assert psu.model == model
        assert psu.measure_current() == 0.0 and not dev.powered
        psu.set_voltage(5.0)
        psu.set_current_limit(3.0)
        psu.output(True)
        bench.advance(0)  # the output switch lands at this virtual instant
        assert dev.powered
        assert _close(psu.measure_current(), F.booting_a)  # bootloader + system init
        board = bench.open_board(DID, tmp_path / "b.log")
        board.expect(lambda e: e.name == "hello", 5)
        assert _close(psu.measure_current(), F.connected_idle_a)  # modem registering (not MODEM_OFF)
        board.expect(_connected, 60)
        _run(bench, 2.0)
        assert _close(psu.measure_current(), F.connected_idle_a)
        assert _close(psu.measure_voltage(), 5.0)
        board.command("cellular", action="off")
        _run(bench, 1.0)
        assert _close(psu.measure_current(), F.modem_off_a)
        # Output off is a power cut (no VBUS, no battery): the board dies at this instant.
        psu.output(False)
        bench.advance(0)
        assert not dev.powered and psu.measure_current() == 0.0
        offs = [t for t in dev.trace if t.kind == "power_off"]
        assert offs and offs[-1].t_ms == bench.world.now_ms and offs[-1].data["brownout"] is False
        psu.output(True)
        board.expect(lambda e: e.name == "boot" and e.get("reset_reason") == "power_down", 10)
    # Leaving the block applied the safe state (output off): the board is unpowered again.
    bench.advance(0)
    assert not dev.powered and bench.psu_server is not None and bench.psu_server.rail(1).on is False


def test_usb_vbus_keeps_the_board_up_when_vin_goes(bench: SimBench, images: Any, tmp_path: Path) -> None:
    """docs/power.md §4: with VBUS connected, OUTP OFF is not a power cut."""
    dev = bench.add_electron(DID, product_id=PRODUCT, image=images.v1)
    resource = bench.start_psu("E36312A", usb_vbus=True)
    with PowerSupply.open(resource, safe_state="restore") as psu:
        board = bench.open_board(DID, tmp_path / "b.log")
        board.expect(_connected, 60)
        psu.output(False)
        _run(bench, 5.0)
        assert dev.powered and psu.measure_current() == 0.0  # the PSU sees nothing; USB feeds it
        assert not [e for e in board.events("boot")][1:]


# -- 3. the monitor tells idle, STOP, ULP and HIBERNATE apart, and shows an OTA's bursts --------------


def _window(monitor: PowerMonitor, start: float, end: float) -> list[Sample]:
    win = monitor.window(start, end)
    assert len(win) >= 10, f"only {len(win)} samples in [{start}, {end}]"
    return win


def test_monitor_trace_shows_sleep_modes_and_ota_bursts(bench: SimBench, images: Any, tmp_path: Path) -> None:
    dev = bench.add_electron(DID, product_id=PRODUCT, image=images.v1)
    resource = bench.start_psu("E36312A")
    timeline = Timeline()
    with PowerSupply.open(resource) as psu, PowerMonitor(psu, timeline, bench.clock, period_s=0.1) as mon:
        board = bench.open_board(DID, tmp_path / "b.log")
        board.expect(_connected, 60)
        _run(bench, 1.0)
        t0 = bench.clock.now()
        _run(bench, 5.0)
        windows: dict[str, tuple[float, float]] = {"idle": (t0, bench.clock.now())}
        for mode in ("stop", "ulp"):
            board.command("sleep", mode=mode, seconds=60, network_standby=False)
            start = bench.clock.now()
            woke = board.expect(lambda e: e.name == "log" and e.get("msg") == "wake", 90)
            t_wake = next(t for t, e in board.history if e is woke)
            windows[mode] = (start + 0.5, t_wake - 0.5)
            board.expect(_connected, 60)
            _run(bench, 1.0)
        board.command("sleep", mode="hibernate", seconds=60, network_standby=False)
        start = bench.clock.now()
        board.expect(lambda e: e.name == "boot", 90)  # HIBERNATE wakes through reset (docs/reference/particle-ota.md §3.2)
        windows["hibernate"] = (start + 0.5, start + 59.0)  # the RTC wakes it at 60 s, then it boots
        board.expect(_connected, 60)

        # The OTA: v2, 100 KB, released while idle; sample faster to resolve the flights.
        mon.stop()
        fast = PowerMonitor(psu, timeline, bench.clock, period_s=0.02, voltage=False).start()
        bench.cloud.upload_firmware(PRODUCT, 2, images.v2)
        bench.cloud.release(PRODUCT, 2, product_default=True, intelligent=True)
        board.expect(lambda e: e.name == "sys" and e.get("param") == "begin", 120)
        t_begin = bench.clock.now()
        board.expect(lambda e: e.name == "sys" and e.get("param") == "complete", 300)
        t_complete = bench.clock.now()
        fast.stop()

    figures = {"idle": F.connected_idle_a, "stop": F.stop_a, "ulp": F.ulp_a, "hibernate": F.hibernate_a}
    medians = {}
    for name, (a, b) in windows.items():
        win = _window(mon, a, b)
        medians[name] = statistics.median(s.amps for s in win)
        assert _close(medians[name], figures[name]), (name, medians[name], figures[name])
        # every sample of the window is the nearest to its own state's figure, not another's
        for s in win:
            nearest = min(figures, key=lambda k: abs(figures[k] - s.amps))
            assert nearest == name, (name, s)
    assert medians["idle"] > medians["ulp"] > medians["stop"] > medians["hibernate"]
    # limits as measurements (OpenHTF style)
    m = mon.fraction_below(0.003, *windows["stop"], min_fraction=0.9, name="STOP current below 3 mA")
    assert m.passed and m.units == "%" and m.value == 100.0, m.explain()
    assert not mon.fraction_below(0.003, *windows["idle"], min_fraction=0.9).passed
    assert mon.mean_current(*windows["hibernate"], high=0.2).passed  # mA
    assert timeline.select(source="psu", kind="measurement")

    # OTA: bursts at transmit current, one per flight of <= 40 chunks (docs/reference/particle-ota.md §2.4), idle between them.
    ota = fast.window(t_begin, t_complete)
    found = bursts(ota, threshold_a=1.0)
    flights = -(-200 // 40)
    assert len(found) >= flights, found
    assert max(s.amps for s in ota) == pytest.approx(F.transmit_a)
    assert any(_close(s.amps, F.connected_idle_a) for s in ota)  # gaps between flights
    assert fast.peak_current(t_begin, t_complete, low=1.5, name="OTA burst peak").passed
    # samples are on the bench clock, at the period, in one timeline with the board's events
    ts = [s.t for s in fast.samples]
    assert all(abs((b - a) - 0.02) < 1e-6 for a, b in zip(ts, ts[1:]))
    assert len(timeline.select(source="psu", kind="sample")) == len(mon.samples) + len(fast.samples)
    # ground truth agrees: every sample at burst current lies inside a radio interval of the model
    radio = bench.power[DID].bursts()
    assert any(b.category == "ota" and b.direction == "down" for b in radio)
    kept_from = radio[0].start_ms  # the model keeps the last few minutes of radio intervals
    for s in ota:
        if s.amps >= 1.0 and s.t * 1000 >= kept_from:
            t_ms = round(s.t * 1000)
            assert any(b.start_ms <= t_ms < b.end_ms for b in radio), s


# -- 4. a PSU that misbehaves: a clear error within the timeout; the bench left safe ------------------


@pytest.mark.parametrize("fault", ["mute", "garbage", "drop"])
def test_misbehaving_psu_stops_the_monitor_with_a_clear_error_and_the_bench_is_safe(
        bench: SimBench, images: Any, tmp_path: Path, fault: str) -> None:
    dev = bench.add_electron(DID, product_id=PRODUCT, image=images.v1)
    resource = bench.start_psu("E36312A")
    server = bench.psu_server
    assert server is not None
    timeline = Timeline()
    board = bench.open_board(DID, tmp_path / "b.log")
    expected = {"mute": PsuTimeoutError, "garbage": PsuProtocolError, "drop": PsuConnectionError}[fault]
    with pytest.raises(PsuError) as info:
        with PowerSupply.open(resource, timeout_s=FAULT_TIMEOUT_S) as psu:
            with PowerMonitor(psu, timeline, bench.clock, period_s=0.5) as mon:
                board.expect(_connected, 60)
                assert dev.powered and mon.samples
                if fault == "mute":
                    server.mute = True
                elif fault == "garbage":
                    server.garbage = True
                else:
                    server.drop_connections = 1
                start = time.monotonic()
                board.expect(lambda e: False, 30)  # the next sample fails inside the clock's wait
    elapsed = time.monotonic() - start
    assert isinstance(info.value, expected), info.value
    assert resource in str(info.value) and "Fix:" in str(info.value)
    # within the configured timeout (plus the safe state's own bounded attempt)
    assert elapsed < 2 * FAULT_TIMEOUT_S + MARGIN_S, elapsed
    assert mon.error is info.value
    assert timeline.select(source="psu", kind="psu_error")
    # Safe state: the output went off at the instrument, and the board lost power.
    assert server.wait_for_command(lambda c: c.startswith("OUTP OFF"), timeout_s=1.0)
    assert server.rail(1).on is False
    bench.advance(0)
    assert not dev.powered
    # The bench itself still runs: virtual time moves, the board stays off.
    bench.run_for(5)
    assert not dev.powered


# -- 5. brown-out by current limit --------------------------------------------------------------------


def test_current_limit_below_the_burst_browns_the_board_out(bench: SimBench, images: Any,
                                                            tmp_path: Path) -> None:
    dev = bench.add_electron(DID, product_id=PRODUCT, image=images.v1)
    resource = bench.start_psu("DP832", volts=5.0, current_limit=3.0)
    sags: list[tuple[float, OperatingPoint]] = []
    assert bench.psu_server is not None
    bench.psu_server.rail(1).on_brownout = lambda t, p: sags.append((t, p))
    timeline = Timeline()
    with PowerSupply.open(resource) as psu:
        board = bench.open_board(DID, tmp_path / "b.log")
        board.expect(_connected, 60)
        faults = PowerFaults(psu, bench.clock, timeline=timeline)

        def browned_out() -> bool:
            return any(e.get("reset_reason") == "power_brownout" for e in board.events("boot"))

        _run(bench, 5.0)  # let the connection's own traffic (publishes) finish
        with faults.current_limited(1.0):
            assert psu.current_limit() == pytest.approx(1.0)
            # idle draws 37 mA: no sag; the next radio burst (here: the update notification) sags
            _run(bench, 2.0)
            assert dev.powered and not sags
            bench.cloud.upload_firmware(PRODUCT, 2, images.v2)
            bench.cloud.release(PRODUCT, 2, product_default=True, intelligent=True)
            deadline = bench.clock.now() + 60
            while not browned_out() and bench.clock.now() < deadline:
                bench.advance(deadline - bench.clock.now())
        assert browned_out()
        boot = [e for e in board.events("boot") if e.get("reset_reason") == "power_brownout"][0]
        assert boot.get("reset_reason_code") == 50  # RESET_REASON_POWER_BROWNOUT
        assert psu.current_limit() == pytest.approx(3.0)  # restored on leaving the block
    # VIN sagged below the minimum under the burst: V = I_limit * V_set / I_burst (docs/power.md §2)
    t_sag, point = sags[0]
    assert point.volts == pytest.approx(1.0 * 5.0 / F.transmit_a) and point.volts < VIN_MIN_V
    # ... exactly when a radio burst began, and the model recorded a brown-out power loss then
    load = bench.power[DID]
    assert any(b.start_ms == round(t_sag * 1000) for b in load.bursts())
    offs = [e for e in dev.trace if e.kind == "power_off"]
    assert offs and offs[0].data["brownout"] is True and offs[0].t_ms == round(t_sag * 1000)
    assert [k for _, k, _ in load.events][:2] == ["brownout", "brownout_recovery"]
    assert not [e for e in dev.trace if e.kind == "reset_reason_corrected"]  # the model itself says so
    assert timeline.select(source="fault", kind="current_limit")


def test_power_faults_cut_at_progress_via_visa(bench: SimBench, images: Any, tmp_path: Path) -> None:
    """The rig-side fault API on the simulated PSU: cut after N progress events → v1 boots again."""
    dev = bench.add_electron(DID, product_id=PRODUCT, image=images.v1)
    resource = bench.start_psu("E36312A")
    timeline = Timeline()
    with PowerSupply.open(resource) as psu:
        board = bench.open_board(DID, tmp_path / "b.log")
        board.expect(_connected, 60)
        faults = PowerFaults(psu, bench.clock, timeline=timeline)
        bench.cloud.upload_firmware(PRODUCT, 2, images.v2)
        bench.cloud.release(PRODUCT, 2, product_default=True, intelligent=True)
        faults.cut_at_progress(board, 37, off_s=1.0)
        cut = [e for e in dev.trace if e.kind == "power_off"][-1]
        assert cut.data["ota"] is True  # the cut landed inside the download
        assert not dev.flash.slots
        hello = board.expect(lambda e: e.name == "hello", 30)
        assert hello.get("product_version") == 1
        assert [e.kind for e in timeline.select(source="fault")] == ["power_cut", "power_restore"]
        # and the update lands later anyway (retried from chunk 0)
        board.expect(lambda e: e.name == "hello" and e.get("product_version") == 2, 900)


def test_power_faults_cut_at_progress_via_the_bench_companion(bench: SimBench, images: Any, tmp_path: Path) -> None:
    """The same fault API with the bench companion: the cut is timed by the tester board on the
    DUT's status line, VIN *and* VBUS cut. The line follows the app's handlers, which a threaded app
    runs from its 20-deep event queue (docs/reference/particle-ota.md §2.2): the cut lands with at
    least N chunks in the OTA region, and at most a queue's worth more."""
    from otarig.bench_companion import BenchCompanion

    dev = bench.add_electron(DID, product_id=PRODUCT, image=images.v1)
    bench.add_bench_companion(DID)  # the USB cable carries VBUS: a PSU cut alone would not do
    tester = bench.open_board("bench-companion", tmp_path / "tester.log")
    timeline = Timeline()
    board = bench.open_board(DID, tmp_path / "b.log")
    board.expect(_connected, 60)
    faults = PowerFaults(None, bench.clock, timeline=timeline,
                         companion=BenchCompanion.connect(tester, str(tester.url)))
    received: list[int] = []
    dev.listeners.append(lambda e: received.append(dev.ota.rx.chunks_received)
                         if e.kind == "power_off" and dev.ota.receiving else None)
    bench.cloud.upload_firmware(PRODUCT, 2, images.v2)
    bench.cloud.release(PRODUCT, 2, product_default=True, intelligent=True)
    faults.cut_at_progress(board, 37, off_s=1.0)
    assert len(received) == 1 and 37 <= received[0] <= 37 + QUEUE_DEPTH
    assert not dev.flash.slots
    assert board.expect(lambda e: e.name == "hello", 30).get("product_version") == 1
    cuts = timeline.select(source="fault")
    assert [e.kind for e in cuts] == ["power_cut", "power_restore"] and cuts[0].get("edges") == 38
    assert "caveat" not in cuts[0].data  # VBUS was switched too
    board.expect(lambda e: e.name == "hello" and e.get("product_version") == 2, 900)


def test_power_state_tracks_the_model(bench: SimBench, images: Any, tmp_path: Path) -> None:
    """The LoadModel's mapping, read directly (the PSU thread's view)."""
    dev = bench.add_electron(DID, product_id=PRODUCT, image=images.v1, power_on=False)
    bench.start_psu("E36312A", output=False)
    load = bench.power[DID]
    now = lambda: bench.clock.now()  # noqa: E731
    assert load.power_state(now()) is PowerState.OFF
    bench.psu_server.rail(1).set_output(True, now())  # type: ignore[union-attr]  # front panel, sim thread
    bench.advance(0)
    assert load.power_state(now()) is PowerState.BOOTING
    board: Board = bench.open_board(DID, tmp_path / "b.log")
    board.expect(_connected, 60)
    _run(bench, 3)
    assert load.power_state(now()) is PowerState.CONNECTED_IDLE


def _psu_scenario(images: Any, tmp_path: Path) -> tuple[list[tuple[int, str]], list[tuple[float, float]]]:
    bench = SimBench(seed=11)
    try:
        dev = bench.add_electron(DID, product_id=PRODUCT, image=images.v1)
        resource = bench.start_psu("DP832", volts=5.0, current_limit=3.0)
        timeline = Timeline()
        with PowerSupply.open(resource) as psu, PowerMonitor(psu, timeline, bench.clock, period_s=0.05) as mon:
            board = bench.open_board(DID, tmp_path / "d.log")
            board.expect(_connected, 60)
            faults = PowerFaults(psu, bench.clock, timeline=timeline)
            bench.cloud.upload_firmware(PRODUCT, 2, images.v2)
            bench.cloud.release(PRODUCT, 2, product_default=True, intelligent=True)
            faults.cut_at_progress(board, 10, off_s=0.5)
            with faults.current_limited(1.0):
                board.expect(lambda e: e.name == "boot" and e.get("reset_reason") == "power_brownout", 120)
            board.expect(_connected, 60)
        trace = [(e.t_ms, e.kind) for e in dev.trace if e.kind in ("power_off", "power_on", "boot_start", "booted")]
        return trace, [(s.t, s.amps) for s in mon.samples]
    finally:
        bench.close()


def test_psu_driven_faults_land_at_the_same_virtual_instants_every_run(images: Any, tmp_path: Path) -> None:
    """docs/design.md principle 4: PSU commands from another thread still land deterministically."""
    a = _psu_scenario(images, tmp_path)
    b = _psu_scenario(images, tmp_path)
    assert a == b
    kinds = [k for _, k in a[0]]
    assert kinds.count("power_off") >= 2  # the VISA cut and the brown-out


def test_wall_clock_monitor_samples_every_period_of_bench_time():
    """On a stand-in's scaled wall clock (x1000) a 50 s bench period is 50 ms of wall time: five
    samples arrive within a few wall seconds, not one every 50 wall seconds. (A supply stand-in
    that only answers; the wait is bounded wall time on a real thread.)"""
    import time as _time

    from otarig.clock import WallClock
    from otarig.monitor import PowerMonitor
    from otarig.timeline import Timeline

    class Supply:
        def measure_current(self) -> float:
            return 0.05

        def measure_voltage(self) -> float:
            return 5.0

    tl = Timeline()
    mon = PowerMonitor(Supply(), tl, WallClock(time_scale=1000), period_s=50).start()
    try:
        deadline = _time.monotonic() + 5
        while len(tl.select(source="psu", kind="sample")) < 5 and _time.monotonic() < deadline:
            _time.sleep(0.01)
    finally:
        mon.stop()
    assert len(tl.select(source="psu", kind="sample")) >= 5
