"""Firmware precedence and update checks (docs/reference/particle-ota.md §1.4, §7.7, §7.8)."""
from otarig.sim.cloud_rules import (ReleaseState, TargetInputs, connection_is_check, needs_update,
                                    target_version, updates_allowed)


def test_precedence_1_development_device_gets_nothing():
    rel = ReleaseState(default_release=3, group_releases={"beta": 4})
    assert target_version(TargetInputs(development=True, desired_firmware_version=5, groups=("beta",)), rel) is None


def test_precedence_2_lock_is_respected_above_all_else():
    rel = ReleaseState(default_release=3, group_releases={"beta": 4})
    assert target_version(TargetInputs(desired_firmware_version=2, groups=("beta",)), rel) == 2


def test_precedence_3_highest_group_release_wins():
    rel = ReleaseState(default_release=9, group_releases={"beta": 4, "alpha": 6})
    assert target_version(TargetInputs(groups=("beta", "alpha")), rel) == 6


def test_precedence_4_and_5_product_default_or_nothing():
    assert target_version(TargetInputs(groups=("none",)), ReleaseState(default_release=3)) == 3
    assert target_version(TargetInputs(), ReleaseState()) is None


def test_needs_update_only_when_target_differs():
    assert needs_update(3, 2) and not needs_update(3, 3) and not needs_update(None, 1)


def test_check_rules_7_8_1():
    assert connection_is_check(resumed=False, hello_sent=True, check_on_resume=False)
    assert connection_is_check(resumed=True, hello_sent=True, check_on_resume=False)
    assert not connection_is_check(resumed=True, hello_sent=False, check_on_resume=False)
    assert connection_is_check(resumed=True, hello_sent=False, check_on_resume=True)


def test_refusal_while_disabled_unless_forced():
    assert not updates_allowed(enabled=False, forced=False)
    assert updates_allowed(enabled=False, forced=True) and updates_allowed(enabled=True, forced=False)
