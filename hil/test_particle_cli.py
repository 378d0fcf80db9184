"""The lab engineer's own tool: a cloud OTA started with the real `particle` CLI."""
from __future__ import annotations

import pytest

from otarig import verdicts as v
from otarig.particle_cli import ParticleCli
from otarig.rig import Rig

from conftest import APP_SIZE, connected, ota_verdicts, park


@pytest.mark.budget(1200)
def test_particle_cli_flash_is_still_gated_by_the_guard(rig, particle_cli, tmp_path):
    """`particle flash <device> <file.bin>` sends the bytes as they are (docs/reference/particle-cloud-api.md §4);
    a device with updates disabled answers 5.03, gets `updates/pending`, and takes the update only
    in its idle window after a clean shutdown (docs/reference/particle-ota.md §1.5, §2.3). Also `particle get` /
    `call` against the companion's cloud variables and functions."""
    connected(rig)
    park(rig)
    rig.development(True)  # a one-off binary on a product device: the bench group's release must not pull it back
    v2 = rig.firmware(2, size=APP_SIZE)
    binary = tmp_path / "companion-v2.bin"
    binary.write_bytes(v2.image)
    rig.timeline.add(rig.now(), "rig", "flash", {"version": 2, "tool": "particle flash"})
    rig.run_tool(lambda: particle_cli.flash_cloud(rig.dut_id, binary))
    rig.expect_version(2, 900)
    connected(rig, 300)  # the CLI's `get` needs the device online again after the update's reset
    rig.wait(30)  # the cloud's stream reports it online (new_version_runs)
    rig.check(*ota_verdicts(rig, 2), v.pending_honoured_within(rig.timeline, 60))
    # The app's own remote interface, where it has one (the cloud lists a device's functions and
    # variables, docs/reference/particle-cloud-api.md `list`): read and driven with the CLI, every
    # answer in the timeline next to the agent's status, so the verdict reads both.
    info = rig.cloud.device(rig.dut_id)
    mirrored = [name for name in v.CLOUD_MIRRORS if name in (info.get("variables") or {})]
    has_workload = "workload" in (info.get("functions") or [])
    if not mirrored and not has_workload:
        return
    if has_workload:
        for state in ("busy", "idle"):  # each a change, so the app acts on it (and records while busy)
            cloud_call(rig, particle_cli, "workload", state)  # answered once the function has run
            rig.command("status")
    else:
        rig.command("status")
    for name in mirrored:  # the app is idle now: nothing changes while the CLI runs
        cloud_get(rig, particle_cli, name)
    rig.check(v.cloud_interface_agrees(rig.timeline))


def cloud_get(rig: Rig, cli: ParticleCli, var: str) -> None:
    """`particle get` of a cloud variable; the answer goes into the timeline (`rig` `get`)."""
    value = rig.run_tool(lambda: cli.get(rig.dut_id, var))
    rig.timeline.add(rig.now(), "rig", "get", {"var": var, "value": value, "tool": "particle get"})


def cloud_call(rig: Rig, cli: ParticleCli, fn: str, arg: str) -> None:
    """`particle call` of a cloud function; the answer goes into the timeline (`rig` `call`)."""
    result = rig.run_tool(lambda: cli.call(rig.dut_id, fn, arg))
    rig.timeline.add(rig.now(), "rig", "call", {"fn": fn, "arg": arg, "result": result, "tool": "particle call"})
