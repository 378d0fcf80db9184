"""Power-cut sweep on the simulated bench (issue #4 "Must show"; docs/reference/instruments-and-faults.md A.2 MCUboot method).

One fresh bench per case: the board boots v1, drives for a while (records persisted to EEPROM),
parks; v2 (100 KB = 200 chunks of 512 B) is released; power is cut at the case's point and restored
1 s later. Cases: every chunk boundary 0..200 of the download, after `complete`, and three instants
of the bootloader copy — 205 cuts. Oracle (docs/reference/particle-ota.md §2.6, §7.10):

* the first boot after the cut runs a valid app, v1 when the cut came before the DCT slot was
  registered and v2 after; no case leaves the board without a runnable app (no safe mode, a valid
  user module in flash);
* every record the board reported `persisted: true` before the cut is still there (`boot.last_seq`);
* the update still lands afterwards (the cloud retries a lost download from chunk 0, §7.9).

Runs in the default suite: a case costs ~50 ms of wall time (virtual time); the measured figure is
printed, not asserted (speed is a benchmark's business: under load a wall-time bound only fails).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from otarig.sim.bench import SimBench
from otarig.sim.faults import CutPoint, OtaPhase, SimPowerCut, sweep_points
from otarig.sim.images import read_image
from otarig.sim.params import DeviceOsParams

DID = "e00fce680000000000000001"
PRODUCT = 4242
IMAGE_SIZE = 100 * 1024
CHUNK = 512




def _is_app_record(e: object) -> bool:
    return getattr(e, "name", None) == "app" and e.get("action") == "record"  # type: ignore[attr-defined]


def run_case(images: Any, point: CutPoint, log: Path, seed: int = 1) -> str:
    """One cut; returns "" when every oracle holds, else what failed."""
    bench = SimBench(seed=seed)
    try:
        dev = bench.add_electron(DID, product_id=PRODUCT, image=images.v1)
        board = bench.open_board(DID, log)
        board.expect(lambda e: e.name == "sys" and e.get("param") == "connected", 60)
        board.command("workload", state="busy")
        bench.run_for(7.5)  # 7 records; 5 persisted in a batch, the rest at the clean shutdown
        cut = SimPowerCut(dev, point, off_ms=1_000).arm()
        bench.cloud.upload_firmware(PRODUCT, 2, images.v2)
        bench.cloud.release(PRODUCT, 2, product_default=True, intelligent=True)
        board.command("workload", state="idle")
        deadline = bench.clock.now() + 300
        while not cut.fired and bench.clock.now() < deadline:
            bench.advance(deadline - bench.clock.now())
        if cut.record is None:
            return "the cut never fired"
        rec = cut.record
        t_cut = rec.t_ms / 1000.0
        # Ground truth at the cut: it is where it was asked to be.
        if point.phase is OtaPhase.DOWNLOAD and rec.chunks_received != point.chunks:
            return f"cut with {rec.chunks_received} chunks received, wanted {point.chunks}"
        if rec.slot_registered != point.expects_new_image:
            return f"slot registered={rec.slot_registered} at the cut"
        if point.phase is OtaPhase.BOOTLOADER_COPY and not rec.copying:
            return "the cut missed the bootloader copy"
        persisted = [e.get("seq") for t, e in board.history
                     if t <= t_cut and _is_app_record(e) and e.get("persisted") is True]
        if not persisted:
            return "no record was persisted before the cut (the case tests nothing)"
        # The first boot after the cut.
        hello = board.expect(lambda e: e.name == "hello", 120)
        boot = board.expect(lambda e: e.name == "boot", 5)
        want = 2 if point.expects_new_image else 1
        problems = []
        if hello.get("product_version") != want:
            problems.append(f"booted v{hello.get('product_version')}, expected v{want}")
        if boot.get("reset_reason") != "power_down":
            problems.append(f"reset reason {boot.get('reset_reason')!r}")
        if (boot.get("last_seq") or 0) < max(persisted):
            problems.append(f"persisted up to #{max(persisted)} before the cut, last_seq {boot.get('last_seq')} after")
        if dev.safe_mode or dev.flash.user is None:
            problems.append("no runnable app")
        else:
            read_image(dev.flash.user)  # raises on a torn or invalid user module
        # And the update still lands: a lost download is retried from chunk 0 (docs/reference/particle-ota.md §7.9).
        if want == 1:
            board.expect(lambda e: e.name == "hello" and e.get("product_version") == 2, 900)
        return "; ".join(problems)
    except Exception as exc:  # a case that blows up is a failed case, with its reason
        return f"{type(exc).__name__}: {exc}"
    finally:
        bench.close()


def test_power_cut_sweep(images: Any, tmp_path: Path) -> None:
    copy_ms = DeviceOsParams().bootloader_copy_ms
    points = list(sweep_points(IMAGE_SIZE // CHUNK, copy_ms))
    assert len(points) == 201 + 1 + 3
    start = time.monotonic()
    failures: dict[str, str] = {}
    for point in points:
        problem = run_case(images, point, tmp_path / f"{point.label}.log")
        if problem:
            failures[point.label] = problem
    wall = time.monotonic() - start
    survived = len(points) - len(failures)
    print(f"\npower-cut sweep: survived {survived}/{len(points)} cuts "
          f"(201 chunk boundaries, after complete, {len(points) - 202} copy instants) in {wall:.1f} s wall")
    assert not failures, failures


def test_cut_points_are_exact_on_both_sides_of_registration(images: Any, tmp_path: Path) -> None:
    """The two neighbours of HAL_FLASH_End (docs/reference/particle-ota.md §2.5): all 200 chunks in → old; complete → new."""
    assert run_case(images, CutPoint(OtaPhase.DOWNLOAD, chunks=200), tmp_path / "a.log") == ""
    assert run_case(images, CutPoint(OtaPhase.AFTER_COMPLETE), tmp_path / "b.log") == ""
