"""The lab engineer's own tool: a cloud OTA started with the real `particle` CLI."""
from __future__ import annotations

import pytest

from otarig import verdicts as v

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
    if rig.parts.description.get("firmware_project"):
        return  # a team's firmware (--firmware DIR) need not have the companion's `version` and `workload`
    version = rig.run_tool(lambda: particle_cli.get(rig.dut_id, "version"))
    assert int(version) == 2
    assert int(rig.run_tool(lambda: particle_cli.call(rig.dut_id, "workload", "idle"))) == 0
