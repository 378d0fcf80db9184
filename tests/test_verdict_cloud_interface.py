"""The verdict `cloud_interface_kept` on timelines a real bench can record: the rig's listings of
the device's cloud interface (the Cloud API's device info, `variables` and `functions`) while the
fleet's release ran and while the candidate ran. Added for generated defects that registered a
cloud variable under an empty name, so the candidate no longer offered what the field's release
offered (docs/selftest.md)."""
from __future__ import annotations

from otarig import verdicts as v
from otarig.timeline import Timeline

DEVICE = "e00fce680000000000000001"
FLEET_VARS = {"version": "int32", "records": "int32", "windowOpen": "bool"}


def _listed(*listings: tuple[str, dict[str, str], list[str]], device: str = DEVICE) -> Timeline:
    """(role, variables, functions) listings in order, one minute apart, as the fleet scenario records them."""
    tl = Timeline()
    for i, (role, variables, functions) in enumerate(listings):
        tl.add(60.0 * i, "rig", "cloud", {"what": "interface", "role": role, "version": 2 + i, "device": device,
                                          "variables": variables, "functions": functions})
    return tl


def test_a_candidate_offering_the_same_and_more_passes() -> None:
    ok = v.cloud_interface_kept(_listed(("fleet", FLEET_VARS, ["workload"]),
                                        ("candidate", {**FLEET_VARS, "battery": "double"}, ["workload", "reset"])),
                                device_id=DEVICE)
    assert ok.passed and ok.message.startswith("3 variable(s) and 1 function(s)")


def test_a_variable_registered_under_an_empty_name_fails_naming_the_one_missing() -> None:
    bad = v.cloud_interface_kept(_listed(("fleet", FLEET_VARS, ["workload"]),
                                         ("candidate", {"": "int32", "records": "int32", "windowOpen": "bool"},
                                          ["workload"])))
    assert not bad.passed
    assert "no variable 'version' (int32)" in bad.message and "records" not in bad.message.split("(it lists")[0]
    assert "same name" in bad.fix and "backend" in bad.fix


def test_a_dropped_function_fails() -> None:
    bad = v.cloud_interface_kept(_listed(("fleet", FLEET_VARS, ["workload"]), ("candidate", FLEET_VARS, [])))
    assert not bad.passed and "no function 'workload'" in bad.message


def test_a_retyped_variable_fails() -> None:
    bad = v.cloud_interface_kept(_listed(("fleet", FLEET_VARS, []),
                                         ("candidate", {**FLEET_VARS, "windowOpen": "int32"}, [])))
    assert not bad.passed and "retyped variable 'windowOpen' (bool, now int32)" in bad.message


def test_without_a_listing_of_the_fleets_release_it_is_not_applicable() -> None:
    ok = v.cloud_interface_kept(_listed(("candidate", {}, [])))
    assert ok.passed and ok.message.startswith("not applicable")


def test_another_devices_listing_is_not_judged() -> None:
    tl = _listed(("fleet", FLEET_VARS, ["workload"]))
    tl.add(120.0, "rig", "cloud", {"what": "interface", "role": "candidate", "version": 3, "device": "other",
                                   "variables": {}, "functions": []})
    ok = v.cloud_interface_kept(tl, device_id=DEVICE)
    assert ok.passed and "no listing of the candidate" in ok.message


def test_a_fleet_release_without_a_cloud_interface_passes_saying_so() -> None:
    ok = v.cloud_interface_kept(_listed(("fleet", {}, []), ("candidate", {}, [])))
    assert ok.passed and ok.message == "the fleet's release offered no cloud variable or function"
