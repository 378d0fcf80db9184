"""Publishing on the simulated Electron: busy during a transfer, then the publish rate limits
(docs/reference/particle-ota.md §2.8, corrected; `otarig.sim.publisher`)."""
from __future__ import annotations

from sim_helpers import OTA_SIZE, ImageFactory, RigFactory, SimRig

from otarig.sim import deviceos as dos
from otarig.sim.publisher import BUSY, OK, RATE_LIMITED, Publisher


def _publish(rig: SimRig, name: str, data: str = "x") -> int:
    """Particle.publish as the firmware calls it (the host layer's CLOUD_PUBLISH bridge op)."""
    return rig.dev.fw_cloud(dos.CLOUD_PUBLISH, name, data, 0)


def test_publish_during_a_transfer_returns_busy(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """While the chunked transfer is updating, `Protocol::send_event` refuses every event with
    SYSTEM_ERROR_BUSY (device-os v2.3.1 `communication/inc/protocol.h` ~419-426): a user event, and a
    system one — so the `particle/device/updates/enabled` echo of a flag changed mid-transfer
    (`system/src/system_update.cpp` ~118-121, sent once) never reaches the cloud."""
    rig = sim_rig(companion_image(1))
    rig.connected()
    rig.run(5)
    assert _publish(rig, "otarig/probe") == 1, "idle and connected: the event goes out"
    rig.release(companion_image(2, size=OTA_SIZE), 2)
    rig.until_event(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_BEGIN, timeout=60)
    rig.until_event(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS, timeout=30)
    assert rig.dev.ota.receiving
    assert rig.rec.firmware_updates_enabled
    enabled_events = len(rig.cloud_events("particle/device/updates/enabled"))
    assert _publish(rig, "otarig/probe") == 0
    assert _publish(rig, "spark/device/session/end") == 0, "system events are refused too"
    rig.dev.fw_system(dos.SYS_DISABLE_UPDATES, 0)
    assert not rig.dev.flags.updates_enabled
    refused = [e.data for e in rig.trace("publish_refused")]
    assert {"name": "particle/device/updates/enabled", "why": BUSY} in refused
    assert [d["why"] for d in refused] == [BUSY, BUSY, BUSY]
    rig.run(10)
    assert len(rig.cloud_events("particle/device/updates/enabled")) == enabled_events, "the echo was lost"
    assert rig.rec.firmware_updates_enabled, "so the cloud still believes updates are enabled"


def test_user_events_are_limited_to_4_per_second(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """`Publisher::is_rate_limited` (device-os v2.3.1 `communication/src/publisher.h` ~72-85) keeps the
    times of the last 5 attempts and refuses one whose 4th predecessor is less than 1000 ms old: 4 user
    events per second. Refused attempts are recorded too, so retrying every 100 ms is refused for good.
    Names starting with `spark`/`particle` are system events, limited only to 255 per 65.536 s (~52-68)."""
    rig = sim_rig(companion_image(1))
    rig.connected()
    rig.run(5)
    assert [_publish(rig, "otarig/burst") for _ in range(6)] == [1, 1, 1, 1, 0, 0]
    rig.run(1)
    assert _publish(rig, "otarig/burst") == 1, "1 s after the burst the ring has room again"
    rig.run(2)
    results = []
    for _ in range(20):  # a retry every 100 ms
        results.append(_publish(rig, "otarig/retry"))
        rig.run(0.1)
    assert results == [1, 1, 1, 1] + [0] * 16, "refused attempts fill the ring: never let out again"
    assert all(_publish(rig, "particle/otarig/system-named") == 1 for _ in range(10))


def test_publisher_rate_limits_follow_device_os() -> None:
    """The same rules on the pure state (communication/src/publisher.h ~45-88)."""
    p = Publisher()
    assert [p.check("a", 0, updating=False) for _ in range(5)] == [OK] * 4 + [RATE_LIMITED]
    assert p.check("a", 999, updating=False) == RATE_LIMITED
    assert p.check("a", 2000, updating=False) == OK
    assert p.check("a", 2000, updating=True) == BUSY
    s = Publisher()
    assert [s.check("spark/x", 10, updating=False) for _ in range(256)] == [OK] * 255 + [RATE_LIMITED]
    assert s.check("particle/x", 1 << 16, updating=False) == OK, "a new 65.536 s window"


def test_companion_telemetry_stays_within_the_publish_rate_limit(companion_image: ImageFactory,
                                                                 sim_rig: RigFactory) -> None:
    """The companion publishes persisted records at most once per 300 ms, so a batch of 5 is never
    refused (docs/reference/particle-ota.md §2.8; firmware/companion/README.md "App timing")."""
    rig = sim_rig(companion_image(1))
    rig.connected()
    rig.board.command("workload", state="busy")
    rig.run(40)
    publishes = rig.board.events("app")
    sent = [e for e in publishes if e.get("action") == "publish"]
    assert len(sent) >= 30 and all(e.get("ok") for e in sent), [e.get("ok") for e in sent]
    assert rig.trace("publish_refused") == []


def test_a_send_without_coverage_is_refused_but_an_event_lost_in_flight_is_not(
        companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """Device OS answers once the channel has taken the event (docs/reference/particle-ota.md §2.8
    "When Particle.publish() returns false"): a send the modem cannot make fails and the session
    stays (device-os v2.3.1 communication/src/dtls_message_channel.cpp:521-527), so the publish is
    false while the device still believes the cloud connected; a send that went out returns true at
    once (publisher.h:112-119), though coverage then goes before the event arrives and it is lost."""
    rig = sim_rig(companion_image(1))
    rig.connected()
    rig.run(5)
    link = rig.dev.link
    link.add_outage(rig.now_ms, 10_000)
    assert rig.dev.net.cloud_connected, "the modem has not reported the loss yet"
    assert _publish(rig, "otarig/probe", "no-coverage") == 0
    assert [e.data for e in rig.trace("publish_refused")] == [{"name": "otarig/probe", "why": "send_failed"}]
    rig.run(15)  # coverage back before the modem reported its loss: the session never dropped
    assert rig.dev.net.cloud_connected and link.is_up()
    link.add_outage(rig.now_ms + 1, 10_000)  # the event is on the air when coverage goes
    assert _publish(rig, "otarig/probe", "in-flight") == 1
    rig.run(5)
    assert rig.cloud_events("otarig/probe", "in-flight") == [], "lost with the coverage, though the publish was true"
