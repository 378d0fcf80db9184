"""`otarig doctor`: each check ok or its fix, over real channels where they run here.

The real-bench checks run against a stand-in (`otarig sim --bench-file` in its own process): the
PSU's `*IDN?` over PyVISA on its SCPI port, the token over the Cloud API on loopback HTTP, the
boards' ptys. What needs USB (there is none here) runs on fake pyserial port lists and a fake sysfs
tree, and says so in the test's name. The token must never reach stdout or stderr.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml  # PyYAML comes with pyvisa-sim (the test extra)

from otarig import doctor
from otarig.config import BenchConfig

REPO = Path(__file__).resolve().parents[1]
OTARIG = [sys.executable, "-m", "otarig.cli"]
TOKEN_ENV = "OTARIG_STANDIN_TOKEN"


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """`otarig sim --speed 20 --bench-file …` in its own process; yields (bench file, environment)."""
    tmp = tmp_path_factory.mktemp("doctor-standin")
    env = {**os.environ, TOKEN_ENV: secrets.token_hex(20)}
    env.pop("LG_COORDINATOR", None)
    bench = tmp / "bench-standin.toml"
    proc = subprocess.Popen([*OTARIG, "sim", "--json", "--speed", "20", "--bench-file", str(bench)],
                            cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline() if proc.stdout else ""  # printed once the bench file is written
        if not first:
            pytest.fail(f"otarig sim did not start: {proc.stderr.read() if proc.stderr else ''}")
        yield bench, env
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _doctor(bench: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OTARIG, "doctor", "--bench", str(bench), *extra], check=False, env=env, cwd=bench.parent,
                          capture_output=True, text=True, timeout=180)


def _checks(done: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    report = json.loads(done.stdout)
    return {c["name"]: c for c in report["checks"]}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_doctor_on_the_stand_in_reports_psu_token_and_ports_and_never_prints_the_token(
        standin: tuple[Path, dict[str, str]]) -> None:
    from otarig.config import load

    bench, env = standin
    cfg = load(bench)
    token = env[TOKEN_ENV]
    done = _doctor(bench, env, "--json")
    assert token not in done.stdout and token not in done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["kind"] == "stand-in" and report["ok"] is True
    checks = _checks(done)
    psu = checks["PSU"]
    assert psu["ok"] and cfg.psu is not None and cfg.psu.resource in psu["detail"] and "E36312A" in psu["detail"]
    assert checks["cloud token"]["ok"] and f"${TOKEN_ENV}" in checks["cloud token"]["detail"]
    assert checks["product"]["ok"] and str(cfg.cloud.product_id) in checks["product"]["detail"]
    board = checks[f"board {cfg.boards[0].id} ({cfg.boards[0].role})"]
    assert board["ok"] and cfg.boards[0].port in board["detail"] and "/dev/pts/" in board["detail"]
    assert checks["tester board"]["ok"] and "/dev/pts/" in checks["tester board"]["detail"]
    assert checks["port permissions"]["ok"]
    assert "stand-in" in checks["udev rules"]["detail"]  # a stand-in's boards are ptys: not needed
    assert checks["particle CLI"]["ok"] and "3.51.0" in checks["particle CLI"]["detail"]
    # the table a person reads: the same lines, no token either
    table = _doctor(bench, env)
    assert table.returncode == 0
    assert token not in table.stdout and token not in table.stderr
    assert "every check is ok" in table.stdout and "PSU" in table.stdout and "cloud token" in table.stdout


def test_doctor_with_a_wrong_token_fails_that_line_with_the_fix(standin: tuple[Path, dict[str, str]]) -> None:
    bench, env = standin
    wrong = secrets.token_hex(20)
    done = _doctor(bench, {**env, TOKEN_ENV: wrong}, "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    for token in (wrong, env[TOKEN_ENV]):
        assert token not in done.stdout and token not in done.stderr
    checks = _checks(done)
    line = checks["cloud token"]
    assert not line["ok"] and "401" in line["detail"]
    assert f"${TOKEN_ENV}" in line["fix"] and "particle token create" in line["fix"]
    assert checks["PSU"]["ok"], "only the token's line fails"
    table = _doctor(bench, {**env, TOKEN_ENV: wrong})
    assert table.returncode == 1 and "FAIL" in table.stdout and "fix:" in table.stdout
    assert wrong not in table.stdout + table.stderr


def test_doctor_with_the_token_variable_unset_says_which_to_set() -> None:
    line = doctor.check_cloud("http://127.0.0.1:9", TOKEN_ENV, 4242, {}, 2.0)[0]
    assert not line.ok and f"${TOKEN_ENV} is not set" in line.detail and f"export {TOKEN_ENV}=" in line.fix


def test_doctor_with_the_psu_on_a_closed_port_fails_with_the_fix(standin: tuple[Path, dict[str, str]]) -> None:
    bench, env = standin
    resource = f"TCPIP::127.0.0.1::{_closed_port()}::SOCKET"
    text = bench.read_text()
    from otarig.config import load

    moved = bench.with_name("bench-closed-psu.toml")
    moved.write_text(text.replace(load(bench).psu.resource, resource))  # type: ignore[union-attr]
    done = _doctor(moved, env, "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    psu = _checks(done)["PSU"]
    assert not psu["ok"] and resource in psu["detail"] and "*IDN?" in psu["detail"]
    assert "[psu] resource" in psu["fix"] and "switch the supply on" in psu["fix"]
    assert env[TOKEN_ENV] not in done.stdout + done.stderr


def test_psu_check_is_bounded_when_the_port_accepts_but_never_answers() -> None:
    """A listener that never replies: the check gives up within its timeout and says so."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        line = doctor.check_psu(f"TCPIP::127.0.0.1::{port}::SOCKET", 1, 0.5)
    assert not line.ok and "within 0.5 s" in line.detail and "[psu] resource" in line.fix


# -- USB, udev, groups, ModemManager: fake port lists and sysfs (no USB here) ---------------------------

ID_SERIAL = "e00fce680000000000000001"
ID_DFU = "e00fce680000000000000002"
ID_ABSENT = "e00fce680000000000000003"


def _real_bench(tmp: Path, tester_port: str) -> BenchConfig:
    return BenchConfig.model_validate({
        "bench": {"name": "lab-bench-3", "kind": "real"},
        "cloud": {"api_url": "https://api.particle.io", "product_id": 12345},
        "firmware": {"baseline": 1, "versions": {1: str(tmp / "v1.bin")}},
        "boards": [{"id": ID_SERIAL}, {"id": ID_DFU, "role": "spare"}, {"id": ID_ABSENT, "role": "spare"}],
        "bench_companion": {"port": tester_port},
    })


@pytest.fixture()
def fake_usb(tmp_path: Path) -> SimpleNamespace:
    """A tty for one Electron (with its by-id link) and one Pico, a DFU Electron in sysfs."""
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "ttyACM0").write_text("")
    (dev / "ttyACM1").write_text("")
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    link = by_id / f"usb-Particle_Electron_{ID_SERIAL}-if00"
    link.symlink_to(dev / "ttyACM0")
    ports = [SimpleNamespace(device=str(dev / "ttyACM0"), vid=0x2B04, pid=0xC00A, serial_number=ID_SERIAL),
             SimpleNamespace(device=str(dev / "ttyACM1"), vid=0x2E8A, pid=0x0005, serial_number="e6614c311b7e5a2f"),
             SimpleNamespace(device="/dev/ttyS0", vid=None, pid=None, serial_number=None)]
    sysfs = tmp_path / "sys"
    usb = sysfs / "1-2"
    usb.mkdir(parents=True)
    (usb / "idVendor").write_text("2b04\n")
    (usb / "idProduct").write_text("d00a\n")
    (usb / "serial").write_text(ID_DFU + "\n")
    udev = tmp_path / "rules.d"
    udev.mkdir()
    return SimpleNamespace(ports=ports, sysfs=sysfs, by_id=by_id, udev=udev, link=str(link),
                           tester=str(dev / "ttyACM1"), missing_tester=str(dev / "ttyACM9"))


def _host(fake: SimpleNamespace, *, mm: str = "not running", uid: int = 1000,
          groups: tuple[str, ...] = ("users",)) -> doctor.Host:
    return doctor.Host(ports=fake.ports, sysfs=fake.sysfs, by_id=fake.by_id, udev_dirs=[fake.udev],
                       env={}, modemmanager=lambda: mm, uid=uid, groups=list(groups))


def test_usb_discovery_on_a_fake_port_list_finds_boards_by_device_id_no_usb_here(
        tmp_path: Path, fake_usb: SimpleNamespace) -> None:
    cfg = _real_bench(tmp_path, fake_usb.tester)
    checks = {c.name: c for c in doctor._host_usb_checks(cfg, _host(fake_usb, groups=("dialout",)), stand_in=False)}
    usb = checks["USB devices"]
    assert usb.ok and ID_SERIAL in usb.detail and "2b04:c00a serial" in usb.detail and fake_usb.link in usb.detail
    assert ID_DFU in usb.detail and "2b04:d00a dfu" in usb.detail and "tester board" in usb.detail
    found = checks[f"board {ID_SERIAL} (dut)"]
    assert found.ok and found.detail.endswith(fake_usb.link)  # the stable by-id link, not the tty
    dfu = checks[f"board {ID_DFU} (spare)"]
    assert not dfu.ok and "DFU mode" in dfu.detail and "particle usb reset" in dfu.fix
    absent = checks[f"board {ID_ABSENT} (spare)"]
    assert not absent.ok and "not on USB" in absent.detail and ID_SERIAL in absent.detail
    assert "cable" in absent.fix and "/dev/serial/by-id" in absent.fix
    assert checks["tester board"].ok and fake_usb.tester in checks["tester board"].detail
    assert checks["groups"].ok and "dialout" in checks["groups"].detail


def test_tester_board_missing_at_its_port_but_on_usb_names_the_port_no_usb_here(
        tmp_path: Path, fake_usb: SimpleNamespace) -> None:
    cfg = _real_bench(tmp_path, fake_usb.missing_tester)
    tester = next(c for c in doctor._host_usb_checks(cfg, _host(fake_usb), stand_in=False) if c.name == "tester board")
    assert not tester.ok and fake_usb.missing_tester in tester.detail and fake_usb.tester in tester.detail
    assert "[bench_companion] port" in tester.fix


def test_no_particle_device_on_usb_fails_with_the_fix_no_usb_here() -> None:
    line = doctor.check_usb([], [], [])
    assert not line.ok and "no Particle device" in line.detail and "carries data" in line.fix


def test_udev_groups_and_modemmanager_each_give_the_fix_from_real_bench_doc(
        tmp_path: Path, fake_usb: SimpleNamespace) -> None:
    cfg = _real_bench(tmp_path, fake_usb.tester)
    checks = {c.name: c for c in doctor._host_usb_checks(cfg, _host(fake_usb, mm="active"), stand_in=False)}
    assert not checks["udev rules"].ok and "50-particle.rules" in checks["udev rules"].fix
    assert 'ATTRS{idVendor}=="2b04"' in checks["udev rules"].fix and "udevadm trigger" in checks["udev rules"].fix
    assert not checks["groups"].ok and "usermod -aG plugdev,dialout" in checks["groups"].fix
    mm = checks["ModemManager"]
    assert not mm.ok and "2b04" in mm.detail and "ID_MM_DEVICE_IGNORE" in mm.fix and "systemctl disable" in mm.fix
    # the rule file of docs/real-bench.md §3 puts all three right (as far as this host can tell)
    (fake_usb.udev / "50-particle.rules").write_text(doctor.UDEV_RULE + "\n")
    again = {c.name: c for c in doctor._host_usb_checks(cfg, _host(fake_usb, mm="active", groups=("plugdev",)),
                                                         stand_in=False)}
    assert again["udev rules"].ok and "50-particle.rules" in again["udev rules"].detail
    assert again["ModemManager"].ok and "told to ignore" in again["ModemManager"].detail
    assert again["groups"].ok
    # a rule that only grants access: ModemManager still probes the port
    (fake_usb.udev / "50-particle.rules").write_text('SUBSYSTEM=="tty", ATTRS{idVendor}=="2b04", MODE="0666"\n')
    mm = doctor.check_modemmanager("active", [fake_usb.udev])
    assert not mm.ok and "2b04 and 2e8a" in mm.detail
    assert doctor.check_modemmanager("inactive", [fake_usb.udev]).ok
    assert doctor.check_groups(0, []).ok  # root opens any port


def test_a_port_the_user_cannot_open_fails_with_the_fix(tmp_path: Path) -> None:
    """os.access asks with the real uid; as root, the real uid is nobody's for the check's duration."""
    port = tmp_path / "ttyACM0"
    port.write_text("")
    port.chmod(0o600 if os.geteuid() == 0 else 0)
    if os.geteuid() == 0:
        os.setreuid(65534, 0)  # real uid nobody, effective root (so it can be put back)
        try:
            line = doctor.check_port_access([str(port)], 65534)
        finally:
            os.setreuid(0, 0)
    else:
        line = doctor.check_port_access([str(port)], os.getuid())
    assert not line.ok and str(port) in line.detail and "usermod" in line.fix and "50-particle.rules" in line.fix


# -- labgrid, the simulated bench, the command ---------------------------------------------------------


def test_labgrid_client_named_or_installed(tmp_path: Path) -> None:
    missing = doctor.check_labgrid_client({"OTARIG_LABGRID_CLIENT": str(tmp_path / "labgrid-client")})
    assert not missing.ok and "point it at labgrid-client" in missing.fix
    client = tmp_path / "labgrid-client"
    client.write_text("#!/bin/sh\n")
    client.chmod(0o755)
    assert doctor.check_labgrid_client({"OTARIG_LABGRID_CLIENT": str(client)}).ok


def test_labgrid_coordinator_reachability_over_tcp() -> None:
    assert doctor.check_labgrid({}, 1.0).ok
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        up = doctor.check_labgrid({"LG_COORDINATOR": f"127.0.0.1:{port}"}, 1.0)
    assert up.ok and f"127.0.0.1:{port} reachable" in up.detail
    down = doctor.check_labgrid({"LG_COORDINATOR": f"127.0.0.1:{_closed_port()}"}, 1.0)
    assert not down.ok and "labgrid-coordinator" in down.fix


def test_doctor_on_the_simulated_bench_checks_gpp_the_host_build_and_the_cli() -> None:
    report = doctor.run(REPO / "bench_config.toml", doctor.Host(env={**os.environ}))
    names = [c.name for c in report.checks]
    assert report.kind == "simulated" and report.ok, report.to_dict()
    assert names[:3] == ["bench file", "C++ compiler", "host build"]
    assert "particle CLI" in names and names[-1] == "simulated bench"
    assert not {"PSU", "cloud token", "udev rules", "USB devices"} & set(names)


def test_doctor_without_a_bench_file_says_how_to_make_one(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from otarig.cli import main

    rc = main(["doctor", "--bench", str(tmp_path / "bench_config.toml"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and out["ok"] is False and out["kind"] == "unknown"
    first = out["checks"][0]
    assert first["name"] == "bench file" and not first["ok"] and "otarig init" in first["fix"]


def test_no_text_leaving_the_doctor_carries_the_token() -> None:
    token = secrets.token_hex(20)
    line = doctor.Check("cloud token", False, f"refused {token}", f"replace {token}").redacted([token])
    assert token not in line.detail + line.fix and doctor.REDACTED in line.detail


# -- the CI workflow ------------------------------------------------------------------------------------


def test_the_hil_workflow_parses_and_does_what_docs_say() -> None:
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "hil.yml").read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert "pull_request" in on and on["workflow_dispatch"]["inputs"]["long"]["type"] == "boolean"
    sim, bench = wf["jobs"]["simulated"], wf["jobs"]["bench"]
    assert sim["runs-on"] == "ubuntu-latest"
    assert any(s.get("run") == ".ci/run" for s in sim["steps"])
    labels = bench["runs-on"]
    assert labels[:2] == ["self-hosted", "linux"] and "particle-electron" in labels[2]
    assert "pull_request" in bench["if"]  # never for a pull request
    assert "particle-electron" in bench["concurrency"]["group"] and bench["concurrency"]["cancel-in-progress"] is False
    assert "inputs.long" in str(bench["timeout-minutes"])
    runs = "\n".join(s.get("run", "") for s in bench["steps"])
    assert "pip install -e ." in runs and "otarig tools install" in runs
    assert 'otarig doctor --bench "$OTARIG_BENCH"' in runs and 'exec .venv/bin/otarig run "${args[@]}"' in runs
    assert "--long" in runs and 'export "$OTARIG_TOKEN_ENV=$OTARIG_CI_TOKEN"' in runs
    names = [s.get("name", s.get("uses", "")) for s in bench["steps"]]
    assert names.index("otarig doctor (fail fast)") < names.index("otarig run")
    upload = next(s for s in bench["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "otarig-report/"
    safe = next(s for s in bench["steps"] if "bench safe" in s.get("run", ""))
    assert safe["if"].startswith("always()")
    secret_steps = [s for s in bench["steps"] if "secrets." in json.dumps(s)]
    assert secret_steps and all(s["env"]["OTARIG_CI_TOKEN"] == "${{ secrets.PARTICLE_ACCESS_TOKEN }}"
                                for s in secret_steps)


def test_a_token_pasted_into_the_bench_file_is_refused_and_not_shown(tmp_path: Path) -> None:
    token = secrets.token_hex(20)
    bench = tmp_path / "lab.toml"
    bench.write_text(f'[bench]\nkind = "real"\n[cloud]\napi_url = "https://api.particle.io"\ntoken_env = "{token}"\n'
                     '[[boards]]\nid = "e00fce680000000000000001"\n')
    report = doctor.run(bench, doctor.Host(ports=[], sysfs=tmp_path, udev_dirs=[], env={}, modemmanager=lambda: "x"))
    first = report.checks[0]
    assert not report.ok and first.name == "bench file" and not first.ok
    assert "looks like an access token" in first.detail and token not in json.dumps(report.to_dict())


def test_a_board_port_missing_now_is_a_doctor_line_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "v1.bin").write_bytes(b"")
    bench = tmp_path / "lab.toml"
    gone = str(tmp_path / "ttyACM7")
    bench.write_text('[bench]\nkind = "real"\n[cloud]\napi_url = "http://127.0.0.1:9"\n'
                     '[firmware]\nbaseline = 1\n[firmware.versions]\n1 = "v1.bin"\n'
                     f'[[boards]]\nid = "e00fce680000000000000001"\nport = "{gone}"\n')
    report = doctor.run(bench, doctor.Host(ports=[], sysfs=tmp_path, udev_dirs=[], env={}, modemmanager=lambda: "x",
                                           timeout_s=1.0))
    checks = {c.name: c for c in report.checks}
    assert report.kind == "real" and checks["bench file"].ok
    board = checks["board e00fce680000000000000001 (dut)"]
    assert not board.ok and gone in board.detail and "plug it in" in board.fix
    assert not checks["cloud token"].ok and "PARTICLE_ACCESS_TOKEN is not set" in checks["cloud token"].detail
