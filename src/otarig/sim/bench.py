"""The simulated bench: a world of simulated Electrons and a cloud, reached through real channels.

Each board's serial port is a pty behind a stable symlink (the rig opens it with pyserial); the
bench clock is virtual. `SimClock.wait()` first hands the world what the rig wrote to each
port, then runs the world until the deadline or until a board wrote/vanished/appeared, then
lets each rig-side `Board` read exactly the bytes written so far — so the rig sees every line
at the virtual instant it was written, and runs are byte-for-byte reproducible (docs/design.md
principle 4).
"""
from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from .cloud import SimCloud
from .electron import Electron
from .link import CellularLink, LinkProfile
from .params import CloudParams, DeviceOsParams
from .power_inputs import PowerInputs
from .serial_port import SimSerialPort
from .world import World

T = TypeVar("T")

if TYPE_CHECKING:
    from .electron_power import ElectronPower
    from .power_model import PowerFigures
    from .psu_server import PsuServer


#: how long (wall) a rig-side event stream may take to read what the simulated cloud published
STREAM_SETTLE_S = 10.0


@dataclass
class Ticker:
    """A callback the bench runs every `period_ms` of virtual time (e.g. a PSU monitor sample).

    It runs in the bench's thread between world steps, at exactly its due instant: `advance`
    never runs the world past the next due tick.
    """

    period_ms: int
    fn: Callable[[], None]
    next_ms: int
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class BoardSlot:
    device: Any  # an Electron, or a SimBenchCompanion (anything with `serial_input`)
    port: SimSerialPort | None
    board: Any | None = None  # otarig.board.Board attached by the rig
    inputs: PowerInputs | None = None  # what feeds an Electron (docs/power.md §4)


class SimClock:
    """`otarig.clock.BenchClock` over virtual time.

    `attach` is how the simulated bench keeps the rig-side ends of its channels in step: a board
    opened on one of its ports takes part in the pty synchronisation, and an event stream on its
    Cloud API is handed every event published up to the current virtual instant.
    """

    time_scale = 0.0  # virtual: no fixed relation to wall time
    resolution_s = 0.001  # the world counts whole milliseconds, and every line arrives at its instant

    def __init__(self, bench: "SimBench") -> None:
        self.bench = bench

    def now(self) -> float:
        return self.bench.world.now_ms / 1000.0

    def wait(self, seconds: float) -> None:
        self.bench.advance(seconds)

    def every(self, period_s: float, fn: Callable[[], None], *, start_now: bool = True) -> Ticker:
        """Run `fn` every `period_s` of virtual time while the bench runs (see `Ticker`)."""
        return self.bench.every(period_s, fn, start_now=start_now)

    def attach(self, endpoint: Any) -> None:
        """A rig `Board` on one of the bench's ports, or an `otarig.cloud.EventStream` on its API."""
        if hasattr(endpoint, "drain_to"):
            self.bench.attach_port_user(endpoint)
        elif hasattr(endpoint, "wait_seen"):
            self.bench.attach_event_stream(endpoint)
        else:
            raise TypeError(f"the simulated bench cannot keep {endpoint!r} in step")

    def event_time(self, published_at: str) -> float:
        """Exact: the simulated cloud stamps events with virtual time from its epoch."""
        from ..clock import parse_utc
        from .cloud import EPOCH

        t = parse_utc(published_at)
        return self.now() if t is None else (t - EPOCH).total_seconds()

    def run_external(self, fn: Callable[[], T], timeout: float) -> T:
        """A real process (the `particle` CLI) waits in wall time: pump the world meanwhile."""
        from .launcher import pump_while

        return pump_while(self.bench, fn, timeout=timeout)


class SimBench:
    """World + cloud + devices; the rig drives it through `clock` and the boards' ptys."""

    def __init__(self, seed: int = 0, *, workdir: Path | None = None,
                 device_params: DeviceOsParams | None = None, cloud_params: CloudParams | None = None) -> None:
        self.world = World(seed, workdir=workdir)
        self.cloud = SimCloud(self.world, cloud_params)
        self.device_params = device_params or DeviceOsParams()
        self.slots: dict[str, BoardSlot] = {}
        #: bench companions (tester boards) by name: their ports are synchronised like the boards'
        self.companions: dict[str, BoardSlot] = {}
        self.clock = SimClock(self)
        self.lock = threading.RLock()  # the HTTP front takes it; the world never runs concurrently
        self.port_dir = self.world.workdir / "dev"
        self.port_dir.mkdir(parents=True, exist_ok=True)
        #: the only thread that may run the world (the one that built it)
        self.sim_thread = threading.get_ident()
        #: actions posted from other threads (the PSU server's), applied at the start of `advance`
        self._posted: deque[Callable[[], None]] = deque()
        self._tickers: list[Ticker] = []
        self._streams: list[tuple[Any, int]] = []
        #: product -> the last event its Cloud API sent to a product stream (`CloudHttpServer`): a
        #: rig-side stream can read only what was sent while it was connected (no replay)
        self.streamed_seq_by_product: dict[int, int] = {}
        #: run paced to wall time for readers in other processes (`otarig sim`): a vanishing port
        #: first lets its reader have what was written (`SimSerialPort.drain_out`)
        self.paced = False
        self.psu_server: "PsuServer | None" = None
        self.power: dict[str, "ElectronPower"] = {}

    # -- composition ----------------------------------------------------------------------
    def add_electron(self, device_id: str, *, product_id: int, image: bytes | None = None,
                     link_profile: str | LinkProfile = "3g", loss: float | None = None, with_port: bool = True,
                     power_on: bool = True, params: DeviceOsParams | None = None, **cloud_fields: Any) -> Electron:
        """A simulated Electron, USB-flashed with `image`, registered in the cloud product."""
        link = CellularLink(self.world.sched, link_profile, loss=loss,
                            seed=self.world.derive_seed("link", device_id),
                            jitter_rng=self.world.rng("link", device_id, "latency"))
        port = SimSerialPort(self.port_dir / f"{device_id}") if with_port else None
        dev = Electron(self.world, device_id, cloud=self.cloud, link=link, port=port,
                       params=params or self.device_params)
        self.world.add_device(dev)
        self.cloud.attach(dev, product_id, **cloud_fields)
        self.slots[device_id] = BoardSlot(dev, port, inputs=PowerInputs(dev))
        if image is not None:
            dev.install(image)
        if power_on:
            with self.lock:
                dev.power_on()
        return dev

    def add_bench_companion(self, device_id: str, name: str = "bench-companion", *,
                            vbus_cable: bool = True) -> Any:
        """A tester board running firmware/bench/ beside `device_id`, on its own pty.

        `vbus_cable`: the Electron's USB cable carries VBUS through the tester's switch (the bench
        docs/power.md §4 recommends); False models a data-only cable.
        """
        from .bench_companion import SimBenchCompanion

        slot = self.slots[device_id]
        assert slot.inputs is not None
        with self.lock:
            slot.inputs.vbus_supplied = vbus_cable
            port = SimSerialPort(self.port_dir / name)
            comp = SimBenchCompanion(self.world, port, slot.device, slot.inputs)
            self.companions[name] = BoardSlot(comp, port)
            comp.start()
        return comp

    def port_slots(self) -> list[BoardSlot]:
        """Every simulated USB serial: the boards' and the bench companions'."""
        return [*self.slots.values(), *self.companions.values()]

    def port_path(self, device_id: str) -> Path:
        port = self.slots[device_id].port
        if port is None:
            raise KeyError(f"simulated board {device_id} has no serial port")
        return port.link

    def _slot(self, device_id: str) -> BoardSlot:
        """A board's or a bench companion's slot, by device ID or companion name."""
        return self.slots.get(device_id) or self.companions[device_id]

    def attach_board(self, device_id: str, board: Any) -> None:
        """Let the rig's `Board` for this port take part in the clock's synchronisation."""
        self._slot(device_id).board = board

    def attach_port_user(self, board: Any) -> None:
        """The rig opened one of the bench's ports by its path: find which and attach it."""
        path = str(getattr(board, "url", ""))
        for name, slot in [*self.slots.items(), *self.companions.items()]:
            if slot.port is not None and str(slot.port.link) == path:
                self.attach_board(name, board)
                return
        raise KeyError(f"{path}: not a port of this simulated bench "
                       f"(its ports: {[str(s.port.link) for s in self.port_slots() if s.port]})")

    def attach_event_stream(self, stream: Any) -> None:
        """An event stream on this bench's Cloud API: from now on each `advance` returns only once
        the stream has read every event of its product published so far (SSE ids)."""
        parts = str(stream.path).strip("/").split("/")
        if len(parts) < 4 or parts[:2] != ["v1", "products"] or not parts[2].isdigit():
            raise ValueError(f"{stream.path}: only product event streams can be kept in step")
        self._streams.append((stream, int(parts[2])))

    def _settle_streams(self) -> None:
        for stream, pid in self._streams:
            target = self.streamed_seq_by_product.get(pid, 0)
            if stream.last_id < target and not stream.wait_seen(target, timeout=STREAM_SETTLE_S):
                raise RuntimeError(f"event stream {stream.path} did not receive event {target} within "
                                   f"{STREAM_SETTLE_S} s of wall time (last read: {stream.last_id})")

    def open_board(self, device_id: str, log_path: Path, *, timeout: float = 30.0) -> Any:
        """Wait (virtual time) for the board's USB port, open a rig-side `Board` on it, attach it."""
        from ..board import Board  # the rig side; imported here so the simulator stays rig-agnostic

        port = self._slot(device_id).port
        if port is None:
            raise KeyError(f"simulated board {device_id} has no serial port")
        deadline = self.world.now_ms + int(timeout * 1000)
        while not port.present and self.world.now_ms < deadline:
            self.advance(min(0.1, (deadline - self.world.now_ms) / 1000))
        board = Board(device_id, str(port.link), clock=self.clock, log_path=log_path)
        board.open()
        self.clock.attach(board)
        return board

    # -- power supply (docs/power.md) -------------------------------------------------------------
    def start_psu(self, model: str = "E36312A", *, device_id: str | None = None, channel: int = 1,
                  volts: float | None = 5.0, current_limit: float | None = 3.0, output: bool | None = True,
                  usb_vbus: bool | None = None, battery: bool | None = None, figures: "PowerFigures | None" = None,
                  vin_min_v: float | None = None) -> str:
        """Start the simulated SCPI supply (once) and wire `device_id`'s VIN to `channel`.

        Returns the VISA resource (`TCPIP::127.0.0.1::PORT::SOCKET`). `volts`/`current_limit`/
        `output` are the front-panel state before the rig connects (None: the server's default,
        output off). With output off, a board without VBUS or battery loses power at once.
        """
        from .electron_power import ElectronPower
        from .power_model import DEFAULT_FIGURES, VIN_MIN_V
        from .psu_server import PsuServer

        with self.lock:
            if self.psu_server is None:
                self.psu_server = PsuServer(model, time_source=lambda: self.world.now_ms / 1000.0,
                                            figures=figures or DEFAULT_FIGURES,
                                            vin_min_v=VIN_MIN_V if vin_min_v is None else vin_min_v)
            server = self.psu_server
            if device_id is None:
                free = [d for d in self.slots if d not in self.power]
                if not free:
                    raise KeyError("start_psu: no simulated board without a supply; add_electron first")
                device_id = free[0]
            rail = server.rail(channel)
            if volts is not None:
                rail.v_set = volts
            if current_limit is not None:
                rail.i_limit = current_limit
            if output is not None:
                rail.on = output
            slot = self.slots[device_id]
            load = ElectronPower(slot.device, post=self.post, sim_thread=self.sim_thread, inputs=slot.inputs,
                                 usb_vbus=usb_vbus, battery=battery, vin_min_v=rail.vin_min_v)
            load.on_change = lambda t: server.load_changed(t, [channel])
            server.attach(load, channel)
            self.power[device_id] = load
            return server.start()

    def post(self, fn: Callable[[], None]) -> None:
        """Thread-safe: run `fn` in the bench's thread at the start of the next `advance`."""
        self._posted.append(fn)

    def _drain_posted(self) -> None:
        while self._posted:
            self._posted.popleft()()

    def every(self, period_s: float, fn: Callable[[], None], *, start_now: bool = True) -> Ticker:
        period_ms = max(int(round(period_s * 1000)), 1)
        first = self.world.now_ms if start_now else self.world.now_ms + period_ms
        ticker = Ticker(period_ms, fn, first)
        self._tickers.append(ticker)
        return ticker

    def _next_tick_ms(self) -> int | None:
        self._tickers = [t for t in self._tickers if not t.cancelled]
        return min((t.next_ms for t in self._tickers), default=None)

    def _fire_ticks(self) -> None:
        now = self.world.now_ms
        for ticker in list(self._tickers):
            if ticker.cancelled or ticker.next_ms > now:
                continue
            while ticker.next_ms <= now:
                ticker.next_ms += ticker.period_ms
            try:
                ticker.fn()
            except BaseException:
                ticker.cancel()  # a failing sampler stops; the error reaches the caller of advance
                raise

    # -- running --------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Run at most `seconds` of virtual time; return early when a board's port changed.

        Actions posted by other threads are applied first, at the current virtual instant; due
        tickers run after the world step, at their exact instant (the step stops there).
        """
        with self.lock:
            before = self.world.now_ms
            self._drain_posted()
            self._sync_in()
            # round up: a positive wait always moves the clock (callers loop on `now() < deadline`)
            step = math.ceil(seconds * 1000 - 1e-6) if seconds > 0 else 0
            target = self.world.now_ms + max(step, 1 if seconds > 0 else 0)
            due = self._next_tick_ms()
            self.world.run_until(target if due is None else min(target, due))
            self._sync_out()
            self._settle_streams()
            try:
                self._fire_ticks()
            finally:
                self._drain_posted()
            self._watch_stall(before, seconds)

    def _watch_stall(self, before: int, seconds: float) -> None:
        """A wait that never moves the clock is a simulator bug: fail loudly with the evidence."""
        if seconds <= 0 or self.world.now_ms != before:
            self._stalled = 0
            return
        self._stalled = getattr(self, "_stalled", 0) + 1
        if self._stalled > 20_000:
            tails = {d: [(e.t_ms, e.kind, e.data) for e in s.device.trace[-8:]] for d, s in self.slots.items()}
            raise RuntimeError(f"simulated bench stalled at t={before} ms: dirty ports "
                               f"{[getattr(p, 'link', p) for p in self.world.dirty_ports]}, next timer "
                               f"{self.world.sched.next_time()}, device traces {tails}")

    def run_for(self, seconds: float) -> None:
        """Run exactly `seconds` of virtual time, synchronising the boards on the way."""
        target = self.world.now_ms + int(round(seconds * 1000))
        while self.world.now_ms < target:
            self.advance((target - self.world.now_ms) / 1000.0)
        self.advance(0)

    def _sync_in(self) -> None:
        """Hand each device the bytes its rig-side board wrote since the last step."""
        for slot in self.port_slots():
            if slot.board is None or slot.port is None or not slot.port.present:
                continue
            slot.port.deliver(slot.board.drain_to)  # the board learns the current generation here
            if slot.board.generation != slot.port.generation:
                continue  # the board has not reopened this generation yet: nothing it wrote can arrive
            data = slot.port.pull(slot.board.tx_count)
            if data:
                slot.device.serial_input(data)

    def _sync_out(self) -> None:
        dirty, self.world.dirty_ports = self.world.dirty_ports, set()
        for slot in self.port_slots():
            port = slot.port
            if port is None or port not in dirty:
                continue
            if slot.board is not None and port.present:
                port.deliver(slot.board.drain_to)
            if getattr(port, "vanish_requested", False):
                port.vanish_requested = False
                if slot.board is None and self.paced:  # read by another process: let it have the last lines
                    port.drain_out()
                port.vanish()
                if slot.board is not None:
                    slot.board.poll()  # the board notices at this instant and marks the gap

    def close(self) -> None:
        if self.psu_server is not None:
            self.psu_server.stop()
        for load in self.power.values():
            load.detach()
        for comp in self.companions.values():
            comp.device.shutdown()
        for slot in self.slots.values():
            if slot.port is not None and slot.port.present:
                slot.port.vanish()
            if slot.device.app is not None:
                try:
                    slot.device._stop_app()
                except Exception:  # noqa: BLE001 - best effort at teardown
                    pass
        self.world.close()
