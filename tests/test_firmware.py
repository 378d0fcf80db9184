"""otarig.firmware: module binaries built, parsed and validated; real Particle binaries read.

The real binaries are the tinker apps that ship inside particle-cli (tools/particle-cli); they are
cross-checked against the CLI's own ``particle binary inspect``.
"""

from __future__ import annotations

import json
import os
import random
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from otarig import firmware as fw
from otarig.particle_cli import DEFAULT_CLI_JS, ParticleCli

KNOWN_APPS = DEFAULT_CLI_JS.parents[1] / "assets" / "knownApps"
ELECTRON_TINKER = KNOWN_APPS / "electron" / "tinker" / "electron_tinker.bin"


def _require_cli() -> None:
    """Skip without the CLI locally; in CI (env CI set) a missing CLI is a failure."""
    if KNOWN_APPS.is_dir():
        return
    msg = f"particle-cli not installed ({KNOWN_APPS} missing): run `otarig tools install`"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def real_binaries() -> list[Path]:
    _require_cli()
    bins = sorted(KNOWN_APPS.glob("*/*/*.bin"))
    assert len(bins) >= 10, bins
    return bins


def _module(**kw: object) -> bytes:
    kw.setdefault("product_id", 1234)
    kw.setdefault("product_version", 7)
    return fw.build_module(b'{"build":"host-abc123"}', **kw)  # type: ignore[arg-type]


# -- build / parse round trip -----------------------------------------------------------------


def test_round_trip_defaults_are_an_electron_2_3_1_user_part() -> None:
    data = _module()
    info = fw.validate(data)
    assert info.platform_id == 10 and info.platform_name == "electron"
    assert info.module_function == 5 and info.module_function_name == "user-part"
    assert info.module_index == 1 and info.module_version == fw.USER_PART_MODULE_VERSION
    assert info.dependencies == (fw.Dependency(4, 2, fw.DEVICE_OS_2_3_1_MODULE_VERSION),)
    assert (info.product_id, info.product_version) == (1234, 7)
    assert info.start_address == 0x8080000
    assert info.end_address == 0x8080000 + len(data) - 4
    assert info.crc_ok and info.sha256_ok and info.suffix_size == 40
    assert info.size == len(data)
    assert fw.payload(data) == b'{"build":"host-abc123"}'


def test_padded_to_size_and_manifest_round_trip() -> None:
    manifest = {"build": "host-1f2e", "app_version": 3}
    data = fw.build_manifest_module(manifest, product_id=42, product_version=3, size=100 * 1024)
    assert len(data) == 100 * 1024
    assert fw.validate(data).product_version == 3
    assert fw.read_manifest(data) == manifest


def test_layout_offsets_match_module_info_h() -> None:
    data = _module(module_version=9, system_module_version=2302)
    start, end, _r, flags, ver, plat, func, idx = struct.unpack_from("<IIBBHHBB", data, 0)
    assert (ver, plat, func, idx, flags) == (9, 10, 5, 1, 0)
    assert struct.unpack_from("<BBHBBH", data, 16) == (4, 2, 2302, 0, 0, 0)
    assert struct.unpack_from("<HH", data, len(data) - 44) == (1234, 7)
    assert struct.unpack_from("<H", data, len(data) - 6) == (40,)
    # CRC-32 is stored big-endian and covers every byte before it.
    assert data[-4:] == struct.pack(">I", zlib.crc32(data[:-4]))


def test_build_rejects_impossible_requests() -> None:
    with pytest.raises(ValueError):
        fw.build_module(b"x" * 100, product_id=1, product_version=1, size=50)
    with pytest.raises(ValueError):
        fw.build_module(b"", product_id=70000, product_version=1)


# -- each failed check names itself ----------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 1, 10, 23, 24, 60, -1, -4, -40])
def test_truncated(cut: int) -> None:
    data = _module()
    short = data[:cut] if cut >= 0 else data[: len(data) + cut]
    with pytest.raises(fw.Truncated) as exc:
        fw.validate(short)
    assert str(exc.value).startswith("truncated:")


def test_wrong_platform_names_both_ids_and_names() -> None:
    data = _module(platform_id=12)
    with pytest.raises(fw.WrongPlatform) as exc:
        fw.validate(data)
    msg = str(exc.value)
    assert "12" in msg and "argon" in msg and "10" in msg and "electron" in msg
    assert (exc.value.found, exc.value.expected) == (12, 10)
    assert fw.validate(data, platform_id=12).platform_id == 12


@pytest.mark.parametrize("where", [0x30, 100, -5, -20, -4])
def test_flipped_byte_is_bad_crc(where: int) -> None:
    data = bytearray(_module(size=4096))
    data[where] ^= 0x40
    with pytest.raises(fw.BadCrc) as exc:
        fw.validate(bytes(data))
    err = exc.value
    assert err.stored != err.computed
    assert f"{err.stored:08x}" in str(err) and f"{err.computed:08x}" in str(err)


def test_too_large() -> None:
    data = _module(size=128 * 1024 + 4)
    with pytest.raises(fw.TooLarge) as exc:
        fw.validate(data)
    assert "131076" in str(exc.value) and "131072" in str(exc.value)
    assert fw.validate(_module(size=128 * 1024)).size == 128 * 1024
    # A bigger limit does not help an Electron image: it would overrun the 128 KB slot (docs/reference/particle-ota.md §2.6).
    with pytest.raises(fw.BadRange):
        fw.validate(data, max_size=256 * 1024)


def test_bad_range_for_electron_slot() -> None:
    with pytest.raises(fw.BadRange):
        fw.validate(_module(start_address=0x80A0000))


@pytest.mark.parametrize(
    "blob",
    [
        b"\x7fELF" + b"\x00" * 2000,
        b"not a module at all, just some text\n" * 40,
        random.Random(1).randbytes(4096),
        b"\xff" * 1024,
    ],
    ids=["elf", "text", "random", "erased-flash"],
)
def test_not_a_module(blob: bytes) -> None:
    with pytest.raises(fw.NotAModule):
        fw.validate(blob)


def test_trailing_bytes_are_not_a_module() -> None:
    with pytest.raises(fw.NotAModule):
        fw.parse(_module() + b"\x00" * 16)


def test_errors_share_a_base_class() -> None:
    for cls in (fw.Truncated, fw.WrongPlatform, fw.BadCrc, fw.TooLarge, fw.NotAModule, fw.BadRange):
        assert issubclass(cls, fw.FirmwareError)


# -- real Particle binaries ------------------------------------------------------------------


def test_real_binaries_parse_with_good_crc_and_sha() -> None:
    for path in real_binaries():
        info = fw.parse(path.read_bytes())
        assert info.crc_ok, path
        assert info.sha256_ok, path
        assert info.platform_name in path.parent.parent.name or path.parent.parent.name in (
            "core",
        ), (path, info.platform_name)


def test_real_electron_tinker_validates() -> None:
    _require_cli()
    info = fw.validate(ELECTRON_TINKER.read_bytes())
    assert (info.platform_id, info.module_function, info.module_index) == (10, 5, 1)
    assert info.start_address == 0x8080000
    assert info.dependencies[0].module_function == 4 and info.dependencies[0].module_index == 2


def test_real_argon_tinker_is_wrong_platform_for_electron() -> None:
    _require_cli()
    data = (KNOWN_APPS / "argon" / "tinker" / "tinker-0.8.0-rc.27-argon.bin").read_bytes()
    with pytest.raises(fw.WrongPlatform, match=r"12 \(argon\).*10 \(electron\)"):
        fw.validate(data)


def test_real_binary_corrupted_is_bad_crc() -> None:
    _require_cli()
    data = bytearray(ELECTRON_TINKER.read_bytes())
    data[1000] ^= 1
    with pytest.raises(fw.BadCrc):
        fw.validate(bytes(data))


def _cli_inspect(path: Path, tmp_path: Path) -> dict[str, str]:
    """Facts from ``particle binary inspect`` (binary-version-reader inside the CLI)."""
    cli = ParticleCli(tmp_path / "home", "http://127.0.0.1:9", "unused-token", timeout=60)
    out = cli.run("binary", "inspect", str(path)).output
    facts: dict[str, str] = {}
    for key, pattern in {
        "crc": r"CRC is ok \(([0-9a-f]{8})\)",
        "platform": r"Compiled for (\S+)",
        "module": r"number (\d+) at version (\d+)",
        "sha": r"UUID of ([0-9a-f]{64})",
        "product": r"product id (\d+) at version (\d+)",
        "dep": r"depends on a system module number (\d+) at version (\d+)",
    }.items():
        m = re.search(pattern, out)
        if m:
            facts[key] = ",".join(m.groups())
    return facts


def _our_facts(info: fw.ModuleInfo) -> dict[str, str]:
    facts = {
        "crc": f"{info.crc_stored:08x}",
        "platform": info.platform_name,
        "module": f"{info.module_index},{info.module_version}",
        "sha": info.sha256,
        "product": f"{info.product_id},{info.product_version}",
    }
    if info.dependencies:
        facts["dep"] = f"{info.dependencies[0].module_index},{info.dependencies[0].module_version}"
    return facts


@pytest.mark.parametrize(
    "rel",
    [
        "electron/tinker/electron_tinker.bin",
        "electron/tinker-usb-debugging/tinker-usb-debugging-0.6.0-electron.bin",
        "photon/tinker/tinker-0.4.5-photon.bin",
        "argon/tinker/tinker-0.8.0-rc.27-argon.bin",
        "p2/tinker/tinker-5.0.0-p2.bin",
        "core/tinker/core_tinker.bin",
    ],
)
def test_parse_agrees_with_particle_binary_inspect(rel: str, tmp_path: Path) -> None:
    _require_cli()
    path = KNOWN_APPS / rel
    assert _cli_inspect(path, tmp_path) == _our_facts(fw.parse(path.read_bytes()))


def test_particle_binary_inspect_accepts_our_modules(tmp_path: Path) -> None:
    _require_cli()
    path = tmp_path / "app.bin"
    path.write_bytes(fw.build_manifest_module({"build": "b1"}, product_id=4321, product_version=12, size=20000))
    facts = _cli_inspect(path, tmp_path)
    assert facts == _our_facts(fw.parse(path.read_bytes()))
    assert facts["platform"] == "electron" and facts["product"] == "4321,12"
    assert facts["dep"] == f"2,{fw.DEVICE_OS_2_3_1_MODULE_VERSION}"


# -- `otarig firmware inspect` ---------------------------------------------------------------


def _otarig(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otarig.cli", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "120"},
    )


def test_cli_inspect_real_binary_table() -> None:
    _require_cli()
    r = _otarig("firmware", "inspect", str(ELECTRON_TINKER))
    assert r.returncode == 0, r.stderr
    assert "electron" in r.stdout and "b3934494" in r.stdout and "user-part" in r.stdout


def test_cli_inspect_json_is_one_object() -> None:
    _require_cli()
    r = _otarig("firmware", "inspect", "--json", "--check", str(ELECTRON_TINKER))
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["platform_id"] == 10 and obj["crc_ok"] is True and obj["valid"] is True
    assert obj["crc_stored"] == "b3934494"


def test_cli_inspect_errors_are_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(random.Random(2).randbytes(1000))
    for args in (["firmware", "inspect", str(junk)], ["firmware", "inspect", str(tmp_path / "nope.bin")]):
        r = _otarig(*args)
        assert r.returncode != 0
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error:"), r.stderr


def test_cli_inspect_check_fails_on_wrong_platform(tmp_path: Path) -> None:
    path = tmp_path / "argon.bin"
    path.write_bytes(_module(platform_id=12))
    r = _otarig("firmware", "inspect", "--check", str(path))
    assert r.returncode == 1
    assert "wrong-platform" in r.stderr and "Traceback" not in r.stderr
