"""Between the session and "connected": the handshake's acknowledgements (docs/reference/particle-ota.md §7.3, §3.1).

Device OS v2.3.1 reports the cloud connected only once the cloud has acknowledged the messages its
handshake sent, and reads cloud messages meanwhile; a non-threaded AUTOMATIC app gets setup() only
after that, and only when no update is in progress. An UpdateBegin that arrives in that window is
taken with updates still enabled, before the app could disable them.
"""
from __future__ import annotations

from sim_helpers import OTA_SIZE, ImageFactory, RigFactory, SimRig

from otarig.sim import deviceos as dos
from otarig.sim.connectivity import coap_transmit_timeout_ms
from otarig.sim.params import CloudParams


def _connected_at(rig: SimRig) -> list[int]:
    return [e.t_ms for e in rig.events(dos.CLOUD_STATUS, dos.CLOUD_STATUS_CONNECTED)]


def _first_hello_version(rig: SimRig, timeout: float) -> int:
    assert rig.board is not None
    return int(rig.board.expect(lambda e: e.name == "hello", timeout).get("product_version"))


def test_connected_comes_a_round_trip_after_the_session(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """The flags the handshake publishes are confirmable: `connected` waits for their acknowledgements."""
    rig = sim_rig(companion_image(1))
    session = rig.until_kind("cloud_session", 90)
    rig.run(5)
    [connected] = _connected_at(rig)
    link = rig.dev.link.profile
    assert connected - session.t_ms >= 2 * link.one_way_latency_ms, "not before the cloud's ACK came back"
    assert connected - session.t_ms < 2 * (link.one_way_latency_ms + link.jitter_ms) + 500


def test_a_lost_handshake_message_is_retransmitted_before_connected(companion_image: ImageFactory,
                                                                    sim_rig: RigFactory) -> None:
    """No coverage just after the session: the messages are lost, sent again after CoAP's 4-6 s
    (device-os v2.3.1 communication/src/coap_channel.h ~265-269); `connected` waits for them."""
    rig = sim_rig(companion_image(1))
    session = rig.until_kind("cloud_session", 90)
    rig.dev.link.add_outage(session.t_ms, 2_000)
    rig.run(20)
    [connected] = _connected_at(rig)
    assert coap_transmit_timeout_ms(0, 0) <= connected - session.t_ms <= coap_transmit_timeout_ms(0, 255) + 2_000
    assert [e["data"] for e in rig.cloud_events("particle/device/updates/enabled")] == ["false"], "read once"


def test_an_update_offered_at_the_hello_lands_before_a_non_threaded_automatic_setup(
        companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """§3.1: a Standard release made while the device was off, offered at the HELLO (§8.15 parameter
    at 0): the device takes it before `connected`, setup() never runs on the old version (the reset
    follows the download in the same system pass), and the app's first hello is the new version's."""
    v1 = companion_image(1, threaded=False, mode="AUTOMATIC")
    v2 = companion_image(2, threaded=False, mode="AUTOMATIC", size=OTA_SIZE)
    rig = sim_rig(v1, power_on=False, bench_kw={"cloud_params": CloudParams(handshake_offer_ms=0)})
    rig.release(v2, 2, intelligent=False)
    rig.power_on()
    begin = rig.until_kind("ota_begin", 120)
    assert not _connected_at(rig), "the UpdateBegin was read while the handshake's ACKs were pending"
    assert rig.dev.flags.updates_enabled, "setup() had not disabled them"
    assert _first_hello_version(rig, 300) == 2
    assert [e.data["reason"] for e in rig.trace("booted")] == ["power_down", "update"]
    assert rig.board is not None and begin.t_ms > 0
    assert not [e for e in rig.board.events("sys") if e.get("event") == "firmware_update"], \
        "the app never saw the download: its System.on() was not registered yet"


def test_with_the_default_offer_the_app_runs_first(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """The default cloud acts 4-9.5 s after the HELLO: a round trip is enough for `connected`, so
    setup() has run (and disabled updates) before the UpdateBegin arrives."""
    v1 = companion_image(1, threaded=False, mode="AUTOMATIC")
    v2 = companion_image(2, threaded=False, mode="AUTOMATIC", size=OTA_SIZE)
    rig = sim_rig(v1, power_on=False)
    rig.release(v2, 2, intelligent=False)
    rig.power_on()
    assert _first_hello_version(rig, 120) == 1
    rig.until_kind("ota_begin", 600)
    [connected] = _connected_at(rig)[:1]
    assert rig.trace("ota_begin")[0].t_ms > connected
