"""The fleet's release (otarig.fleet_release): the build a candidate upgrades from, named in the bench
file as `[firmware] fleet_release`, checked before anything runs; and the verdict that tells a
candidate which cannot read what that release persisted (found by the checksum mutants of
RecordLog.cpp:9, docs/selftest.md)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from otarig import config
from otarig import firmware as fw
from otarig import verdicts as v
from otarig.compose import CompositionError, fleet_release_path
from otarig.fleet_release import NO_FLEET_RELEASE, FleetReleaseError, locate
from otarig.mutation.engine import MutationEngine
from otarig.timeline import Timeline

REPO = Path(__file__).resolve().parents[1]
BOARD = "board:e00fce680000000000000001"
PRODUCT = 4242


def _bench(tmp_path: Path, firmware: str = "") -> Path:
    """The shipped bench file with a [firmware] section."""
    text = (REPO / "bench_config.toml").read_text()
    path = tmp_path / "bench.toml"
    path.write_text(text + ("\n[firmware]\n" + firmware + "\n" if firmware else ""))
    return path


def test_a_missing_fleet_release_is_refused_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    bench = _bench(tmp_path, 'fleet_release = "field/v1.4.bin"')
    with pytest.raises(CompositionError) as err:
        fleet_release_path(config.load(bench), bench)
    msg = str(err.value)
    assert "firmware.fleet_release = 'field/v1.4.bin'" in msg and str(tmp_path / "field" / "v1.4.bin") in msg
    assert "relative to the bench file, or remove the key" in msg


def test_otarig_run_stops_before_any_scenario_on_a_broken_fleet_release(tmp_path: Path) -> None:
    bench = _bench(tmp_path, 'fleet_release = "nowhere.bin"')
    done = subprocess.run([sys.executable, "-m", "otarig.cli", "run", "--bench", str(bench), "--report",
                           str(tmp_path / "r")], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0
    assert f"cannot read {tmp_path / 'nowhere.bin'}" in done.stderr, done.stderr
    assert not (tmp_path / "r" / "certification.json").exists(), "nothing ran"


def test_a_binary_that_is_not_the_products_application_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other-product.bin"
    other.write_bytes(fw.build_module(b"app", product_id=PRODUCT + 1, product_version=3))
    with pytest.raises(FleetReleaseError, match=r"built for product 4243, the bench's is 4242"):
        locate("other-product.bin", base=tmp_path, simulated=False, product_id=PRODUCT)
    garbage = tmp_path / "notes.txt"
    garbage.write_text("v1.4 is what the field runs")
    with pytest.raises(FleetReleaseError, match=r"firmware.fleet_release = .*notes.txt"):
        locate("notes.txt", base=tmp_path, simulated=True, product_id=PRODUCT)


def test_a_project_folder_is_a_fleet_release_on_the_simulated_bench_only(tmp_path: Path) -> None:
    companion = REPO / "firmware" / "companion"
    assert locate(str(companion), base=tmp_path, simulated=True, product_id=PRODUCT) == companion.resolve()
    with pytest.raises(FleetReleaseError, match="a real bench flashes the Electron binary the fleet runs"):
        locate(str(companion), base=tmp_path, simulated=False, product_id=PRODUCT)
    (tmp_path / "bare" / "src").mkdir(parents=True)
    with pytest.raises(FleetReleaseError, match="does not run otarig's test agent"):
        locate("bare", base=tmp_path, simulated=True, product_id=PRODUCT)


def test_a_real_bench_takes_the_fleet_release_binary_from_its_bench_file(tmp_path: Path) -> None:
    (tmp_path / "field.bin").write_bytes(fw.build_module(b"v1.4", product_id=PRODUCT, product_version=14))
    bench = _bench(tmp_path, 'fleet_release = "field.bin"')
    cfg = config.load(bench)
    real = cfg.model_copy(update={"bench": cfg.bench.model_copy(update={"kind": "real"})})
    assert not real.simulated
    assert fleet_release_path(real, bench) == (tmp_path / "field.bin").resolve()
    unnamed = real.model_copy(update={"firmware": None})
    assert fleet_release_path(unnamed, bench) is None, "none named: the scenario is skipped, saying what to add"
    assert "fleet_release = " in NO_FLEET_RELEASE and "[firmware]" in NO_FLEET_RELEASE


def test_selftest_gives_each_mutant_the_unmutated_project_as_the_fleets_release(tmp_path: Path) -> None:
    """Every version a mutant's run builds is the mutant; the release in the field is not."""
    plain = _bench(tmp_path)
    engine = MutationEngine(plain, REPO / "hil", tmp_path / "st", project=None, seed=1, jobs=1, pinned=[])
    assert engine._fleet_release() == [f"--fleet-release={engine.base}"]
    (tmp_path / "field.bin").write_bytes(fw.build_module(b"v1.4", product_id=PRODUCT, product_version=14))
    named = _bench(tmp_path, 'fleet_release = "field.bin"')
    engine = MutationEngine(named, REPO / "hil", tmp_path / "st", project=None, seed=1, jobs=1, pinned=[])
    assert engine._fleet_release() == [], "the bench file's release in the field is kept"


def _upgrade(persisted_by: int, booted: int, last_seq: int) -> Timeline:
    """Version `persisted_by` shuts down with records 1..10 persisted; version `booted` boots with `last_seq`."""
    tl = Timeline()
    tl.add(0.0, BOARD, "state", {"product_version": persisted_by, "records": 0, "last_seq": 0})
    tl.add(10.0, BOARD, "app", {"action": "record", "seq": 10, "persisted": True})
    tl.add(20.0, BOARD, "guard", {"action": "shutdown_complete", "records": 10, "last_seq": 10})
    tl.add(30.0, BOARD, "hello", {"product_version": booted})
    tl.add(30.0, BOARD, "boot", {"records_recovered": min(last_seq, 10), "last_seq": last_seq})
    return tl


def test_a_candidate_that_reads_none_of_the_fleets_records_is_told_its_format_changed() -> None:
    lost = v.no_record_lost(_upgrade(2, 3, 0))
    assert not lost.passed
    assert "the records version 2 persisted (up to record 10) were not read by version 3" in lost.message
    assert "record format or checksum" in lost.message and "convert the old records" in lost.fix
    assert v.no_record_lost(_upgrade(2, 3, 10)).passed


def test_a_loss_without_a_version_change_or_a_partial_one_is_the_commits() -> None:
    for persisted_by, booted, last_seq in ((2, 2, 0), (2, 3, 5)):
        lost = v.no_record_lost(_upgrade(persisted_by, booted, last_seq))
        assert not lost.passed and "record 10 was acknowledged as persisted" in lost.message
        assert "record format" not in lost.message


class _Clock:
    """A bench clock that never moves: the rig only asks it the time here."""

    def now(self) -> float:
        return 0.0


def test_a_bench_without_a_fleet_release_says_what_to_add(tmp_path: Path) -> None:
    """A real bench without `fleet_release`: the scenario's call raises what the plugin turns into a
    skip ("needs the fleet's release: add `fleet_release = ...`"); with one, the build is recorded."""
    from otarig.fleet_release import NoFleetRelease, binary
    from otarig.interfaces import BenchParts
    from otarig.rig import Rig

    cfg = config.load(_bench(tmp_path))
    parts = BenchParts(clock=_Clock(), cloud=None, boards={}, firmware=None)  # type: ignore[arg-type]
    rig = Rig(cfg, parts, tmp_path, 1)
    with pytest.raises(NoFleetRelease, match=r"add `fleet_release = .*` to the \[firmware\] section"):
        rig.fleet_release(2)
    field = tmp_path / "field.bin"
    field.write_bytes(fw.build_module(b"v1.4", product_id=PRODUCT, product_version=14))
    parts.fleet_release = binary(field)
    build = rig.fleet_release(2)
    assert build.version == 2 and build.image == field.read_bytes() and rig.firmware_used == [build]
