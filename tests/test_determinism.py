"""Same seed, same timeline, byte for byte; another seed, another interleaving (docs/design.md principle 4).

The scenario is an Intelligent-release OTA of a 100 KB app over a lossy link (5 % of chunks lost,
so missed-chunk rounds depend on the seed). Its product is the board's serial log, whose lines carry
virtual time: two runs with one seed must give identical logs — also in another interpreter with a
different PYTHONHASHSEED — and a different seed must give a different one. The seed drives every
random choice of the simulated bench (`otarig.sim.randomness`): link latency jitter and loss, the
cloud's delays, Device OS timings and the app's `delay()` within their declared spreads.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
from pathlib import Path

from otarig.sim.bench import SimBench
from otarig.sim.build import build_companion
from otarig.sim.images import make_app_image
from otarig.sim.link import PROFILES
from otarig.sim.params import CloudParams, DeviceOsParams
from otarig.sim.randomness import SeedTree

DID = "e00fce680000000000000001"


def _without_spreads(params: object) -> object:
    """`params` with every seeded spread at 0: the fixed timings of before the seed drove them."""
    fields = {f.name: 0 for f in dataclasses.fields(params)  # type: ignore[arg-type]
              if f.name.endswith("_spread_ms") or f.name == "app_delay_overrun_ms"}
    return dataclasses.replace(params, **fields)  # type: ignore[type-var]


def scenario(seed: int, workdir: Path, cut_at_edge: int = 0, *, spreads: bool = True) -> bytes:
    """Run the lossy OTA and return the board's log (importable by a child interpreter).

    `cut_at_edge`: also run the bench companion (firmware/bench/ on its pty) and have it cut power
    at that rising edge of the status line; its log then follows the board's in the result.
    `spreads=False`: every timing spread and the link's jitter at 0, so only loss draws remain.
    """
    img1 = make_app_image(build_companion(1), product_id=4242, product_version=1)
    img2 = make_app_image(build_companion(2), product_id=4242, product_version=2, size=100 * 1024)
    fixed = {} if spreads else {"device_params": _without_spreads(DeviceOsParams()),
                                "cloud_params": _without_spreads(CloudParams())}
    bench = SimBench(seed=seed, workdir=workdir / "bench", **fixed)  # type: ignore[arg-type]
    profile = PROFILES["3g"] if spreads else dataclasses.replace(PROFILES["3g"], jitter_ms=0)
    tester = None
    try:
        dev = bench.add_electron(DID, product_id=4242, image=img1, loss=0.05, link_profile=profile)
        if cut_at_edge:
            bench.add_bench_companion(DID)
            tester = bench.open_board("bench-companion", workdir / "tester.log")
            tester.command("arm_cut", edges=cut_at_edge, off_ms=3000)
        board = bench.open_board(DID, workdir / "board.log")
        board.expect(lambda e: e.name == "sys" and e.get("param") == "connected", 60)
        board.command("workload", state="busy")
        bench.run_for(8)
        bench.cloud.upload_firmware(4242, 2, img2)
        bench.cloud.release(4242, 2, product_default=True, intelligent=True)
        board.expect(lambda e: e.name == "sys" and e.get("event") == "firmware_update_pending", 60)
        board.command("workload", state="idle")
        board.expect(lambda e: e.name == "hello" and e.get("product_version") == 2, 900)
        bench.run_for(30)
        assert dev.link.stats.dropped > 0, "the link lost something: the seed mattered"
        # the cloud's account of each transfer (chunks resent, rounds) ends the log: compared too
        transfers = b"".join(json.dumps(t, sort_keys=True).encode() + b"\n" for t in bench.cloud.transfer_log)
        board.close()
        if tester is not None:
            assert tester.events("cut"), "the companion's cut fired"
            tester.close()
    finally:
        bench.close()
    log = (workdir / "board.log").read_bytes() + transfers
    return log + (workdir / "tester.log").read_bytes() if cut_at_edge else log


def _in_another_interpreter(workdir: Path, hashseed: str, cut_at_edge: int = 0) -> bytes:
    """`scenario(11, …)` run by a child Python with another PYTHONHASHSEED."""
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
            "from test_determinism import scenario; "
            "sys.stdout.buffer.write(scenario(11, Path(sys.argv[2]), cut_at_edge=int(sys.argv[3])))")
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    return subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(workdir), str(cut_at_edge)],
                          capture_output=True, env=env, timeout=120, check=True).stdout


def test_same_seed_gives_byte_identical_logs(tmp_path: Path) -> None:
    """Principle 4: one seed → one serial log, in this process and in another one."""
    first = scenario(11, tmp_path / "a")
    second = scenario(11, tmp_path / "b")
    assert first == second
    assert b'"param":"progress"' in first and b'"product_version":2' in first
    # Another interpreter, another str-hash seed: nothing may depend on hash() or on object ids.
    assert _in_another_interpreter(tmp_path / "c", "4321") == first


def test_same_seed_same_logs_with_the_bench_companion(tmp_path: Path) -> None:
    """The bench companion's MicroPython program runs in the same virtual time: a cut it times on
    the status line lands at the same instant in every run, in this process and in another."""
    first = scenario(11, tmp_path / "a", cut_at_edge=60)
    assert first == scenario(11, tmp_path / "b", cut_at_edge=60)
    assert b'"ev": "cut"' in first and b'"reset_reason":"power_down"' in first
    assert _in_another_interpreter(tmp_path / "c", "99", cut_at_edge=60) == first


def test_without_spreads_a_different_seed_differs_only_where_loss_matters(tmp_path: Path) -> None:
    """With every timing spread and the link jitter at 0, loss is the only draw left: the log
    first differs at a line whose content depends on loss (the OTA's timing, or the cloud's account
    of the chunks it resent), never before the connection. A publish's result does not: Device OS
    answers once the channel took the event, which is confirmable and retransmitted
    (docs/reference/particle-ota.md §2.8 "When Particle.publish() returns false")."""
    a = scenario(11, tmp_path / "a", spreads=False).splitlines()
    b = scenario(12, tmp_path / "b", spreads=False).splitlines()
    assert a != b
    first_diff = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    connected = next(i for i, ln in enumerate(a) if b'"param":"connected"' in ln)
    assert first_diff > connected, "boot and connection do not depend on loss"
    assert b'"event":"firmware_update"' in a[first_diff] or a[first_diff].startswith(b'{"chunk_count"'), a[first_diff]
    resent_a = [json.loads(ln)["resent"] for ln in a if ln.startswith(b'{"chunk_count"')]
    resent_b = [json.loads(ln)["resent"] for ln in b if ln.startswith(b'{"chunk_count"')]
    assert resent_a and resent_a != resent_b, "the transfer itself (the chunks it resent) depends on the seed"


def test_a_different_seed_changes_boot_connection_and_transfer_timing(tmp_path: Path) -> None:
    """With the declared spreads, the seed moves boot, registration and the cloud's delays too:
    the two runs part before the connection, connect at different instants, and the update begins
    at a different time after the release — each seed is another interleaving, still a valid one."""
    a = scenario(11, tmp_path / "a").splitlines()
    b = scenario(12, tmp_path / "b").splitlines()
    first_diff = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    connected_a = next(ln for ln in a if b'"param":"connected"' in ln)
    connected_b = next(ln for ln in b if b'"param":"connected"' in ln)
    assert first_diff <= a.index(connected_a), "the seed does not reach boot or registration"
    assert connected_a != connected_b
    for log in (a, b):
        assert any(b'"product_version":2' in ln for ln in log), "both interleavings end on the new version"
    begins = [[ln for ln in log if b'"param":"begin"' in ln] for log in (a, b)]
    assert begins[0] and begins[1] and begins[0] != begins[1]


def test_seed_tree_streams_are_named_and_independent() -> None:
    """A stream depends only on the seed and its name: drawing from one shifts no other, the same
    name gives the same object (it keeps its state), and another seed gives other draws."""
    tree = SeedTree(7)
    first = tree.stream("cloud", DID, "retry").random()
    other = SeedTree(7)
    for _ in range(50):
        other.stream("link", DID, "latency").random()
    assert other.stream("cloud", DID, "retry").random() == first
    assert tree.stream("cloud", DID, "retry") is tree.stream("cloud", DID, "retry")
    assert SeedTree(8).stream("cloud", DID, "retry").random() != first
    assert isinstance(tree.stream("x"), random.Random) and 0 <= tree.derive("x") < 2 ** 32


def test_a_scenario_over_the_cloud_api_gives_the_same_timeline_twice(tmp_path: Path) -> None:
    """The rig reaches the simulated cloud over HTTP and its event stream over SSE (another thread,
    a real socket); the bench clock keeps the stream in step, so the same seed still gives the same
    timeline byte for byte — cloud events included — and another seed another one. The record
    says which seed ran."""

    repo = Path(__file__).resolve().parents[1]
    timelines = []
    for run, seed in (("a", 3), ("b", 3), ("c", 4)):
        report = tmp_path / run
        done = subprocess.run([sys.executable, "-m", "otarig.cli", "run", "-k", "lock_and_flash", "--seed", str(seed),
                               "--report", str(report)], cwd=repo, capture_output=True, text=True, timeout=600,
                               check=False)
        assert done.returncode == 0, done.stdout[-2000:]
        [path] = report.glob("tests/*/timeline.jsonl")
        timelines.append(path.read_bytes())
        assert json.loads((report / "certification.json").read_text())["seed"] == seed
        [meta] = report.glob("tests/*/meta.json")
        assert json.loads(meta.read_text())["seed"] == seed
    assert b'"source":"cloud"' in timelines[0]
    assert timelines[0] == timelines[1]
    assert timelines[2] != timelines[0]
