"""Which firmware a product device should run, and when the cloud checks (docs/reference/particle-ota.md §1.4, §7.7, §7.8).

Pure functions, shared by the simulated cloud and the fleet planner so both follow one copy
of the rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReleaseState:
    """A product's releases (docs/reference/particle-ota.md §7.6)."""

    default_release: int | None = None
    group_releases: dict[str, int] = field(default_factory=dict)
    last_release_intelligent: bool = False


@dataclass
class TargetInputs:
    development: bool = False
    desired_firmware_version: int | None = None
    groups: tuple[str, ...] = ()


def target_version(dev: TargetInputs, rel: ReleaseState) -> int | None:
    """docs/reference/particle-ota.md §1.4 precedence / §7.7 target(d)."""
    if dev.development:
        return None  # 1. development devices never receive automatic updates
    if dev.desired_firmware_version is not None:
        return dev.desired_firmware_version  # 2. a lock is "respected above all else"
    versions = [rel.group_releases[g] for g in dev.groups if g in rel.group_releases]
    if versions:
        return max(versions)  # 3. several groups: the highest version wins
    return rel.default_release  # 4. product default, or 5. nothing


def needs_update(target: int | None, running: int | None) -> bool:
    """docs/reference/particle-ota.md §7.7 needs_update(d)."""
    return target is not None and target != running


def connection_is_check(*, resumed: bool, hello_sent: bool, check_on_resume: bool) -> bool:
    """docs/reference/particle-ota.md §7.8.1: a full handshake is a check; HELLO over a resumed session too; a bare resume
    only when the §8.1 parameter says so."""
    return (not resumed) or hello_sent or check_on_resume


def updates_allowed(*, enabled: bool, forced: bool) -> bool:
    """docs/reference/particle-ota.md §1.5 / §7.4: the device refuses UpdateBegin (5.03) unless enabled or forced."""
    return enabled or forced


# -- decisions that were inline in SimCloud; moved here so the fleet planner (otarig.rollout)
# -- takes the same decisions from the same code.

def session_expired(*, established_ms: int, now_ms: int, max_age_ms: int) -> bool:
    """docs/reference/particle-ota.md §1.2 / §7.8.1: "Sessions are automatically renegotiated every 3 days" — a session this
    old cannot be resumed, so the next connection is a full handshake (a Standard-release check)."""
    return now_ms - established_ms >= max_age_ms


RENEGOTIATION_MODES = ("lag", "at_expiry", "next_connect")


def renegotiation_delay_ms(*, mode: str, max_age_ms: int, lag_max_ms: int, draw: float) -> int | None:
    """When, after a session was established, the cloud discards it on a device that stays connected
    (CloudParams.renegotiation); `draw` is uniform in [0, 1). None: only at the next connection."""
    if mode not in RENEGOTIATION_MODES:
        raise ValueError(f"renegotiation = {mode!r}: expected one of {', '.join(RENEGOTIATION_MODES)}")
    if mode == "next_connect":
        return None
    return max_age_ms + (int(draw * lag_max_ms) if mode == "lag" else 0)


def intelligent_release_action(*, online: bool, needs_update: bool, enabled: bool, forced: bool) -> str | None:
    """docs/reference/particle-ota.md §7.8.2: an Intelligent release goes at once to each online device that needs it:
    "deliver" when updates are allowed, else "notify" (`particle/device/updates/pending=true`)."""
    if not (online and needs_update):
        return None
    return "deliver" if updates_allowed(enabled=enabled, forced=forced) else "notify"


def deliver_on_enabled(*, enabled: bool, needs_update: bool, pending_notified: bool,
                       last_release_intelligent: bool, retry_needed: bool) -> bool:
    """docs/reference/particle-ota.md §7.8.3: the device reports `updates/enabled=true` while an update waits for it."""
    return enabled and needs_update and (pending_notified or last_release_intelligent or retry_needed)


def deliver_on_forced_echo(*, echoed_forced: bool, forced_setting: bool, needs_update: bool) -> bool:
    """docs/reference/particle-ota.md §7.8.5: after the device echoes forced=true, deliver."""
    return echoed_forced and forced_setting and needs_update


def after_connect_action(*, needs_update: bool, busy: bool, checked: bool, retry_needed: bool,
                         pending_notified: bool, allowed: bool, renotify_pending: bool) -> str | None:
    """docs/reference/particle-ota.md §7.8.1 / §7.8.7: what the cloud does just after a connection.

    "clear" (nothing to deliver: send pending=false), "deliver" (the connection's check found an
    update, or a failed transfer is retried), "renotify" (re-send pending=true to a device whose
    RAM flag was lost at reset), or None.
    """
    if not needs_update:
        return "clear"
    if busy:
        return None
    if checked or retry_needed:
        return "deliver"
    if pending_notified and renotify_pending and not allowed:
        return "renotify"
    return None
