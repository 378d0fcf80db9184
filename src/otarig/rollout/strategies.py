"""Release strategies and the planner's named parameters.

Every delivery decision comes from `otarig.sim.cloud_rules` and every cloud/device constant from
`otarig.sim.params` / `otarig.sim.link`: the planner and the simulated cloud follow one copy of
the rules. What only the planner needs (how a *connected* device's expired session gets
renegotiated, the guard's timings) is a named parameter here, with where its default comes from.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from otarig.sim import cloud_rules as rules
from otarig.sim.link import FULL_HANDSHAKE_BYTES, PROFILES, RESUME_BYTES, ota_on_air_bytes
from otarig.sim.params import DAY_MS, CloudParams, DeviceOsParams


class Strategy(str, enum.Enum):
    """How the release goes out (docs/reference/particle-ota.md §1.1, §1.3, §1.4, §1.6)."""

    #: Standard release: offered only at a full handshake (docs/reference/particle-ota.md §1.1, §7.8.1).
    STANDARD = "standard"
    #: Standard + the guard's daily `spark/device/session/end` + reconnect in an idle window (docs/reference/particle-ota.md §1.3).
    STANDARD_DAILY = "standard_daily"
    #: Intelligent release: pushed at once to online devices; pending for disabled ones (docs/reference/particle-ota.md §1.5, §7.8.2).
    INTELLIGENT = "intelligent"
    #: Lock each device to the version with "flash now" (docs/reference/particle-ota.md §1.4, §7.8.4).
    LOCK_FLASH = "lock_flash"
    #: Standard release + `firmware_updates_forced: true` on every device (docs/reference/particle-ota.md §1.6, §7.8.5).
    FORCED = "forced"

    @property
    def label(self) -> str:
        return {"standard": "Standard", "standard_daily": "Standard + daily handshake",
                "intelligent": "Intelligent", "lock_flash": "Lock & flash now",
                "forced": "Forced"}[self.value]


ALL = list(Strategy)


def parse_strategies(text: str) -> list[Strategy]:
    """`standard,intelligent` or `all` → strategies; raises ValueError naming the bad one."""
    if text.strip() == "all":
        return ALL
    out = []
    for name in (t.strip() for t in text.split(",") if t.strip()):
        try:
            out.append(Strategy(name))
        except ValueError:
            raise ValueError(f"unknown strategy {name!r}; expected one of "
                             f"{', '.join(s.value for s in Strategy)} or all") from None
    if not out:
        raise ValueError("no strategy given")
    return out


@dataclass(frozen=True)
class PlannerParams:
    """Named parameters of the rollout model; the cloud and Device OS ones are the simulator's."""

    cloud: CloudParams = field(default_factory=CloudParams)
    devos: DeviceOsParams = field(default_factory=DeviceOsParams)
    #: firmware/companion OtaGuard: OTARIG_HANDSHAKE_INTERVAL_MS (the guard's forced handshake).
    guard_handshake_interval_ms: int = DAY_MS
    #: The guard decides at the top of loop(); parked loop() ends with delay(1000) (companion README).
    guard_loop_ms: int = 1_000
    #: The guard's Particle.disconnect() → Particle.connect() gap (OtaGuard::maybeForceHandshake, ≤ 5 s).
    guard_reconnect_ms: int = 5_000
    #: docs/reference/particle-ota.md §3.1 [inference]: a guarded AUTOMATIC non-threaded app cannot refuse the update offered
    #: at the boot handshake (setup() runs only once connected). The planner takes the worst case, a cloud that
    #: offers before the handshake's acknowledgements (§8.15 `CloudParams.handshake_offer_ms` = 0); the simulated
    #: cloud's default offers later, so there setup() usually runs first.
    boot_leak: bool = True

    def __post_init__(self) -> None:
        rules.renegotiation_delay_ms(mode=self.renegotiation, max_age_ms=0, lag_max_ms=0, draw=0.0)  # validates

    @property
    def renegotiation(self) -> str:
        """`CloudParams.renegotiation`: one definition for the simulated cloud and the planner."""
        return self.cloud.renegotiation

    @property
    def renegotiation_lag_max_ms(self) -> int:
        return self.cloud.renegotiation_lag_max_ms

    # -- derived timings and sizes (docs/reference/particle-ota.md §4.3, §5) -------------------
    def lag_max_ms(self) -> int:
        return {"lag": self.renegotiation_lag_max_ms, "at_expiry": 0, "next_connect": 0}[self.renegotiation]

    def on_air_bytes(self, size: int) -> int:
        """docs/reference/particle-ota.md §4.3 formula, via `otarig.sim.link.ota_on_air_bytes`."""
        return ota_on_air_bytes(size, self.cloud.chunk_size)

    def transfer_ms(self, size: int, link: str) -> int:
        """Air time of the transfer plus one round trip per flight of ≤ 40 chunks (docs/reference/particle-ota.md §2.4, §5)."""
        prof = PROFILES[link]
        chunks = -(-size // self.cloud.chunk_size)
        flights = -(-chunks // self.cloud.flight_chunks)
        return (self.on_air_bytes(size) * 1000) // prof.bytes_per_s + flights * 2 * prof.one_way_latency_ms

    def cold_connect_ms(self, link: str) -> int:
        """Power-up → cloud: boot, modem power-up, full handshake (docs/reference/particle-ota.md §3.2: 21.5 s on an E402)."""
        prof = PROFILES[link]
        return self.devos.boot_ms + self.devos.modem_power_up_ms + \
            (FULL_HANDSHAKE_BYTES * 1000) // prof.bytes_per_s + 2 * prof.one_way_latency_ms

    def wake_connect_ms(self, link: str, cold: bool) -> int:
        prof = PROFILES[link]
        hs = FULL_HANDSHAKE_BYTES if cold else RESUME_BYTES
        return self.devos.modem_power_up_ms + (hs * 1000) // prof.bytes_per_s + 2 * prof.one_way_latency_ms

    def begin_delay_ms(self, link: str) -> int:
        """docs/reference/particle-ota.md §2.2: UpdateBegin "within 8 seconds" of the trigger (CloudParams.update_begin_delay_ms)."""
        return self.cloud.update_begin_delay_ms + PROFILES[link].one_way_latency_ms

    def after_transfer_ms(self, link: str) -> int:
        """Validation, reset, bootloader copy, boot, modem and resumed session with HELLO (docs/reference/particle-ota.md §2.5, §2.6)."""
        d = self.devos
        return d.boot_ms + d.bootloader_copy_ms + self.wake_connect_ms(link, cold=False)
