"""Upgrading the fleet: the candidate reads what the release in the field persisted.

A candidate never lands on a blank device: it replaces the release the fleet runs now, on a device
whose EEPROM holds what that release persisted (the emulated EEPROM is flash sectors 3-4, apart
from the user part the bootloader replaces: docs/reference/particle-ota.md §2.6, §2.10). "Nothing
lost before the reset" holds only if the candidate reads those records; a candidate whose record
format or checksum changed reads its own records and loses every one the fleet wrote. The fleet's
release is `rig.fleet_release` (otarig.fleet_release: the bench file's `[firmware] fleet_release`;
on the simulated bench by default the project under test without defects).

The same holds for what the fleet's release offers through the cloud: a product's backend or
dashboard reads its cloud variables and calls its functions by name, so the candidate must offer
every one of them, with the same type, or the product breaks the moment the update lands.
"""
from __future__ import annotations

import pytest

from otarig import verdicts as v
from otarig.board import NOT_SUPPORTED, NotSupported
from otarig.protocol import Event
from otarig.rig import Rig

from conftest import APP_SIZE, connected, drive, ota_verdicts, park, pending_intelligent_release

#: the fleet's release and the candidate, as this scenario uploads them
FLEET, CANDIDATE = 2, 3
#: bench seconds of driving: a few 5-record transactions persisted by the fleet's release
DRIVE_S = 60


@pytest.mark.budget(3600)
def test_candidate_reads_the_records_the_fleets_release_persisted(rig):
    """The board runs the fleet's release (released to the product, Intelligent, taken in an idle
    window: docs/reference/particle-ota.md §1.5), drives so that release persists records, parks;
    the candidate is released and lands in the idle window. Judged from the moment the fleet's
    release runs: every record it acknowledged as persisted is held by the candidate after its boot
    (`no_record_lost`), and the candidate numbers on from there; and the candidate offers every
    cloud variable and function the fleet's release offered (`cloud_interface_kept`), each read
    from the Cloud API's device info while that version ran."""
    connected(rig)
    rig.upload(rig.fleet_release(FLEET, size=APP_SIZE))
    rig.release(FLEET, intelligent=True)
    # a binary of the field reports its own product version: wait for its boot, not for a number
    rig.expect(lambda e: e.name == "hello", 900)
    connected(rig)
    fleet_runs = rig.note_state()
    drive(rig)
    rig.wait(DRIVE_S)
    park(rig)
    record_cloud_interface(rig, v.FLEET_ROLE, FLEET)
    if not rig.timeline.select(kind="app", start=fleet_runs,
                               where=lambda e: e.get("action") == "record" and e.get("persisted")):
        # nothing carried over would make the verdicts below pass without proving anything
        raise NotSupported(f"{NOT_SUPPORTED}: the fleet's release acknowledged no persisted record "
                           f"(appRecord(seq, true)) in {DRIVE_S} s of work, so there is nothing for the "
                           "candidate to carry over", Event("reply", 0, {}))
    pending_intelligent_release(rig, CANDIDATE)
    rig.expect_version(CANDIDATE, 900)
    rig.wait(30)
    connected(rig)
    record_cloud_interface(rig, v.CANDIDATE_ROLE, CANDIDATE)
    rig.check(*ota_verdicts(rig, CANDIDATE, since=fleet_runs),
              v.cloud_interface_kept(rig.timeline, device_id=rig.dut_id))


def record_cloud_interface(rig: Rig, role: str, version: int) -> None:
    """The device's cloud interface as the Cloud API lists it now (GET /v1/devices/:id `variables`
    {name: type} and `functions`, docs/reference/particle-cloud-api.md §5), into the timeline as a
    `rig` `cloud` entry, so that a verdict compares what the fleet's release and the candidate
    offered a product's backend."""
    info = rig.cloud.device(rig.dut_id)
    rig.timeline.add(rig.now(), "rig", "cloud", {
        "what": "interface", "role": role, "version": version, "device": rig.dut_id,
        "variables": dict(info.get("variables") or {}), "functions": list(info.get("functions") or [])})
