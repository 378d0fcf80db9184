"""A stand-in bench: the simulated world in its own process, described as a *real* bench file.

`otarig sim --bench-file PATH --speed S` writes a `kind = "real"` bench file naming the endpoints
the running world serves (board ptys, the tester's pty, the PSU's VISA resource on loopback, the
Cloud API URL and the variable holding its token) and a `[firmware]` catalog of host builds, with
`time_scale = S`. `otarig run --bench PATH` in another process then drives it with exactly the
drivers of a hardware bench — the proof of the real path without hardware (docs/real-bench.md,
"A stand-in bench"). The record marks such a run as a stand-in, never as hardware.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .build import build_companion
from .images import make_app_image

#: the catalog's images are the size the scenarios assume (a 100 KB app: 200 chunks of 512 B)
APP_SIZE = 100 * 1024
VERSIONS = (1, 2, 3)


def write_catalog(folder: Path, product: int, *, mutant: int = 0) -> dict[str, dict[int, str]]:
    """Host builds of the companion at versions 1-3, threaded and not, as module binaries (with the
    shipped defect `mutant`, to prove the suite catches it over the stand-in path too)."""
    folder.mkdir(parents=True, exist_ok=True)
    tables: dict[str, dict[int, str]] = {"versions": {}, "nonthreaded": {}}
    for threaded, table in ((True, "versions"), (False, "nonthreaded")):
        for v in VERSIONS:
            so = build_companion(v, threaded=threaded, product_id=product, mutant=mutant)
            path = folder / f"companion-v{v}{'' if threaded else '-nonthreaded'}.bin"
            path.write_bytes(make_app_image(so, product_id=product, product_version=v, size=APP_SIZE))
            tables[table][v] = str(path.resolve())
    return tables


#: the logical version the fleet's release is built at (what its hello reports; the scenario uploads it as 2)
FLEET_VERSION = 2


def write_fleet_release(folder: Path, product: int) -> str:
    """The fleet's release (otarig.fleet_release) for the stand-in's bench file: the companion
    without any defect, so a stand-in run with `--mutant N` upgrades from the good build as a
    fleet in the field would."""
    folder.mkdir(parents=True, exist_ok=True)
    so = build_companion(FLEET_VERSION, threaded=True, product_id=product)
    path = folder / "companion-fleet-release.bin"
    path.write_bytes(make_app_image(so, product_id=product, product_version=FLEET_VERSION, size=APP_SIZE))
    return str(path.resolve())


def _toml_str(s: str) -> str:
    return json.dumps(s)  # a TOML basic string is a JSON string for the characters used here


def bench_file_text(info: dict[str, Any], *, speed: float, token_env: str, catalog: dict[str, dict[int, str]],
                    link: str, fleet_release: str | None = None) -> str:
    """The bench file for the endpoints in `info` (as `start_sim` describes them)."""
    lines = [
        "# A stand-in bench written by `otarig sim --bench-file`: a simulated world in another process,",
        "# reached as a real bench over its channels. Not hardware: the record says stand_in = true.",
        "", "[bench]", f'name = "stand-in-{link}"', 'kind = "real"', "stand_in = true",
        f"time_scale = {speed:g}", "",
        "[cloud]", f"api_url = {_toml_str(info['api_url'])}", f"product_id = {info['product']}",
        f"token_env = {_toml_str(token_env)}", "",
        "[flasher]", 'method = "cloud"  # a stand-in has no USB: the baseline goes back by a cloud OTA', "",
        "[firmware]", "baseline = 1",
        *([f"fleet_release = {_toml_str(fleet_release)}  # what the fleet runs: the companion without defects"]
          if fleet_release else []), "", "[firmware.versions]",
        *[f"{v} = {_toml_str(p)}" for v, p in catalog["versions"].items()], "", "[firmware.nonthreaded]",
        *[f"{v} = {_toml_str(p)}" for v, p in catalog["nonthreaded"].items()], "",
    ]
    for i, b in enumerate(info["boards"]):
        lines += ["[[boards]]", f"id = {_toml_str(b['device_id'])}", 'platform = "electron"',
                  f'role = "{"dut" if i == 0 else "spare"}"', f"port = {_toml_str(b['port'])}", ""]
    caps = ["power_switch", "vbus_switch", "antenna_switch", "wake_pin", "mode_button"]
    lines += ["[bench_companion]", f"port = {_toml_str(info['bench_companion']['port'])}", "timeout_s = 5.0", ""]
    if "psu" in info:
        channel = info["psu_channels"][info["boards"][0]["device_id"]]
        lines += ["[psu]", f"resource = {_toml_str(info['psu'])}", 'model = "auto"', f"channel = {channel}",
                  "voltage = 5.0", "current_limit = 2.5", 'safe_state = "restore"', ""]
        caps.insert(0, "psu")
    lines += ["[capabilities]", *[f"{c} = true" for c in caps], ""]
    return "\n".join(lines)


def write_bench_file(path: Path, info: dict[str, Any], *, speed: float, token_env: str, link: str,
                     mutant: int = 0) -> Path:
    """Write the stand-in's bench file and its firmware catalog (beside it)."""
    folder = path.resolve().parent / f"{path.stem}-firmware"
    catalog = write_catalog(folder, int(info["product"]), mutant=mutant)
    fleet = write_fleet_release(folder, int(info["product"]))
    path.write_text(bench_file_text(info, speed=speed, token_env=token_env, catalog=catalog, link=link,
                                    fleet_release=fleet))
    return path
