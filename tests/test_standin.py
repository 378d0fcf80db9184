"""The real-bench path, proven across a process boundary: a stand-in bench (the simulated world in
its own process, `otarig sim --bench-file`) driven by a rig that reaches it only over its
channels — pyserial on the ptys, PyVISA on the SCPI port, HTTP + SSE on the Cloud API.

The stand-in runs paced to wall time (it is another process), so these tests wait on it in wall
time; each wait is bounded and event-driven (a line on its stdout, a subprocess that returns).
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OTARIG = [sys.executable, "-m", "otarig.cli"]
SPEED = 20


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """`otarig sim --speed 20 --bench-file …` in its own process; yields (bench file, environment)."""
    tmp = tmp_path_factory.mktemp("standin")
    env = {**os.environ, "OTARIG_STANDIN_TOKEN": secrets.token_hex(20)}
    bench = tmp / "bench-standin.toml"
    proc = subprocess.Popen([*OTARIG, "sim", "--json", "--speed", str(SPEED), "--bench-file", str(bench)],
                            cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline() if proc.stdout else ""  # printed once the bench file is written
        if not first:
            pytest.fail(f"otarig sim did not start: {proc.stderr.read() if proc.stderr else ''}")
        info = json.loads(first)
        assert "token" not in info, "the stand-in must not print the token it was given"
        yield bench, env
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_bench_file_describes_a_real_bench_on_loopback(standin: tuple[Path, dict[str, str]]) -> None:
    from otarig.config import load

    bench, env = standin
    cfg = load(bench)
    assert cfg.bench.kind == "real" and cfg.stand_in and cfg.bench.time_scale == SPEED
    assert cfg.cloud.api_url.startswith("http://127.0.0.1:")
    assert env["OTARIG_STANDIN_TOKEN"] not in bench.read_text(), "the token must never be written to the file"
    assert cfg.firmware is not None and sorted(cfg.firmware.versions) == [1, 2, 3]
    assert cfg.firmware.fleet_release is not None and Path(cfg.firmware.fleet_release).is_file(), \
        "the fleet's release the candidate upgrades from (hil/test_fleet_upgrade.py)"


RIG_PROCESS = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    from otarig.compose import compose
    from otarig.config import load
    from otarig.rig import Rig, SimOnlyError
    from otarig.strategy import BaselineStrategy

    bench, out = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = load(bench)
    parts = compose(cfg, bench, out, seed=1)
    try:
        rig = Rig(cfg, parts, out, 1)
        BaselineStrategy(cfg.firmware.baseline).transition(rig)
        rig.start_scenario()
        status = rig.command("status")
        try:
            rig.sim
            refused = False
        except SimOnlyError:
            refused = True
        print(json.dumps({
            "sim_modules": sorted(m for m in sys.modules if m == "otarig.sim" or m.startswith("otarig.sim.")),
            "product_version": status["product_version"], "connected": status["cloud_connected"],
            "sim_refused": refused, "kind": parts.description["kind"], "flasher": parts.flasher.method,
            "state": [e.kind for e in rig.timeline]}))
    finally:
        parts.close()
''')


def test_a_rig_on_a_real_bench_never_imports_the_simulator(standin: tuple[Path, dict[str, str]],
                                                              tmp_path: Path) -> None:
    """Composed from a `kind = "real"` bench file, brought to its baseline and asked for its state,
    the rig process has not imported `otarig.sim` (nor any of its modules), and refuses `rig.sim`."""
    bench, env = standin
    done = subprocess.run([sys.executable, "-c", RIG_PROCESS, str(bench), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["sim_modules"] == [], f"the rig imported the simulator on a real bench: {seen['sim_modules']}"
    assert seen["kind"] == "real" and seen["flasher"] == "cloud"
    assert seen["product_version"] == 1 and seen["connected"] is True
    assert seen["sim_refused"] is True
    assert seen["state"][0] == "state", "the scenario's timeline starts with the DUT's state"


def test_otarig_run_against_the_stand_in_passes_and_says_it_is_not_hardware(
        standin: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """A scenario that uploads, releases and lands an update, over the stand-in's channels; the
    record says passed, kind real, stand-in, not hardware, and the exit status agrees; the whole
    `otarig run` process (runner, plugin, report) never imported `otarig.sim`."""
    bench, env = standin
    report = tmp_path / "report"
    whole_run = ("import json, sys\nfrom otarig.cli import main\nrc = main(sys.argv[1:])\n"
                 "print('SIM-MODULES ' + json.dumps(sorted(m for m in sys.modules if m.startswith('otarig.sim'))))\n"
                 "sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", whole_run, "run", "--bench", str(bench), "--report", str(report),
                           "-k", "lock_and_flash"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    record = json.loads((report / "certification.json").read_text())
    assert done.returncode == 0, done.stdout[-3000:]
    imported = json.loads(done.stdout.split("SIM-MODULES ")[1].splitlines()[0])
    assert imported == [], f"`otarig run` on a real bench imported the simulator: {imported}"
    assert record["passed"] is True
    assert record["bench"]["kind"] == "real" and record["bench"]["stand_in"] is True
    assert record["bench"]["hardware"] is False and record["bench"]["time_scale"] == SPEED
    assert "stand-in bench" in done.stdout
    assert env["OTARIG_STANDIN_TOKEN"] not in "".join(p.read_text(errors="replace") for p in report.rglob("*")
                                                     if p.is_file() and p.suffix in (".json", ".txt", ".log", ".xml",
                                                                                     ".jsonl", ".html"))
