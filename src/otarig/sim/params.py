"""Named parameters of the simulated Device OS and cloud.

Each field documents where its default comes from. The open uncertainties of
docs/reference/particle-ota.md §8 are parameters here, never guesses hidden in code.
"""
from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class DeviceOsParams:
    """Device-side behaviour of Device OS 2.3.1 on the Electron."""

    device_os_version: str = "2.3.1"
    #: docs/reference/particle-ota.md §2.4: TIMING_FLASH_UPDATE_TIMEOUT, 300 s on cellular since 1.0.0 (90 s before).
    update_timeout_ms: int = 300_000
    #: docs/reference/particle-ota.md §2.5 / §8.7: v2.3.1 pends a reset even when HAL_FLASH_End fails ("always restart for now").
    reset_on_failed_validation: bool = True
    #: docs/reference/particle-ota.md §2.5: with threading the system waits up to 30 s for the `reset` handlers.
    threaded_reset_wait_ms: int = 30_000
    #: docs/reference/particle-ota.md §8.5: v2.3.1 `system_sleep.cpp` disconnects the cloud even with INACTIVE_STANDBY (AN028 says not).
    inactive_standby_disconnects_cloud: bool = True
    #: docs/reference/particle-ota.md §8.6: the DTLS session in retained_system RAM is lost at a cold power-up (AN028 E402 log).
    session_survives_power_loss: bool = False
    #: docs/reference/particle-ota.md §1.2: MAXIMUM_SESSION_USES = 3 restores without an answer (each cut
    #: before one, e.g. by a reset: an unanswered message clears the session at once, below).
    max_session_uses: int = 3
    #: docs/reference/particle-ota.md §1.2: the Electron pings after 23 min without a message from the cloud
    #: (hal/inc/cellular_hal_utilities.h ~15-18) and gives up 30 s later (communication/src/dtls_protocol.cpp ~18).
    keepalive_ms: int = 23 * 60_000
    ping_ack_timeout_ms: int = 30_000
    #: docs/reference/particle-ota.md §1.2 [inference]: a resumed session's first confirmable message (HELLO or
    #: ping) is given up after CoAP's retransmissions, 4+8+16+32 s (communication/src/coap_channel.h ~161-164,
    #: ~265-269; the random factor is left out): MESSAGE_TIMEOUT; the CoAP store closes the channel, which clears
    #: the saved session (coap_channel.cpp:57-63, dtls_message_channel.cpp:545-547): the next connection is full.
    resume_answer_timeout_ms: int = 60_000
    #: docs/reference/particle-ota.md §2.6: 128 KB user-app slot on the Electron flash map.
    max_app_size: int = 128 * 1024
    #: [inference] time from reset to setup() (bootloader + system init). Not measured.
    boot_ms: int = 400
    #: [inference] STM32F2 erase + copy of a 128 KB module by the bootloader (docs/reference/particle-ota.md §2.6). Not measured.
    bootloader_copy_ms: int = 1_500
    #: [inference] USB CDC re-enumeration after reset, as the host sees it.
    usb_enumeration_ms: int = 600
    #: docs/reference/particle-ota.md §3.2 (AN028): cold boot to cloud on E402 21.5 s; modem power-up + registration share.
    modem_power_up_ms: int = 15_000
    #: docs/reference/particle-ota.md §3.2: a modem kept in standby (INACTIVE_STANDBY / SLEEP_NETWORK_STANDBY) reconnects fast.
    modem_resume_ms: int = 1_500
    #: Virtual cost of one pass of the application loop when loop() returns without delay().
    loop_quantum_ms: int = 1
    #: Seeded latitude of the timings above, each drawn per use as base + uniform 0..spread ms from the
    #: device's named streams (`otarig.sim.randomness`), so seeds explore interleavings. [inference]: the
    #: figures are not measured; boot and enumeration vary by tens of ms, registration by seconds
    #: (docs/reference/particle-ota.md §3.2: AN028's 21.5 s cold boot is one sample).
    boot_spread_ms: int = 100
    usb_enumeration_spread_ms: int = 200
    modem_power_up_spread_ms: int = 5_000
    modem_resume_spread_ms: int = 500
    bootloader_copy_spread_ms: int = 300
    #: an app's `delay(ms)` returns after ms .. ms + this (a threaded app shares the CPU with the
    #: system thread, 1 ms FreeRTOS tick [inference]); `loop()` passes are not stretched.
    app_delay_overrun_ms: int = 2
    #: docs/reference/particle-ota.md §3.1: non-threaded AUTOMATIC runs setup() only once the cloud is connected.
    #: docs/reference/particle-ota.md §8.9: whether timers keep running in a non-threaded app during OTA is unverified; the
    #: simulator freezes loop() and delay() only.


@dataclass(frozen=True)
class CloudParams:
    """Cloud-side behaviour; the cloud code is not public (docs/reference/particle-ota.md §8.3)."""

    #: docs/reference/particle-ota.md §8.1: does a resumed session (no HELLO) trigger a Standard-release check? Unconfirmed.
    check_on_resume: bool = False
    #: docs/reference/particle-ota.md §1.2 / §8.2: "Sessions are automatically renegotiated every 3 days".
    session_max_age_ms: int = 3 * DAY_MS
    #: How an expired session is renegotiated on a device that stays connected (docs/reference/particle-ota.md §8.2: the cloud
    #: code is not public): "lag" (default) — the cloud discards it (key change → DISCARD_SESSION,
    #: docs/reference/particle-ota.md §1.2) a uniform 0..`renegotiation_lag_max_ms` after expiry, so a connected device does a
    #: full handshake every 3–7 days; "at_expiry" — exactly at 3 days; "next_connect" — never while
    #: connected, only at its next connection. The default is [inference], chosen so a Standard
    #: release to an always-on fleet with no resets completes in about a week (docs/reference/particle-ota.md §1.1, §5).
    renegotiation: str = "lag"
    renegotiation_lag_max_ms: int = 4 * DAY_MS
    #: docs/reference/particle-ota.md §2.4 / §7.9: flights of <= 40 chunks of 512 B (PR #1558).
    chunk_size: int = 512
    flight_chunks: int = 40
    #: docs/reference/particle-ota.md §8.15: how soon after a HELLO the cloud acts on the update its
    #: handshake check found (sends UpdateBegin). None (default): as after any connection, the
    #: `pending_false` then the `update_begin` delay (4-9.5 s in all). A number: UpdateBegin goes out
    #: that many ms after the HELLO; 0 is the earliest the docs' "within 8 seconds" allows, and lands
    #: while the device still waits for its handshake's acknowledgements (§7.3), before a
    #: non-threaded AUTOMATIC app's setup() (§3.1).
    handshake_offer_ms: int | None = None
    #: docs/reference/particle-ota.md §2.2: the update typically begins "within 8 seconds" of the connection completing.
    update_begin_delay_ms: int = 3_000
    #: docs/reference/particle-ota.md §2.1: the cloud sends pending=false about 1 s after each connection.
    pending_false_delay_ms: int = 1_000
    #: [inference] docs/reference/particle-ota.md §7.9: a failed transfer is retried at the next trigger, from chunk 0.
    retry_delay_ms: int = 30_000
    #: Seeded latitude of the three delays above (base + uniform 0..spread ms, drawn per device and
    #: per use from the world's named streams): §2.2 "within 8 seconds" → 3..8 s; §2.1 "about 1 s";
    #: the retry's spread is [inference].
    update_begin_spread_ms: int = 5_000
    pending_false_spread_ms: int = 400
    retry_spread_ms: int = 10_000
    #: [inference] docs/reference/particle-ota.md §1.5/§7.8: re-send updates/pending=true on each connection while an update is
    #: queued for a device that reports updates disabled (the device's RAM flag was lost at reset).
    renotify_pending_on_connect: bool = True
    #: docs/reference/particle-ota.md §2.1, §8.3: the event log shows `updates/pending=false` about 1 s after
    #: every connection. False (default): the cloud sends it only when nothing waits (§7.8.7). True
    #: [inference, the log read literally]: after every connection, an update still waiting included, so
    #: the device's flag (System.updatesPending()) is cleared (system_cloud_internal.cpp:97-98) and is set
    #: again only by a renotify (above) or a refused UpdateBegin; the `firmware_update_pending` event
    #: the app saw earlier is then the only trace of the waiting update.
    pending_false_on_every_connect: bool = False
    #: [inference] docs/reference/particle-ota.md §7.8.5: re-send updates/forced=true after every reconnect.
    resend_forced_on_connect: bool = True
    #: docs/reference/particle-ota.md §8.10: spark/device/session/end drops the session at once (vs at next connect).
    session_end_drops_immediately: bool = True
    #: docs/reference/particle-ota.md §8.13: what the cloud answers a device resuming a session it no longer
    #: has: "alert" (default [inference]: a DTLS error, so the device's next connection is a full handshake)
    #: or "silence" (the device gives up after `resume_answer_timeout_ms`, its session cleared, and handshakes).
    unknown_session_answer: str = "alert"
    #: docs/reference/particle-ota.md §8.14 [inference]: the cloud learns that a device went away without a word
    #: (power cut, coverage) only when the device's keep-alive is overdue: 23 min + the 30 s of the ping's wait.
    offline_after_silence_ms: int = 23 * 60_000 + 30_000
    #: docs/reference/particle-ota.md §8.3: how long the cloud waits for an UpdateDone answer before calling the transfer failed.
    update_done_timeout_ms: int = 60_000
    #: docs/reference/particle-ota.md §8.12: the safe-mode healer sends the target release's bootloader first when the move
    #: crosses a major Device OS version and that bootloader is newer than the device's, even though no Electron
    #: dependency asks for it (Gen 2 system parts need bootloader >= 1003 up to 3.3.1). [inference]
    heal_bootloader_on_major_move: bool = True
