"""The workload the app is told of: a command that comes twice changes nothing.

A fleet's backend delivers its commands at least once (a retry after a lost acknowledgement, two
operators, the rig and the cloud function): an app told `busy` while it is busy is still in the
same busy stretch, so its record grid goes on from the moment it turned busy (docs/your-firmware.md
"Record cadence"), and its idle window stays as it was.
"""
from __future__ import annotations

import pytest
from conftest import connected, declared_period_ms, drive, park

from otarig.plugin import SKIP_NOT_APPLICABLE

from otarig import verdicts as v

#: the repeat comes this far into a record period after a whole number of them (a grid restarted
#: there would put the next record half a period late, past the lateness the verdict allows)
PHASE = 0.5


@pytest.mark.spec("docs/reference/particle-ota.md §3.1")
@pytest.mark.budget(600)
def test_a_repeated_workload_command_changes_nothing(rig):
    """The app is told `busy`, and `busy` again half a record period after its tenth record was due;
    later `idle`, and `idle` again. Its records keep the grid of the stretch that began at the first
    `busy` (`records keep the declared cadence` judges a repeated `busy` as no new stretch), its
    numbers go on, and what it reports agrees with its status."""
    connected(rig)
    period = (declared_period_ms(rig) or 1000) / 1000
    drive(rig)
    rig.wait(10 * period + PHASE * period)
    rig.command("workload", state="busy")
    rig.wait(10 * period)
    park(rig)
    rig.wait(5)
    park(rig)
    rig.wait(5)
    tl = rig.timeline
    rig.check(v.records_keep_declared_cadence(tl), v.record_numbers_go_up(tl), v.reports_agree_with_status(tl))


#: how many persisted batches the cloud variables are read after while driving
READS_WHILE_DRIVING = 3


@pytest.mark.budget(600)
def test_cloud_variables_keep_up_with_the_records_while_driving(rig):
    """A fleet's dashboard reads the app's cloud variables while the vehicle drives. Each time the
    app reports records persisted, the rig asks the agent's `status` and at once reads, through the
    Cloud API, every variable that mirrors a status field (`records`, `lastSeq`, `windowOpen`,
    `version`: docs/reference/particle-cloud-api.md `get`): each must give what the status just said
    (`cloud variables and functions agree with the app`). A firmware that refreshes them only at the
    guard's decisions answers with the count from before the drive. Not applicable to a firmware
    that offers none of these variables."""
    connected(rig)
    offered = rig.cloud.device(rig.dut_id).get("variables") or {}
    mirrored = [name for name in v.CLOUD_MIRRORS if name in offered]
    if not mirrored:
        pytest.skip(f"{SKIP_NOT_APPLICABLE}it offers no cloud variable that mirrors its status "
                    f"({', '.join(v.CLOUD_MIRRORS)})")
    drive(rig)
    last = -1  # the highest record the status said persisted: the next read waits for a newer batch
    for _ in range(READS_WHILE_DRIVING):
        seen = last
        rig.expect(lambda e: e.name == "app" and e.get("action") == "record" and bool(e.get("persisted"))
                   and isinstance(e.get("seq"), int) and e.get("seq") > seen, 120)
        status = rig.command("status")
        for name in mirrored:
            rig.timeline.add(rig.now(), "rig", "get", {"var": name, "value": rig.cloud.variable(rig.dut_id, name),
                                                       "tool": "cloud api"})
        said = status.get("last_seq")
        last = int(said) if isinstance(said, int) else seen + 1
    park(rig)
    tl = rig.timeline
    rig.check(v.cloud_interface_agrees(tl), v.records_keep_declared_cadence(tl))
