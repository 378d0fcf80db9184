"""Which firmware a product device should run, and when the cloud checks (spec particle-ota.md §1.4, §7.7, §7.8).

Pure functions, shared by the simulated cloud and the fleet planner so both follow one copy
of the rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReleaseState:
    """A product's releases (spec §7.6)."""

    default_release: int | None = None
    group_releases: dict[str, int] = field(default_factory=dict)
    last_release_intelligent: bool = False


@dataclass
class TargetInputs:
    development: bool = False
    desired_firmware_version: int | None = None
    groups: tuple[str, ...] = ()


def target_version(dev: TargetInputs, rel: ReleaseState) -> int | None:
    """spec §1.4 precedence / §7.7 target(d)."""
    if dev.development:
        return None  # 1. development devices never receive automatic updates
    if dev.desired_firmware_version is not None:
        return dev.desired_firmware_version  # 2. a lock is "respected above all else"
    versions = [rel.group_releases[g] for g in dev.groups if g in rel.group_releases]
    if versions:
        return max(versions)  # 3. several groups: the highest version wins
    return rel.default_release  # 4. product default, or 5. nothing


def needs_update(target: int | None, running: int | None) -> bool:
    """spec §7.7 needs_update(d)."""
    return target is not None and target != running


def connection_is_check(*, resumed: bool, hello_sent: bool, check_on_resume: bool) -> bool:
    """spec §7.8.1: a full handshake is a check; HELLO over a resumed session too; a bare resume
    only when the §8.1 parameter says so."""
    return (not resumed) or hello_sent or check_on_resume


def updates_allowed(*, enabled: bool, forced: bool) -> bool:
    """spec §1.5 / §7.4: the device refuses UpdateBegin (5.03) unless enabled or forced."""
    return enabled or forced
