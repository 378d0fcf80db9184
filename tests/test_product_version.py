"""The product version a firmware image carries comes from the firmware's own PRODUCT_VERSION(x).

On Device OS the macro is what puts the version in the module (docs/reference/particle-ota.md §4.2),
and the cloud takes a binary as product firmware only when the `version` typed at upload matches it
(docs/reference/particle-cloud-api.md §5). These tests build a project with and without the macro
for the host, and upload over real HTTP to the simulated cloud, through the rig's own client.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from otarig import firmware
from otarig.cloud import CloudError, ParticleCloud
from otarig.cloud_access import ApiCloudAccess, NoProductVersion
from otarig.sim.bench import SimBench
from otarig.sim.build import build_firmware, companion_project, declared_product_version
from otarig.sim.cloud_http import CloudHttpServer
from otarig.sim.firmware_source import SimFirmwareSource
from otarig.sim.images import NO_PRODUCT_VERSION

PRODUCT = 4242
DID = "e00fce680000000000000001"


@pytest.fixture(scope="module")
def without_macro(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The device companion with its PRODUCT_VERSION(...) line taken out (a team that forgot it)."""
    project = tmp_path_factory.mktemp("fw") / "forgot-product-version"
    shutil.copytree(companion_project(), project)
    for src in (project / "src").glob("*.cpp"):
        src.write_text(re.sub(r"^\s*PRODUCT_VERSION\(.*$", "", src.read_text(), flags=re.MULTILINE))
    return project


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[SimBench, ParticleCloud]]:
    bench = SimBench(seed=3, workdir=tmp_path / "world")
    bench.cloud.add_product(PRODUCT)
    server = CloudHttpServer(bench)
    server.start()
    try:
        yield bench, ParticleCloud(server.url, server.token, product=PRODUCT, backoff=0.01)
    finally:
        server.stop()
        bench.close()


def test_the_image_carries_the_version_the_build_declares() -> None:
    # the rig's -DOTARIG_PRODUCT_VERSION reaches the module through the source's PRODUCT_VERSION(x)
    assert declared_product_version(build_firmware(2)) == 2
    build = SimFirmwareSource(PRODUCT).build(3)
    assert firmware.parse(build.image).product_version == 3
    assert "PRODUCT_VERSION" not in build.label


def test_a_firmware_without_the_macro_carries_no_version(without_macro: Path) -> None:
    assert declared_product_version(build_firmware(2, project=without_macro)) is None
    build = SimFirmwareSource(PRODUCT, project=without_macro).build(2)
    assert firmware.parse(build.image).product_version == NO_PRODUCT_VERSION
    # the label names the file the macro goes in, for the message that says what to change
    assert str(without_macro.resolve() / "src" / "companion.cpp") in build.label


def test_the_cloud_refuses_a_binary_without_product_version(
        cloud: tuple[SimBench, ParticleCloud], without_macro: Path) -> None:
    _, client = cloud
    image = SimFirmwareSource(PRODUCT, project=without_macro).build(2).image
    with pytest.raises(CloudError) as refused:
        client.upload_firmware(2, image)
    assert refused.value.status == 400
    assert "no PRODUCT_VERSION" in str(refused.value)
    assert client.list_firmware() == []


def test_the_cloud_refuses_a_version_other_than_the_binarys(cloud: tuple[SimBench, ParticleCloud]) -> None:
    _, client = cloud
    image = SimFirmwareSource(PRODUCT).build(2).image
    with pytest.raises(CloudError) as refused:
        client.upload_firmware(3, image)
    assert refused.value.status == 400
    assert "does not match the binary's PRODUCT_VERSION 2" in str(refused.value)
    assert client.upload_firmware(2, image)["version"] == 2


def test_the_rigs_upload_names_the_cause_and_the_fix(
        cloud: tuple[SimBench, ParticleCloud], without_macro: Path) -> None:
    _, client = cloud
    access = ApiCloudAccess(client, PRODUCT, clock=None, group="otarig-bench")  # type: ignore[arg-type]
    build = SimFirmwareSource(PRODUCT, project=without_macro).build(1)
    # not rewritten to this run's product version: the rig does not make up a version the app lacks
    assert access.prepare(build.image, 1) == build.image
    with pytest.raises(NoProductVersion) as refused:
        access.upload(1, build.image, build.label)
    message = str(refused.value)
    assert refused.value.status == 400
    assert "add PRODUCT_VERSION(x) to your app's source" in message
    assert str(without_macro.resolve() / "src" / "companion.cpp") in message
    # a firmware that declares it is taken, under this run's product version
    access.upload(1, SimFirmwareSource(PRODUCT).build(1).image, "companion v1")
    assert [f["version"] for f in client.list_firmware()] == [1]


def test_hello_reports_only_the_version_the_module_carries(tmp_path: Path, without_macro: Path) -> None:
    bench = SimBench(seed=3, workdir=tmp_path / "world")
    try:
        image = SimFirmwareSource(PRODUCT, project=without_macro).build(2).image
        bench.add_electron(DID, product_id=PRODUCT, image=image)
        board = bench.open_board(DID, tmp_path / "board.log")
        try:
            hello = board.expect(lambda e: e.name == "hello", 120)
            assert hello.get("product_version") == NO_PRODUCT_VERSION
        finally:
            board.close()
    finally:
        bench.close()


def test_a_run_on_a_firmware_without_the_macro_stops_at_the_first_upload_saying_what_to_add(
        tmp_path: Path, without_macro: Path) -> None:
    """`otarig run --firmware DIR`: the first scenario's baseline upload is refused, and the run
    stops there with one line naming the cause, the file and the fix; nothing passes."""
    done = subprocess.run([sys.executable, "-m", "otarig.cli", "run", "--firmware", str(without_macro),
                           "--report", str(tmp_path / "r")],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 1
    out = " ".join(done.stdout.split())
    assert "NoProductVersion: the cloud refused" in out
    assert "add PRODUCT_VERSION(x) to your app's source" in out
    assert str(without_macro.resolve() / "src" / "companion.cpp") in out
    record = json.loads((tmp_path / "r" / "certification.json").read_text())
    assert record["passed"] is False
    assert [r["outcome"] for r in record["results"]] == ["error"]
