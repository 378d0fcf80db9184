"""How fast is the simulated cloud? (issue #3 "Must show": the benchmark)

1. HTTP round trip of the simulated cloud on 127.0.0.1: `GET /v1/products/P/firmware` (auth,
   bench.lock, JSON) over one keep-alive connection; median and p99.
2. Wall time of a 1,000-device, 7-day simulated fleet with one Standard release.

Measured first (see the printout): a `SimBench` device running the companion firmware costs
about 7-10 µs per loop pass, and the parked companion loops once per virtual second, so a
firmware-in-the-loop fleet of 1,000 devices × 7 days would take over an hour. The fleet run
therefore uses **protocol devices without firmware** (`FleetDevice` below): each speaks the real
device side of the cloud protocol over its own `CellularLink` (handshake/resume, UpdateBegin
accept, chunk reception with missed-chunk requests, UpdateDone, reboot into the new version)
against the real `SimCloud` and its rules; the firmware-in-the-loop cost is measured on a small
fleet and extrapolated, and both figures are printed.

Fleet behaviour model ([inference], for load, not a claim about real fleets): each device drops
its cellular connection every 6-18 h and reconnects with a session resume (no update check,
docs/reference/particle-ota.md §8.1 parameter off) and power-cycles on average every 4 days (full handshake, §1.2);
the cloud forces a full handshake after 3 days (docs/reference/particle-ota.md §1.2).

    .venv/bin/python bench/cloud_speed.py [--devices 1000] [--days 7] [--requests 500]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from otarig.sim.bench import SimBench  # noqa: E402
from otarig.sim.build import build_companion  # noqa: E402
from otarig.sim.cloud_http import CloudHttpServer  # noqa: E402
from otarig.sim.cloud_peer import HELLO_FLAG_IMMEDIATE_UPDATES_SUPPORT, Hello, SessionReply  # noqa: E402
from otarig.sim.deviceos import SYSTEM_MODULE_VERSION  # noqa: E402
from otarig.sim.images import make_app_image  # noqa: E402
from otarig.sim.link import FULL_HANDSHAKE_BYTES, RESUME_BYTES, CellularLink  # noqa: E402
from otarig.sim.messages import BeginReply, Chunk, CloudEvent, DoneReply, UpdateBegin, UpdateDone  # noqa: E402
from otarig.sim.world import World  # noqa: E402

PRODUCT = 4242
HOUR_MS = 3600_000
DAY_MS = 24 * HOUR_MS


def http_round_trip(n: int) -> tuple[float, float]:
    """Median and p99 (ms) of `n` authenticated GETs through the lock and the worker pool."""
    bench = SimBench(seed=0)
    bench.cloud.add_product(PRODUCT)
    server = CloudHttpServer(bench)
    server.start()
    s = requests.Session()
    s.trust_env = False
    s.headers["Authorization"] = f"Bearer {server.token}"
    url = f"{server.url}/v1/products/{PRODUCT}/firmware"
    for _ in range(20):  # warm-up
        s.get(url).raise_for_status()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        s.get(url).raise_for_status()
        samples.append((time.perf_counter() - t0) * 1000)
    server.stop()
    bench.close()
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.99 * len(samples)))]


class _Flags:
    updates_enabled = True
    updates_forced = False


class FleetDevice:
    """A device without firmware: the device side of the cloud protocol (docs/reference/particle-ota.md §7.3, §2.3-2.5)."""

    PLATFORM_ID = 10

    def __init__(self, world: World, cloud, device_id: str, version: int, rng: random.Random) -> None:
        self.world, self.sched, self.cloud = world, world.sched, cloud
        self.device_id = device_id
        self.version = version
        self.rng = rng
        self.link = CellularLink(world.sched, "3g", seed=rng.randrange(1 << 30))
        self.flags = _Flags()
        self.app = None
        self.session: str | None = None
        self.described = 0
        self.connected = False
        self.powered = True
        self.rx: dict[int, bytes] = {}
        self.transfer: UpdateBegin | None = None
        self.updated_at_ms: int | None = None

    # -- life ----------------------------------------------------------------------------------
    def start(self) -> None:
        self.sched.after(self.rng.randrange(0, 60_000), lambda: self.connect(full=True))
        self.sched.after(self._next_drop(), self._drop)
        self.sched.after(self._next_power_cycle(), self._power_cycle)

    def _next_drop(self) -> int:
        return self.rng.randrange(6 * HOUR_MS, 18 * HOUR_MS)

    def _next_power_cycle(self) -> int:
        return int(self.rng.expovariate(1 / (4 * DAY_MS)))

    def connect(self, *, full: bool) -> None:
        if self.connected:
            return
        if full:
            self.session = None
        # HELLO over a resumed session only when the app changed (describe CRC, docs/reference/particle-ota.md §1.1)
        hello_sent = self.session is None or self.described != self.version
        hello = Hello(self.device_id, self.session, hello_sent, PRODUCT, self.version, 10,
                      HELLO_FLAG_IMMEDIATE_UPDATES_SUPPORT, SYSTEM_MODULE_VERSION, False, f"app-{self.version}")
        size = FULL_HANDSHAKE_BYTES // 2 if self.session is None else RESUME_BYTES // 2
        self.link.send("up", size, "handshake" if self.session is None else "resume",
                       lambda: self.cloud.device_hello(self, hello), reliable=True)

    def disconnect(self) -> None:
        if self.connected:
            self.connected = False
            self.transfer = None
            self.cloud.device_disconnected(self, graceful=False)

    def _drop(self) -> None:
        self.disconnect()
        self.sched.after(20_000, lambda: self.connect(full=False))
        self.sched.after(self._next_drop(), self._drop)

    def _power_cycle(self) -> None:
        self.disconnect()
        self.sched.after(25_000, lambda: self.connect(full=True))
        self.sched.after(self._next_power_cycle(), self._power_cycle)

    def _send(self, msg: object, nbytes: int) -> None:
        self.link.send("up", nbytes, "ota", lambda: self.cloud.device_message(self, msg), reliable=True)

    # -- cloud → device --------------------------------------------------------------------------
    def on_cloud_message(self, msg: object) -> None:
        if isinstance(msg, SessionReply):
            self.session = msg.session_id
            self.described = self.version
            self.connected = True
            return
        if not self.connected:
            return
        if isinstance(msg, UpdateBegin):
            self.transfer, self.rx = msg, {}
            self._send(BeginReply(msg.transfer_id, True), 60)
        elif isinstance(msg, Chunk) and self.transfer and msg.transfer_id == self.transfer.transfer_id:
            self.rx[msg.index] = msg.data
        elif isinstance(msg, UpdateDone) and self.transfer and msg.transfer_id == self.transfer.transfer_id:
            count = -(-self.transfer.file_length // self.transfer.chunk_size)
            missing = tuple(i for i in range(count) if i not in self.rx)
            if missing:
                self._send(DoneReply(msg.transfer_id, missing=missing[:40]), 60 + 2 * len(missing[:40]))
                return
            self._send(DoneReply(msg.transfer_id, ok=True), 80)
            self.transfer = None
            self.sched.after(2_000, self._reboot_into_update)
        elif isinstance(msg, CloudEvent):
            pass  # pending/forced flags: this device always has updates enabled

    def _reboot_into_update(self) -> None:
        self.disconnect()
        self.version = 2
        self.updated_at_ms = self.sched.now_ms
        self.sched.after(3_000, lambda: self.connect(full=False))  # resume + HELLO (describe changed)


def fleet(devices: int, days: int, seed: int = 1) -> dict:
    """Wall time of `devices` protocol devices × `days`, one Standard release at t = 1 h."""
    bench = SimBench(seed=seed)
    cloud = bench.cloud
    cloud.add_product(PRODUCT)
    v2 = make_app_image(build_companion(2), product_id=PRODUCT, product_version=2, size=100 * 1024)
    rng = random.Random(seed)
    fleet_devs = []
    for i in range(devices):
        d = FleetDevice(bench.world, cloud, f"e00f{i:020x}", 1, random.Random(rng.random()))
        cloud.attach(d, PRODUCT)
        d.start()
        fleet_devs.append(d)
    t0 = time.perf_counter()
    bench.world.run_until(HOUR_MS)
    cloud.upload_firmware(PRODUCT, 2, v2)
    cloud.release(PRODUCT, 2, product_default=True)
    bench.world.sched.run_until(days * DAY_MS, stop_early=False)
    wall = time.perf_counter() - t0
    landed = sorted((d.updated_at_ms - HOUR_MS) / HOUR_MS for d in fleet_devs if d.updated_at_ms is not None)
    total_bytes = sum(d.link.stats.total for d in fleet_devs)
    bench.close()
    return {"wall_s": wall, "landed": len(landed), "median_h": statistics.median(landed) if landed else None,
            "p90_h": landed[int(0.9 * len(landed))] if landed else None, "bytes": total_bytes,
            "transfers": len(cloud.transfer_log), "events": len(cloud.events)}


def firmware_in_the_loop(devices: int, hours: int) -> float:
    """Wall seconds for `devices` Electrons running the companion for `hours` (no serial ports)."""
    image = make_app_image(build_companion(1), product_id=PRODUCT, product_version=1)
    bench = SimBench(seed=2)
    for i in range(devices):
        bench.add_electron(f"e00fce68{i:016x}", product_id=PRODUCT, image=image, with_port=False)
    t0 = time.perf_counter()
    bench.run_for(hours * 3600)
    wall = time.perf_counter() - t0
    bench.close()
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--fw-devices", type=int, default=5, help="firmware-in-the-loop sample size")
    ap.add_argument("--fw-hours", type=int, default=6, help="firmware-in-the-loop sample length")
    args = ap.parse_args()

    median, p99 = http_round_trip(args.requests)
    print(f"HTTP round trip, {args.requests} x GET /v1/products/{PRODUCT}/firmware: "
          f"median {median:.2f} ms, p99 {p99:.2f} ms")

    fw_wall = firmware_in_the_loop(args.fw_devices, args.fw_hours)
    per_dev_day = fw_wall / (args.fw_devices * args.fw_hours / 24)
    print(f"firmware in the loop: {args.fw_devices} Electrons x {args.fw_hours} h = {fw_wall:.1f} s wall "
          f"({per_dev_day:.2f} s per device-day; {args.devices} x {args.days} d would take "
          f"~{per_dev_day * args.devices * args.days / 60:.0f} min)")

    r = fleet(args.devices, args.days)
    print(f"fleet without firmware: {args.devices} protocol devices x {args.days} days, one Standard release: "
          f"{r['wall_s']:.1f} s wall; landed on {r['landed']}/{args.devices} "
          f"(median {r['median_h']:.1f} h, p90 {r['p90_h']:.1f} h after release); "
          f"{r['transfers']} transfers, {r['events']} stream events, {r['bytes'] / 1e6:.1f} MB on air")
    return 0


if __name__ == "__main__":
    sys.exit(main())
