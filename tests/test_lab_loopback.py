"""The loopback lab: a labgrid coordinator, an exporter (which runs ser2net for each serial port)
and a stand-in bench (`otarig sim`), all on 127.0.0.1. `otarig run --place` acquires the place,
runs a short scenario through it and releases it; a second client is refused while it is held;
SIGTERM and a bad place still release it; the cloud token never reaches the coordinator.

Needs labgrid in its own venv (`otarig tools install labgrid`) and ser2net (`apt-get install
ser2net`); .ci/run installs both (in CI their absence fails, elsewhere it skips:
conftest.labgrid_bin). The stand-in and labgrid are other processes paced to wall time, so the
waits here are bounded waits on those processes (docs/lab.md §5).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from otarig.lab import LabgridClient

OTARIG = [sys.executable, "-m", "otarig.cli"]
SPEED = 20
PLACE = "otarig-lab-1"
CAPABILITIES = "psu,power_switch,vbus_switch,antenna_switch,wake_pin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def _wait(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll another process's state (wall time: labgrid and the stand-in run in real time)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


@dataclass
class Lab:
    tmp: Path
    bench: Path
    env: dict[str, str]  # otarig's: LG_COORDINATOR and the stand-in's token
    token: str
    device_id: str
    client: LabgridClient
    logs: list[Path]

    def show(self, place: str = PLACE):
        return self.client.show(place)

    def otarig_run(self, report: str, *args: str) -> subprocess.Popen:
        return subprocess.Popen([*OTARIG, "run", "--bench", str(self.bench), "--report", str(self.tmp / report),
                                 *args], cwd=self.tmp, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def _start(procs: list[subprocess.Popen], cmd: list[str], log: Path, cwd: Path, env: dict[str, str]) -> None:
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        procs.append(subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, labgrid_bin: Path) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("lab")
    token = secrets.token_hex(20)
    env = {**os.environ, "OTARIG_STANDIN_TOKEN": token}
    procs: list[subprocess.Popen] = []
    # labgrid's exporter exports only /dev/ paths: the boards' links go in /dev/shm (any user may write there)
    links = Path("/dev/shm") / f"otarig-lab-{uuid.uuid4().hex[:8]}"
    try:
        bench = tmp / "bench-standin.toml"
        with open(tmp / "sim.log", "w") as err:
            sim = subprocess.Popen([*OTARIG, "sim", "--json", "--speed", str(SPEED), "--bench-file", str(bench)],
                                   cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        procs.append(sim)
        first = sim.stdout.readline() if sim.stdout else ""
        if not first:
            pytest.fail(f"otarig sim did not start: {(tmp / 'sim.log').read_text()[-2000:]}")
        info = json.loads(first)
        links.mkdir()
        (links / "dut").symlink_to(info["boards"][0]["port"])
        (links / "tester").symlink_to(info["bench_companion"]["port"])
        visa_type, visa_url = info["psu"].split("::", 1)
        (tmp / "exporter.yaml").write_text(
            "otarig-bench:\n"
            f"  dut: {{cls: RawSerialPort, port: {links / 'dut'}, speed: 115200}}\n"
            f"  tester: {{cls: RawSerialPort, port: {links / 'tester'}, speed: 115200}}\n"
            f"  psu: {{cls: PyVISADevice, type: {visa_type}, url: '{visa_url}'}}\n")
        coordinator = f"127.0.0.1:{_free_port()}"
        lg_env = {k: v for k, v in os.environ.items() if "TOKEN" not in k}  # labgrid's own processes: no token
        _start(procs, [str(labgrid_bin / "labgrid-coordinator"), "-l", coordinator], tmp / "coordinator.log", tmp, lg_env)
        host, port = coordinator.split(":")
        _wait("the coordinator to listen", lambda: _listening(host, int(port)))  # the exporter does not retry
        _start(procs, [str(labgrid_bin / "labgrid-exporter"), "-c", coordinator, "--hostname", "127.0.0.1",
                       "-n", "otarig-exporter", str(tmp / "exporter.yaml")], tmp / "exporter.log", tmp, lg_env)
        env["LG_COORDINATOR"] = coordinator
        client = LabgridClient(env=env)

        def exported() -> bool:
            try:
                return "otarig-exporter/otarig-bench/NetworkSerialPort" in subprocess.run(
                    [client.executable, "resources"], check=False, env=client.env, capture_output=True, text=True,
                    timeout=30).stdout
            except subprocess.TimeoutExpired:
                return False

        _wait("the exporter's resources at the coordinator", exported)
        device_id = info["boards"][0]["device_id"]
        client.run(PLACE, "create")
        client.run(PLACE, "add-match", "otarig-exporter/otarig-bench/*")
        client.run(PLACE, "set-tags", f"device_id={device_id}", f"product={info['product']}",
                   f"capabilities={CAPABILITIES}")
        yield Lab(tmp, bench, env, token, device_id, client,
                  [tmp / "coordinator.log", tmp / "exporter.log"])
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(links, ignore_errors=True)


def _wait_acquired(lab: Lab, run: subprocess.Popen) -> None:
    def held() -> bool:
        if run.poll() is not None:
            pytest.fail(f"otarig run ended (exit {run.returncode}) before the place was held: {run.stderr.read()}")
        place = lab.show()
        return place.acquired is not None and bool(place.resources)  # resources are attached just after

    _wait(f"otarig run to acquire {PLACE}", held)


def test_a_run_on_the_place_holds_it_refuses_others_and_releases_it(lab: Lab, capsys: pytest.CaptureFixture) -> None:
    t0 = time.monotonic()
    run = lab.otarig_run("report", "--place", PLACE, "-k", "lock_and_flash")
    _wait_acquired(lab, run)
    held = lab.show()
    assert held.resources["dut"].params["port"], "the exporter serves the held DUT port with ser2net"
    second = subprocess.run([lab.client.executable, "-p", PLACE, "acquire"], check=False, capture_output=True, text=True,
                            env={**lab.client.env, "LG_USERNAME": "second-client"}, timeout=60)
    assert second.returncode != 0 and "already acquired" in second.stderr
    other = subprocess.run([*OTARIG, "run", "--bench", str(lab.bench), "--place", PLACE, "--report",
                            str(lab.tmp / "report-2")], check=False, capture_output=True, text=True, env=lab.env, timeout=120)
    assert other.returncode == 1 and "already acquired" in other.stderr, other.stderr
    out, err = run.communicate(timeout=600)
    wall = time.monotonic() - t0
    assert run.returncode == 0, f"{out[-3000:]}\n{err[-2000:]}"
    record = json.loads((lab.tmp / "report" / "certification.json").read_text())
    place = record["bench"]["place"]
    assert place["place"] == PLACE and place["coordinator"] == lab.env["LG_COORDINATOR"]
    assert place["resources"]["dut"] == "otarig-exporter/otarig-bench/NetworkSerialPort/dut"
    assert [b["id"] for b in record["boards"]] == [lab.device_id]
    assert record["passed"] and record["bench"]["stand_in"]
    # the boot after the OTA's reset arrived whole over the place's port: the new version's hello
    log = (lab.tmp / "report" / "tests").rglob(f"serial-{lab.device_id}.log")
    assert any('"product_version":2' in p.read_text().replace(" ", "") for p in log)
    assert lab.show().acquired is None, "released after the run"
    for f in [*lab.logs, *lab.tmp.glob("*.yaml")]:
        assert lab.token not in f.read_text(), f"the token reached {f.name}"
    with capsys.disabled():  # the wall time, in the CI log
        print(f"\nloopback lab: acquire, lock_and_flash at x{SPEED}, release: {wall:.1f} s of wall time")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_during_the_run_still_releases_the_place(lab: Lab, sig: signal.Signals) -> None:
    report = f"report-{sig.name}"
    run = lab.otarig_run(report, "--place", PLACE, "-k", "forced_update")
    _wait_acquired(lab, run)
    _wait("the first scenario to start", lambda: any((lab.tmp / report / "tests").glob("*/")), 120)
    run.send_signal(sig)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 128 + sig, f"{out[-2000:]}\n{err[-3000:]}"  # -2: a KeyboardInterrupt escaped
    assert lab.show().acquired is None
    record = json.loads((lab.tmp / report / "certification.json").read_text())
    assert record["interrupted_by"] == sig.name and record["bench"]["place"]["place"] == PLACE


def test_a_place_that_cannot_be_a_bench_is_released_with_the_reason(lab: Lab) -> None:
    lab.client.run(PLACE, "set-tags", "capabilities=psu,warp_drive")
    try:
        bad = subprocess.run([*OTARIG, "run", "--bench", str(lab.bench), "--place", PLACE, "--report",
                              str(lab.tmp / "report-bad")], check=False, capture_output=True, text=True, env=lab.env, timeout=120)
    finally:
        lab.client.run(PLACE, "set-tags", f"capabilities={CAPABILITIES}")
    assert bad.returncode == 1 and "warp_drive" in bad.stderr and "known:" in bad.stderr
    assert lab.show().acquired is None
