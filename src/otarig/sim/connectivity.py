"""Modem and cloud connection of a simulated Electron (docs/reference/particle-ota.md §7.3, §1.2, §3.3).

States: modem OFF / POWERING / PAUSED / READY; cloud DISCONNECTED / CONNECTING / HANDSHAKE_PENDING /
CONNECTED. The DTLS session is resumed, locally, when the retained session is valid and has been tried
fewer than 3 times without an answer; the cloud's first answer proves it (`keepalive` pings once the
cloud has been silent for 23 min). Between the session coming up and "connected" the device waits for
the cloud to acknowledge the messages its handshake sent, reading cloud messages meanwhile
(docs/reference/particle-ota.md §7.3, §3.1).
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import deviceos as dos
from .cloud_peer import (HELLO_FLAG_IMMEDIATE_UPDATES_SUPPORT, HELLO_FLAG_OTA_UPGRADE_SUCCESSFUL, Confirmable, Hello,
                         Ping, SessionReply)
from .keepalive import KeepAlive
from .link import FULL_HANDSHAKE_BYTES, MESSAGE_OVERHEAD_BYTES, RESUME_BYTES
from .messages import CloudEvent
from .publisher import OK, Publisher

if TYPE_CHECKING:
    from .electron import Electron

#: [inference] how long the device waits for the cloud to answer its hello before retrying.
CONNECT_TIMEOUT_MS = 30_000
#: [inference] back-off between connection attempts.
RETRY_BACKOFF_MS = 15_000
#: docs/reference/particle-ota.md §2.2 (corrected): on a GPRS detach URC (+CIEV: 9,0) the modem driver
#: arms a 15 s timer (device-os v2.3.1 hal/src/electron/modem/mdm_hal.cpp ~538); once it has expired
#: the driver calls HAL_NET_notify_disconnected() (~479-485), whose notify_disconnected() calls
#: cloud_disconnect() (system/src/system_network_internal.h ~681-684): no `firmware_update failed`.
GPRS_DETACH_TIMEOUT_MS = 15_000
#: [inference] how long after coverage is lost the network's detach URC reaches the modem driver.
DETACH_URC_DELAY_MS = 5_000
#: the modem-reported loss reaches the cloud connection this long after coverage went away.
NETWORK_LOSS_DETECT_MS = DETACH_URC_DELAY_MS + GPRS_DETACH_TIMEOUT_MS
#: docs/reference/particle-ota.md §7.3: CoAP retransmission of a confirmable message (device-os v2.3.1
#: communication/src/coap_channel.h ~161-164 ACK_TIMEOUT 4000, MAX_RETRANSMIT 3; ~265-269: the n-th wait
#: is 4000 << n plus up to half of it at random); after the last wait the message is given up
#: (coap_channel.cpp ~69-88 CoAPMessageStore::process removes it).
COAP_ACK_TIMEOUT_MS = 4_000
COAP_MAX_RETRANSMIT = 3


def coap_transmit_timeout_ms(transmit_count: int, draw: int) -> int:
    """The wait before retransmission number `transmit_count` + 1, `draw` in 0..255 (coap_channel.h ~265-269)."""
    timeout = COAP_ACK_TIMEOUT_MS << transmit_count
    return timeout + ((timeout * draw) >> 9)


class Modem(enum.Enum):
    OFF = "off"
    POWERING = "powering"
    PAUSED = "paused"
    READY = "ready"


class Cloud(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    #: the session is up and the handshake's messages are sent, not yet all acknowledged: cloud
    #: messages are read (an UpdateBegin included), `Particle.connected()` is still false and a
    #: non-threaded AUTOMATIC app has not had `setup()` (docs/reference/particle-ota.md §3.1, §7.3)
    HANDSHAKE_PENDING = "handshake_pending"
    CONNECTED = "connected"


class Connectivity:
    """The device side of the cellular and cloud connection."""

    def __init__(self, dev: "Electron") -> None:
        self.dev = dev
        self.modem = Modem.OFF
        self.cloud = Cloud.DISCONNECTED
        self.auto_connect = False
        self._timers: list = []
        #: what waits for the modem to be registered (a cloud connection asked for meanwhile)
        self._when_ready: list[Callable[[], None]] = []
        self._attempt = 0
        self.full_handshakes = 0
        self.resumes = 0
        #: the protocol's publish limits; static RAM in Device OS, so fresh at every boot
        self.publisher = Publisher()
        self.keepalive = KeepAlive(dev, self._send_ping, self._ping_timed_out)
        #: the attempt whose resumed session has had no answer from the cloud yet
        self._awaiting_answer: int | None = None
        #: the handshake's confirmable messages not yet acknowledged: token → transmissions so far
        self._unacked: dict[int, int] = {}
        self._tokens = 0

    # -- queries -----------------------------------------------------------------------------
    @property
    def cloud_connected(self) -> bool:
        return self.cloud == Cloud.CONNECTED

    @property
    def cloud_connecting(self) -> bool:
        """spark_cloud_flag_connecting: trying, or up and waiting for the handshake's acknowledgements."""
        return self.cloud in (Cloud.CONNECTING, Cloud.HANDSHAKE_PENDING)

    @property
    def session_up(self) -> bool:
        """The session carries messages both ways: connected, or its handshake's acknowledgements pending."""
        return self.cloud in (Cloud.HANDSHAKE_PENDING, Cloud.CONNECTED)

    @property
    def network_ready(self) -> bool:
        return self.modem == Modem.READY and self.dev.link.is_up()

    def _later(self, ms: int, fn) -> None:
        self._timers.append(self.dev.sched.after(ms, fn))

    def _cancel_timers(self) -> None:
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        self._when_ready.clear()

    # -- modem ---------------------------------------------------------------------------------
    def modem_on(self, then: Callable[[], None] | None = None) -> None:
        """Power the modem up and register; `then` runs once it is registered. Asked while it is
        registering already (powering up, or registering again after lost coverage), `then` waits
        for that registration: Device OS's system loop connects the cloud on any pass where the
        connection is wanted and the network is ready (device-os v2.3.1 system/src/system_task.cpp
        ~443-452 manage_cloud_connection -> ~291-293 establish_cloud_connection), so a
        `Particle.connect()` made during an outage connects when coverage returns."""
        if self.modem == Modem.READY:
            if then:
                then()
            return
        if then and then not in self._when_ready:
            self._when_ready.append(then)
        if self.modem == Modem.POWERING:
            return
        delay = self.dev.timing("modem_resume" if self.modem == Modem.PAUSED else "modem_power_up")
        self.modem = Modem.POWERING
        self.dev.note("modem", state="powering")

        def registered() -> None:
            if self.modem != Modem.POWERING:
                return
            if not self.dev.link.is_up():
                # no coverage: keep trying to register until coverage returns
                nxt = self.dev.link.next_change_ms()
                wait = (nxt - self.dev.sched.now_ms) if nxt else 10_000
                self._later(max(wait, 1_000), registered)
                return
            self.modem = Modem.READY
            self.dev.note("modem", state="ready")
            self._watch_coverage()
            self._modem_ready()
        self._later(delay, registered)

    def _modem_ready(self) -> None:
        """The modem is registered: run what waited for it, in the order it was asked."""
        waiting, self._when_ready = self._when_ready, []
        for fn in waiting:
            fn()

    def modem_off(self) -> None:
        """Cellular.off(): the cloud goes first (docs/reference/particle-ota.md §3.3), then the modem."""
        self._drop_cloud(graceful=True, reason="cellular_off")
        self._cancel_timers()
        self.modem = Modem.OFF
        self.dev.note("modem", state="off")

    def reset_network(self) -> None:
        """`spark/device/reset` = network: disconnect the cloud gracefully, turn the modem off and on
        again; the cloud connection, still wanted, follows (device-os v2.3.1
        system/src/system_network_internal.cpp ~37-59 resetNetworkInterfaces)."""
        self._drop_cloud(graceful=True, reason="network_reset")
        self.modem_off()
        self.modem_on(then=self.reconnect_after_wake)

    def modem_pause(self) -> None:
        """Sleep with network standby: the modem stays registered but idle (docs/reference/particle-ota.md §3.2)."""
        self._cancel_timers()
        if self.modem == Modem.READY:
            self.modem = Modem.PAUSED
            self.dev.note("modem", state="paused")

    def network_connect(self) -> None:
        self.modem_on()

    def network_disconnect(self) -> None:
        self._drop_cloud(graceful=True, reason="network_disconnect")
        self.modem_pause()

    def _watch_coverage(self) -> None:
        """Notice lost coverage a while after it happens (registration lost)."""
        link = self.dev.link
        nxt = link.next_change_ms()
        if nxt is None:
            return

        def check() -> None:
            if self.modem != Modem.READY:
                return
            if link.is_up():
                self._watch_coverage()
                return
            self.dev.note("network_lost")
            self._drop_cloud(graceful=False, reason="network_lost")
            self.modem = Modem.POWERING
            self._later(0, lambda: self._reregister())
        self._later(max(nxt - self.dev.sched.now_ms, 0) + NETWORK_LOSS_DETECT_MS, check)

    def antenna_changed(self) -> None:
        """The bench switched the antenna: re-evaluate coverage now."""
        if self.modem == Modem.READY and not self.dev.link.is_up():
            def check() -> None:
                if self.modem == Modem.READY and not self.dev.link.is_up():
                    self.dev.note("network_lost")
                    self._drop_cloud(graceful=False, reason="network_lost")
                    self.modem = Modem.POWERING
                    self._reregister()
            self._later(NETWORK_LOSS_DETECT_MS, check)

    def _reregister(self) -> None:
        if self.modem != Modem.POWERING:
            return
        if self.dev.link.is_up():
            self.modem = Modem.READY
            self.dev.note("modem", state="ready")
            self._watch_coverage()
            if self.auto_connect and self.cloud == Cloud.DISCONNECTED:
                self._connect_now()
            self._modem_ready()  # a connection asked for during the outage (Particle.connect())
            return
        nxt = self.dev.link.next_change_ms()
        wait = (nxt - self.dev.sched.now_ms) if nxt else 10_000
        self._later(max(wait, 1_000), self._reregister)

    # -- cloud ---------------------------------------------------------------------------------
    def request_connect(self) -> None:
        """Particle.connect(): keep (re)connecting until connected or told to disconnect."""
        self.auto_connect = True
        if self.cloud == Cloud.DISCONNECTED:
            self._connect_now()

    def request_disconnect(self) -> None:
        """Particle.disconnect() only clears the auto-connect flag (device-os v2.3.1
        wiring/src/spark_wiring_cloud.cpp:95-97 → system/src/system_cloud.cpp:228-245 →
        system/src/system_mode.cpp:68-71); the system loop's next `manage_cloud_connection` pass
        disconnects (system/src/system_task.cpp:445-448, `cloud_disconnect(CLOUD_DISCONNECT_GRACEFULLY,
        CLOUD_DISCONNECT_REASON_USER)`). A `Particle.connect()` before that pass sets the flag again
        (system_mode.cpp:59-66) and the session stays up (docs/reference/particle-ota.md §3.3)."""
        self.auto_connect = False
        if self.cloud != Cloud.DISCONNECTED:
            self._later(0, lambda: self.dev.on_system_thread(self._manage_cloud_connection))

    def _manage_cloud_connection(self) -> None:
        """The system loop's pass after a Particle.disconnect(): disconnect if the flag is still clear."""
        if not self.auto_connect:
            self._drop_cloud(graceful=True, reason="disconnect")

    def _connect_now(self) -> None:
        if not self.dev.powered or self.cloud != Cloud.DISCONNECTED:
            return
        self.cloud = Cloud.CONNECTING
        self.dev.emit(dos.CLOUD_STATUS, dos.CLOUD_STATUS_CONNECTING)
        self.modem_on(then=self._start_session)

    def _start_session(self) -> None:
        """docs/reference/particle-ota.md §7.3: resume if the retained session is valid and used fewer than 3 times."""
        dev = self.dev
        if self.cloud != Cloud.CONNECTING:
            return
        s = dev.session
        resume = s.session_id is not None and s.uses < dev.params.max_session_uses
        if resume:
            s.uses += 1
        else:
            s.invalidate()
        describe = dev.describe_hash()  # docs/reference/particle-ota.md §1.2: covers every module
        image = dev.image
        flags = HELLO_FLAG_IMMEDIATE_UPDATES_SUPPORT
        if dev.ota_success_hello:
            flags |= HELLO_FLAG_OTA_UPGRADE_SUCCESSFUL
        hello = Hello(
            device_id=dev.device_id, session_id=s.session_id if resume else None,
            hello_sent=not resume or s.describe_hash != describe,
            product_id=image.product_id if image else 0,
            product_version=image.product_version if image else 0,
            platform_id=dev.PLATFORM_ID, flags=flags,
            system_version=min(dev.flash.system_parts.values()), safe_mode=dev.safe_mode,
            app_hash=dev.app_hash(), modules=tuple(m.describe() for m in dev.installed_modules()))
        self.last_hello = hello
        self._attempt += 1
        attempt = self._attempt
        size = RESUME_BYTES // 2 if resume else FULL_HANDSHAKE_BYTES // 2
        dev.link.send("up", size, "resume" if resume else "handshake",
                      lambda: dev.cloud.device_hello(dev, hello), reliable=True)
        if resume:
            # docs/reference/particle-ota.md §1.2 (corrected): a resume is local — the saved DTLS state is
            # restored with no exchange (device-os v2.3.1 communication/src/dtls_message_channel.cpp
            # ~366-377), so the connection is up at once; only the cloud's first answer proves the
            # session, and clears the use count (~463-465, ~488-495).
            self._established(resumed=True, hello_sent=hello.hello_sent, session_id=s.session_id or "")
            self._awaiting_answer = attempt
            self._later(dev.params.resume_answer_timeout_ms, lambda: self._resume_unanswered(attempt))
            return
        self._later(CONNECT_TIMEOUT_MS, lambda: self._connect_timeout(attempt))

    def session_reply(self, reply: SessionReply) -> None:
        """The cloud answered: a full handshake is done, or a resumed session is proven."""
        dev = self.dev
        if self.cloud != Cloud.CONNECTING or not dev.powered:
            return  # a resumed session's answer: `message_received` has done what it does
        self._attempt += 1  # invalidates the pending timeout
        self._established(resumed=reply.resumed, hello_sent=self.last_hello.hello_sent, session_id=reply.session_id)

    def message_received(self) -> None:
        """Any message from the cloud on the connection: the keep-alive restarts, and the first one after
        a resume proves the session (its use count back to 0: dtls_message_channel.cpp ~463-465, ~488-495).

        That holds from the moment the session is up, not only once `connected`: device-os v2.3.1
        `DTLSMessageChannel::receive` clears the count on any record read (dtls_message_channel.cpp
        :462-465 → `cancel_move_session` :488-495), and the communication loop reads records while the
        handshake's messages wait for their acknowledgements (system/src/system_task.cpp:436-439). The
        cloud's answer to a resume and the ACKs of its update-flag events all come in that window; a
        cloud with nothing more to send (a Standard release waiting, which a resume does not check,
        docs/reference/particle-ota.md §8.1) must still count as having answered (§1.2, §8.13)."""
        if not self.session_up:
            return
        self.keepalive.message_received()
        if self._awaiting_answer is not None:
            self._awaiting_answer = None
            self.dev.session.uses = 0
            self.resumes += 1

    def _resume_unanswered(self, attempt: int) -> None:
        """MESSAGE_TIMEOUT: the resumed session's first confirmable message was never acknowledged. The
        CoAP store gives it up and closes the channel (device-os v2.3.1 communication/src/coap_channel.cpp
        :57-63 `message_timeout` → `command(CLOSE)`), whose DTLS channel resets the session and saves it
        cleared (dtls_message_channel.cpp:545-547 → `reset_session` :261-266 → `SessionPersist::clear`,
        communication/inc/dtls_session_persist.h:196-202): the connection is made again with a full
        handshake (docs/reference/particle-ota.md §1.2, §8.13). The 3-use limit is for resumes cut
        before an answer or this timeout (a reset, a power cut)."""
        if self._awaiting_answer != attempt or not self.session_up:
            return
        self._awaiting_answer = None
        self.dev.note("resume_unanswered", uses=self.dev.session.uses)
        self.dev.session.invalidate()
        self._drop_cloud(graceful=False, reason="message_timeout", protocol_error=True)
        if self.auto_connect:
            self._later(0, self._connect_now)

    def session_alert(self) -> None:
        """A DTLS error (the cloud's alert for a session it no longer has, docs/reference/particle-ota.md §8.13):
        the channel resets the session (dtls_message_channel.cpp ~456-458), the event loop fails, and
        the next connection is a full handshake."""
        self.dev.note("dtls_error")
        self.dev.session.invalidate()
        self._awaiting_answer = None
        self._drop_cloud(graceful=False, reason="dtls_error", protocol_error=True)
        if self.auto_connect:
            self._later(0, self._connect_now)

    def _send_ping(self) -> None:
        dev = self.dev
        dev.link.send("up", MESSAGE_OVERHEAD_BYTES, "control", lambda: dev.cloud.device_message(dev, Ping()),
                      reliable=True)

    def _ping_timed_out(self) -> None:
        """PING_TIMEOUT, an error of the protocol's event loop (docs/reference/particle-ota.md §1.2, §2.2)."""
        self._drop_cloud(graceful=False, reason="ping_timeout", protocol_error=True)
        if self.auto_connect:
            self._later(0, self._connect_now)

    def _established(self, *, resumed: bool, hello_sent: bool, session_id: str) -> None:
        """The connection is up (docs/reference/particle-ota.md §7.3 then-publish list)."""
        dev = self.dev
        s = dev.session
        if not resumed:
            s.session_id, s.uses = session_id, 0
        s.describe_hash = dev.describe_hash()
        full_path = not resumed or hello_sent
        if not resumed:
            self.full_handshakes += 1
        dev.note("cloud_session", resumed=resumed, hello=hello_sent)
        dev.emit(dos.CLOUD_STATUS, dos.CLOUD_STATUS_SESSION_RESUME if resumed else dos.CLOUD_STATUS_HANDSHAKE)
        self.cloud = Cloud.HANDSHAKE_PENDING
        dev.ota_success_hello = False
        self._unacked.clear()
        attempt = self._attempt
        # docs/reference/particle-ota.md §1.2: Send_Firmware_Update_Flags on every connection; last_reset once per boot.
        if full_path and not dev.last_reset_published:
            dev.last_reset_published = True
            self._publish_confirmable("spark/device/last_reset",
                                      dos.RESET_REASON_NAME.get(dev.reset_reason, "unknown"), attempt)
        if dev.safe_mode:
            self._publish_confirmable("spark/device/safemode", "", attempt)
        self._publish_confirmable("particle/device/updates/enabled",
                                  "true" if dev.flags.updates_enabled else "false", attempt)
        self._publish_confirmable("particle/device/updates/forced",
                                  "true" if dev.flags.updates_forced else "false", attempt)
        self.keepalive.start()
        self._handshake_settled(attempt)

    # -- the handshake's acknowledgements (docs/reference/particle-ota.md §7.3, §3.1) ----------------
    # device-os v2.3.1: Spark_Handshake ends with SPARK_CLOUD_HANDSHAKE_PENDING while the protocol has
    # unacknowledged client messages (system/src/system_cloud_internal.cpp ~1213-1224); the last
    # acknowledgement sets HANDSHAKE_NOTIFY_DONE (clientMessagesProcessed ~642-648, via
    # communication/src/coap_channel.h ~650-665), and one more pass of the communication loop then
    # sets SPARK_CLOUD_CONNECTED and emits cloud_status connected (system/src/system_task.cpp
    # ~366-386). Every pass meanwhile reads cloud messages (Spark_Process_Events, ~436-439), so an
    # UpdateBegin is handled; app_loop calls a non-threaded AUTOMATIC app's setup() only once
    # spark_cloud_flag_connected() and !SPARK_FLASH_UPDATE (system/src/main.cpp ~474-492).
    def _publish_confirmable(self, name: str, data: str, attempt: int) -> None:
        if not self._may_send(name):
            return
        self._tokens += 1
        token = self._tokens
        self._unacked[token] = 0
        self._transmit(token, CloudEvent(name, data), attempt)

    def _transmit(self, token: int, msg: CloudEvent, attempt: int) -> None:
        """Send (or send again) one confirmable message; its next retransmission waits CoAP's timeout."""
        dev = self.dev
        count = self._unacked[token]
        dev.link.send("up", msg.wire_bytes, "system",
                      lambda: dev.cloud.device_message(dev, Confirmable(token, msg)), reliable=True)
        self._unacked[token] = count + 1
        draw = dev.world.rng("device", dev.device_id, "coap_retransmit").randrange(256)
        self._later(coap_transmit_timeout_ms(count, draw), lambda: self._ack_overdue(token, msg, attempt))

    def _ack_overdue(self, token: int, msg: CloudEvent, attempt: int) -> None:
        if attempt != self._attempt or token not in self._unacked or not self.session_up:
            return
        if self._unacked[token] <= COAP_MAX_RETRANSMIT:
            self._transmit(token, msg, attempt)
            return
        del self._unacked[token]  # given up: no longer pending (coap_channel.cpp ~69-88)
        self._handshake_settled(attempt)

    def acknowledged(self, token: int) -> None:
        """The cloud's ACK for a confirmable message (a late or duplicate one changes nothing)."""
        if self._unacked.pop(token, None) is not None:
            self._handshake_settled(self._attempt)

    def _handshake_settled(self, attempt: int) -> None:
        """Once nothing is left unacknowledged, one more loop pass, then connected."""
        if self.cloud == Cloud.HANDSHAKE_PENDING and not self._unacked:
            self._later(0, lambda: self._connected(attempt))

    def _connected(self, attempt: int) -> None:
        if attempt != self._attempt or self.cloud != Cloud.HANDSHAKE_PENDING:
            return
        self.cloud = Cloud.CONNECTED
        self.dev.emit(dos.CLOUD_STATUS, dos.CLOUD_STATUS_CONNECTED)
        self.dev.on_cloud_connected()

    def _connect_timeout(self, attempt: int) -> None:
        if attempt != self._attempt or self.cloud != Cloud.CONNECTING:
            return
        self.dev.note("cloud_connect_timeout")
        self.cloud = Cloud.DISCONNECTED
        self.dev.emit(dos.CLOUD_STATUS, dos.CLOUD_STATUS_DISCONNECTED)
        if self.auto_connect:
            self._later(RETRY_BACKOFF_MS, self._connect_now)

    def _drop_cloud(self, *, graceful: bool, reason: str, protocol_error: bool = False) -> None:
        """Any disconnect ends an OTA in progress (docs/reference/particle-ota.md §3.3, §7.3, §7.4).

        Only an error in the protocol's event loop (`protocol_error`) emits `firmware_update failed`:
        the loop cancels the transfer first, then the system disconnects (device-os v2.3.1
        communication/src/protocol.cpp ~487-492 → communication/src/chunked_transfer.cpp ~361-369).
        `Particle.disconnect()`, sleep, `Cellular.off()` and a modem-reported loss go through
        `cloud_disconnect()`, which just clears SPARK_FLASH_UPDATE (system/src/system_task.cpp ~628);
        the next session resets the transfer (Protocol::reset, protocol.cpp ~382-383): no event
        (docs/reference/particle-ota.md §2.2 and §2.4, corrected).
        """
        dev = self.dev
        if self.cloud == Cloud.DISCONNECTED:
            return
        was_connected = self.session_up
        self.keepalive.stop()
        self._awaiting_answer = None
        self._unacked.clear()
        if protocol_error:
            dev.ota.cancel(reason, emit=True)
        if was_connected and dev.powered:
            dev.emit(dos.CLOUD_STATUS, dos.CLOUD_STATUS_DISCONNECTING)
        self.cloud = Cloud.DISCONNECTED
        self._attempt += 1
        dev.ota.cancel(reason, emit=False)
        if graceful and was_connected:
            dev.link.send("up", MESSAGE_OVERHEAD_BYTES, "control",
                          lambda: dev.cloud.device_disconnected(dev, True), reliable=True)
        elif was_connected:
            dev.cloud.device_disconnected(dev, False)  # the cloud learns of it by the keep-alive (§8.14)
        dev.note("cloud_disconnected", reason=reason)
        if dev.powered:
            dev.emit(dos.CLOUD_STATUS, dos.CLOUD_STATUS_DISCONNECTED)  # after network loss: see _reregister

    def discard_session(self) -> None:
        """docs/reference/particle-ota.md §1.2 DISCARD_SESSION: drop the session and connect again with a full handshake.

        The key change is handled in the protocol's event loop, and the channel answers
        DISCARD_SESSION with IO_ERROR_DISCARD_SESSION (device-os v2.3.1
        communication/src/dtls_message_channel.cpp ~549-551, protocol.cpp ~205-229): an event-loop
        error, so a transfer in progress ends with `firmware_update failed` (§2.2).
        """
        self.dev.note("session_discarded")
        self.dev.session.invalidate()
        self._drop_cloud(graceful=False, reason="session_discarded", protocol_error=True)
        if self.auto_connect:
            self._later(0, self._connect_now)

    def drop_for_sleep(self) -> None:
        self._drop_cloud(graceful=True, reason="sleep")

    def shutdown(self, *, graceful: bool) -> None:
        """Power off or reset: everything radio-related stops; the retained session stays."""
        self._drop_cloud(graceful=graceful, reason="reset" if graceful else "power_off")
        self._cancel_timers()
        self.modem = Modem.OFF
        self.auto_connect = False
        self.publisher.reset()

    def reconnect_after_wake(self) -> None:
        if self.auto_connect and self.cloud == Cloud.DISCONNECTED:
            self._connect_now()

    # -- messages ---------------------------------------------------------------------------
    def _may_send(self, name: str) -> bool:
        """docs/reference/particle-ota.md §2.8 (corrected): busy during a transfer, then the rate limits
        (`publisher.Publisher`; device-os v2.3.1 communication/inc/protocol.h ~419-426,
        communication/src/publisher.h ~50-88)."""
        dev = self.dev
        verdict = self.publisher.check(name, dev.fw_millis(), updating=dev.ota.receiving)
        if verdict != OK:
            dev.note("publish_refused", name=name, why=verdict)
            return False
        return True

    def publish(self, name: str, data: str) -> bool:
        """Particle.publish: false when not connected (no queueing in 2.3.1), busy during a transfer,
        rate-limited, or when the channel cannot send it (docs/reference/particle-ota.md §2.8 "When
        Particle.publish() returns false"). Device OS answers once the channel has taken the event:
        the send's own error (DTLSMessageChannel::send returns IO_ERROR_SOCKET_SEND_FAILED and keeps
        the session, device-os v2.3.1 communication/src/dtls_message_channel.cpp:521-527;
        Protocol::send_event false, communication/inc/protocol.h:427-433), else true at once, an
        acknowledgement being waited for only WITH_ACK (communication/src/publisher.h:112-119). The
        event is confirmable on the UDP channel (publisher.h:103, dtls_message_channel.cpp:535-537),
        so the CoAP layer retransmits it: a message lost on the air or in flight when coverage goes
        does not make the publish false. Here the send fails while the link has no coverage
        ([inference]: the modem refusing AT+USOST, hal/src/electron/modem/mdm_hal.cpp:3199-3230)."""
        if not self.cloud_connected or not self._may_send(name):
            return False
        dev = self.dev
        if not dev.link.is_up():
            dev.note("publish_refused", name=name, why="send_failed")
            return False
        msg = CloudEvent(name, data)
        dev.link.send("up", msg.wire_bytes, "events", lambda: dev.cloud.device_message(dev, msg), reliable=True)
        return True

    def publish_system(self, name: str, data: str) -> None:
        """An event the system publishes (the update flags, last_reset, safemode). It goes through the
        same Protocol::send_event, so during a transfer it is refused as busy and lost — the
        `updates/enabled` echo of a flag changed mid-transfer included (docs/reference/particle-ota.md
        §2.8; system/src/system_update.cpp ~118-127 sends it once, asynchronously, without a retry)."""
        if self.session_up and self._may_send(name):
            dev = self.dev
            msg = CloudEvent(name, data)
            dev.link.send("up", msg.wire_bytes, "system", lambda: dev.cloud.device_message(dev, msg),
                          reliable=True)

    def send(self, msg: object, nbytes: int, category: str) -> None:
        """A protocol reply (OTA) to the cloud; confirmable, so not lost to random loss."""
        dev = self.dev
        if self.session_up:  # an UpdateBegin read while the handshake's acknowledgements are pending is answered
            dev.link.send("up", nbytes, category, lambda: dev.cloud.device_message(dev, msg), reliable=True)
