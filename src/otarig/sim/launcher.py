"""`otarig sim`: a simulated bench paced to wall time, and the pacing helpers tests use.

Virtual time is normally run as fast as the CPU allows (docs/design.md principle 4). Two things need the
world to move while something outside it waits in wall time:

* `otarig sim`: a person (or a script) drives the bench through its real channels (HTTP API, board
  ptys, the simulated PSU) and expects it to live at the speed of the wall clock. `WallPacer` runs
  the world so that virtual time follows the wall clock times `speed`.
* A test that runs the real `particle` CLI: the CLI is a separate process that waits in wall time
  for HTTP answers, and an OTA it starts needs virtual time to pass. `pump_while` runs the CLI in a
  thread and advances the world in small steps until it returns. This is the one place a simulated
  test waits on wall time, because the CLI is a real process.

Threading rule (otarig.sim.bench): only the thread that created the world advances it; the HTTP
server's handlers take `bench.lock` and never advance time.
"""
from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .bench import SimBench
from .cloud_http import CloudHttpServer

T = TypeVar("T")

DEFAULT_PRODUCT = 4242
#: the pump's virtual step and wall pause: small enough that the CLI's requests are answered
#: promptly, large enough that a 100 KB OTA (about 20 s virtual on 3G) takes a few wall seconds.
PUMP_STEP_S = 0.05
PUMP_WALL_S = 0.002


def pump_while(bench: SimBench, fn: Callable[[], T], *, step: float = PUMP_STEP_S, wall: float = PUMP_WALL_S,
               timeout: float = 120.0, on_step: Callable[[], None] | None = None) -> T:
    """Run `fn` (e.g. a `particle` CLI call) in a thread while this thread advances the world.

    Each turn advances `step` s of virtual time, then waits up to `wall` s of wall time for `fn`
    to finish (an event wait, woken as soon as it returns). `on_step` runs in this (the world's)
    thread after each step, e.g. to publish once a subscriber is connected. Returns what `fn`
    returned or raises what it raised; raises TimeoutError after `timeout` wall seconds.
    """
    done = threading.Event()
    result: list[Any] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=run, name="otarig-pumped", daemon=True)
    worker.start()
    deadline = time.monotonic() + timeout
    while not done.is_set():
        if time.monotonic() > deadline:
            raise TimeoutError(f"pumped call did not finish within {timeout} s of wall time")
        bench.advance(step)
        if on_step is not None:
            on_step()
        done.wait(wall)
    worker.join()
    if error:
        raise error[0]
    return result[0]


@dataclass
class WallPacer:
    """Advance `bench` so that virtual time follows wall time × `speed` (`otarig sim`).

    `stop()` may be called from a signal handler: it only sets a flag (no lock, no `Event`), and
    the loop looks at that flag at least every `tick_s` of wall time and between advance steps.
    """

    bench: SimBench
    speed: float = 1.0
    tick_s: float = 0.01
    stopping: bool = False

    def run(self, duration_s: float | None = None) -> None:
        """Pace until `stop()` (or `duration_s` of wall time)."""
        self.bench.paced = True
        wall0 = time.monotonic()
        virt0 = self.bench.world.now_ms
        while not self.stopping:
            elapsed = time.monotonic() - wall0
            if duration_s is not None and elapsed >= duration_s:
                break
            target = virt0 + int(elapsed * self.speed * 1000)
            while self.bench.world.now_ms < target and not self.stopping:
                self.bench.advance((target - self.bench.world.now_ms) / 1000)
            self._serve_unattached_ports()
            if not self.stopping:
                time.sleep(self.tick_s)  # a signal's handler runs during the sleep; the flag is seen next turn

    def _serve_unattached_ports(self) -> None:
        """Boards nobody attached a rig `Board` to: pass a terminal's input to the device and
        keep its output flowing (`SimBench` syncs only attached boards)."""
        with self.bench.lock:
            for slot in self.bench.port_slots():
                port = slot.port
                if slot.board is not None or port is None or not port.present:
                    continue
                data = port.read_available()
                if data:
                    slot.device.serial_input(data)
                port.flush()
            self.bench.world.dirty_ports.clear()

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler and from any thread: one assignment)."""
        self.stopping = True


def _device_id(i: int) -> str:
    return f"e00fce68{i + 1:016x}"


def start_sim(*, boards: int = 1, product: int = DEFAULT_PRODUCT, version: int = 1, seed: int = 0,
              port: int = 0, token: str | None = None, workdir: Path | None = None, psu: bool = True,
              link_profile: str = "3g", mutant: int = 0) -> tuple[SimBench, CloudHttpServer, Any, dict]:
    """Build the bench (companion v`version` on each board, with defect `mutant`), start the API
    (and PSU); describe it."""
    from .build import build_companion
    from .images import make_app_image

    image = make_app_image(build_companion(version, product_id=product, mutant=mutant), product_id=product,
                           product_version=version)
    bench = SimBench(seed, workdir=workdir)
    server: CloudHttpServer | None = None
    psu_server = None
    try:
        devices = [bench.add_electron(_device_id(i), product_id=product, image=image, link_profile=link_profile)
                   for i in range(boards)]
        # boot until every board's USB port has enumerated, so the ports printed exist (virtual time)
        while not all(bench.slots[d.device_id].port.present for d in devices) and bench.world.now_ms < 30_000:
            bench.advance(0.1)
        # the bench companion beside board 1 (firmware/bench/ on its own pty); VBUS is not wired
        # through it here, so the PSU's output alone still powers board 1 off (as without a companion)
        bench.add_bench_companion(devices[0].device_id, vbus_cable=False)
        server = CloudHttpServer(bench, token=token, port=port)
        server.start()
        info: dict[str, Any] = {"api_url": server.url, "token": server.token, "product": product,
                                "boards": [{"device_id": d.device_id, "port": str(bench.port_path(d.device_id))}
                                           for d in devices],
                                "bench_companion": {"device_id": devices[0].device_id,
                                                    "port": str(bench.companions["bench-companion"].port.link)}}
        if psu:
            # board i on channel i+1 (an E36312A has three), 5 V with the output on, fed through the
            # same power model as the in-process bench (sleep and radio currents, VBUS, LiPo:
            # docs/power.md), so the supply current a stand-in's rig reads is the one a test expects
            for channel, d in enumerate(devices[:3], start=1):
                info["psu"] = bench.start_psu("E36312A", device_id=d.device_id, channel=channel, volts=5.0,
                                              current_limit=3.0, output=True)
            psu_server = bench.psu_server
            info["psu_channels"] = {d.device_id: i + 1 for i, d in enumerate(devices[:3])}
    except BaseException:  # a signal or an error while starting: nothing is left running, no world folder
        _close(bench, server, psu_server)
        raise
    return bench, server, psu_server, info


def run_sim(*, speed: float = 1.0, json_output: bool = False, duration_s: float | None = None,
            out: Any = None, bench_file: Path | None = None, token_env: str | None = None, **kw: Any) -> int:
    """`otarig sim`: start, print how to reach everything, pace until Ctrl-C/SIGTERM. With
    `bench_file`, also write a stand-in bench file for `otarig run` in another process.

    Any number of SIGINT/SIGTERM ends it cleanly: the handler only sets a flag (it may run inside
    a lock the main thread holds, so it takes none), the pacer sees the flag within a tick, and
    the close (API, PSU, boards, the world folder unless `workdir` was given) runs to its end
    whatever arrives meanwhile."""
    out = out or sys.stdout
    signals = _StopSignals()
    signals.install()
    try:
        _prebuild(kw)  # the one slow step (a cold compile): a signal here ends it with KeyboardInterrupt
        signals.raising = False  # from here on a signal only sets a flag; start_sim cleans up after itself
        bench, server, psu_server, info = start_sim(**kw)
        try:
            pacer = WallPacer(bench, speed=speed)
            signals.pacer = pacer
            if signals.count:
                pacer.stop()
            _describe(out, info, speed=speed, json_output=json_output, bench_file=bench_file, token_env=token_env,
                      kw=kw)
            pacer.run(duration_s)
        finally:
            _close(bench, server, psu_server)  # further signals only set the flag: the close is never cut short
    finally:
        signals.restore()
    return 0


def _describe(out: Any, info: dict, *, speed: float, json_output: bool, bench_file: Path | None,
              token_env: str | None, kw: dict) -> None:
    """Print how to reach everything (and write the stand-in bench file)."""
    info["speed"] = speed
    if bench_file is not None:
        from .standin import write_bench_file

        write_bench_file(bench_file, info, speed=speed, token_env=token_env or "PARTICLE_ACCESS_TOKEN",
                         link=kw.get("link_profile", "3g"), mutant=kw.get("mutant", 0))
        info["bench_file"] = str(bench_file)
    if json_output:
        shown = {k: v for k, v in info.items() if not (k == "token" and token_env)}
        out.write(json.dumps(shown) + "\n")  # one object on the first line, for scripts
    else:
        out.write(f"otarig simulated bench (speed x{speed:g}, Ctrl-C to stop)\n"
                  f"  API URL : {info['api_url']}\n"
                  f"  token   : {'$' + token_env if token_env else info['token']}\n"
                  f"  product : {info['product']}\n")
        for b in info["boards"]:
            out.write(f"  board   : {b['device_id']}  {b['port']}\n")
        bc = info["bench_companion"]
        out.write(f"  tester board: {bc['port']}  (firmware/bench/, beside {bc['device_id']}; "
                  "docs/protocol.md)\n")
        if "psu" in info:
            out.write(f"  PSU     : {info['psu']}\n")
        out.write(f"  particle CLI: particle profile set apiUrl {info['api_url']} && particle login --token <token>\n")
        if bench_file is not None:
            out.write(f"  stand-in bench file: {bench_file}  (otarig run --bench {bench_file}; token from "
                      f"${token_env})\n")
    out.flush()


def _prebuild(kw: dict) -> None:
    from .build import build_companion

    build_companion(kw.get("version", 1), product_id=kw.get("product", DEFAULT_PRODUCT), mutant=kw.get("mutant", 0))


def _close(bench: SimBench, server: CloudHttpServer | None, psu_server: Any) -> None:
    """Stop the API and the PSU, close the bench (boards, ports, the world folder); each step runs
    even when an earlier one failed."""
    try:
        if server is not None:
            server.stop()
    finally:
        try:
            if psu_server is not None:
                psu_server.stop()
        finally:
            bench.close()


class _StopSignals:
    """SIGINT and SIGTERM for `otarig sim`.

    While the companion is being built (`raising`), the first signal raises KeyboardInterrupt: nothing
    is running yet. Afterwards every signal only counts and sets the pacer's flag — no lock, no
    `Event.set()` (its lock is not re-entrant: a handler that runs while the main thread is inside
    `Event.wait()` deadlocks on it), no exception that could cut a close short.
    """

    def __init__(self) -> None:
        self.raising = True
        self.count = 0
        self.pacer: WallPacer | None = None
        self.previous: dict[int, Any] = {}

    def __call__(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.pacer is not None:
            self.pacer.stop()
        elif self.raising and self.count == 1:
            raise KeyboardInterrupt(f"signal {signum}")

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous.clear()
