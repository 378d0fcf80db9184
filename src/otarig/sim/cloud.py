"""The simulated Particle Cloud's OTA side (docs/reference/particle-ota.md §1, §7.6–7.9).

Products, product firmware, releases, devices, the precedence rules, the delivery triggers and
the event stream. It is the `CloudPeer` every simulated device talks to through its link; the
HTTP front (`otarig.sim.cloud_http`) and the rig only call the public methods below.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from . import cloud_rules as rules
from .cloud_delivery import CloudFaults, Delivery
from .cloud_peer import Ack, Confirmable, Hello, Ping, PingAck, SessionAlert, SessionDiscard, SessionReply
from .. import firmware
from .electron_modules import FUNCTION_BOOTLOADER, heal_step, release_name
from .images import NO_PRODUCT_VERSION, ImageError, make_bootloader_image, make_system_image, read_image
from .link import FULL_HANDSHAKE_BYTES, RESUME_BYTES
from .messages import BeginReply, CloudEvent, DoneReply
from .params import CloudParams
from .randomness import spread_ms

if TYPE_CHECKING:
    from .electron import Electron
    from .world import World

#: Virtual time 0 is this instant, so `published_at` is deterministic.
EPOCH = dt.datetime(2026, 1, 5, 8, 0, 0, tzinfo=dt.timezone.utc)


class CloudError(Exception):
    """An API-level refusal, carried to HTTP as `{"error": ...}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class FirmwareRecord:
    version: int
    binary: bytes
    title: str
    description: str
    uploaded_ms: int


@dataclass
class Product:
    product_id: int
    name: str
    firmwares: dict[int, FirmwareRecord] = field(default_factory=dict)
    releases: rules.ReleaseState = field(default_factory=rules.ReleaseState)


@dataclass
class CloudSession:
    session_id: str
    established_ms: int
    dropped: bool = False


@dataclass
class DeviceRecord:
    """docs/reference/particle-ota.md §7.6 device state (and the API fields of §1.6)."""

    device_id: str
    product_id: int
    name: str = ""
    development: bool = False
    desired_firmware_version: int | None = None
    groups: tuple[str, ...] = ()
    firmware_updates_forced: bool = False
    firmware_updates_enabled: bool = True
    online: bool = False
    session: CloudSession | None = None
    running_version: int | None = None
    system_version: int = 0
    #: the device's last system describe (docs/reference/particle-ota.md §1.6 `m` list): what the healer reads
    modules: tuple = ()
    app_hash: str = ""
    pending_notified: bool = False
    retry_needed: bool = False
    transfer: Delivery | None = None
    last_heard_ms: int = 0
    safe_mode: bool = False
    downloads: dict[int, int] = field(default_factory=dict)  # version -> transfers begun
    check_target: int | None = None  # what the last connection's update check found (§7.8.1)
    #: a binary flashed to this one device (`PUT /v1/devices/:id` multipart), not yet landed
    direct_flash: bytes | None = None
    #: the confirmable messages of the current connection already read (CoAP deduplication)
    acked_tokens: set[int] = field(default_factory=set)

    def inputs(self) -> rules.TargetInputs:
        return rules.TargetInputs(self.development, self.desired_firmware_version, self.groups)


class SimCloud:
    """Implements `CloudPeer` for the devices and the REST semantics for the rig."""

    def __init__(self, world: "World", params: CloudParams | None = None) -> None:
        self.world = world
        self.sched = world.sched
        self.params = params or CloudParams()
        self.faults = CloudFaults()
        self.products: dict[int, Product] = {}
        self.devices: dict[str, DeviceRecord] = {}
        self.attached: dict[str, "Electron"] = {}
        self.events: list[dict] = []
        #: sequence number of the newest event on each product's stream (its SSE `id`), so the
        #: bench clock can wait until a rig-side stream has read everything published so far
        self.last_seq_by_product: dict[int, int] = {}
        self.subscribers: list[Callable[[dict], None]] = []
        self._ids = itertools.count(1)
        self.blackholed_ids: set[int] = set()
        #: one entry per transfer (`Delivery.log`): first chunk, chunks resent, outcome — so a
        #: test can show a failed transfer was retried from chunk 0 (docs/reference/particle-ota.md §7.9)
        self.transfer_log: list[dict] = []
        self.blackholed_transfers = 0
        #: modules the safe-mode healer can send, built on demand, by (function, index, version)
        #: (docs/reference/particle-ota.md §2.7)
        self.system_parts: dict[tuple[int, int, int], bytes] = {}

    # -- bookkeeping ----------------------------------------------------------------------------
    def add_product(self, product_id: int, name: str = "") -> Product:
        return self.products.setdefault(product_id, Product(product_id, name or f"product-{product_id}"))

    def attach(self, dev: "Electron", product_id: int, **fields: Any) -> DeviceRecord:
        """Register a simulated device as a member of a product."""
        self.add_product(product_id)
        rec = self.devices.get(dev.device_id) or DeviceRecord(dev.device_id, product_id, name=dev.device_id)
        for k, v in fields.items():
            setattr(rec, k, v)
        self.devices[dev.device_id] = rec
        self.attached[dev.device_id] = dev
        return rec

    def product(self, product_id: int) -> Product:
        try:
            return self.products[product_id]
        except KeyError:
            raise CloudError(404, f"Product {product_id} not found") from None

    def device(self, device_id: str) -> DeviceRecord:
        try:
            return self.devices[device_id]
        except KeyError:
            raise CloudError(404, f"Device {device_id} not found") from None

    def published_at(self) -> str:
        t = EPOCH + dt.timedelta(milliseconds=self.sched.now_ms)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"

    def stream_event(self, rec: DeviceRecord | None, name: str, data: str, *, product_id: int | None = None) -> dict:
        """Append to the event stream (docs/reference/particle-ota.md §1.6 event list) and notify subscribers."""
        ev = {"name": name, "data": data, "ttl": 60, "published_at": self.published_at(),
              "coreid": rec.device_id if rec else "particle-internal"}
        pid = rec.product_id if rec else product_id
        if pid is not None:
            ev["productID"] = pid
        if rec is not None and rec.running_version is not None:
            ev["version"] = rec.running_version
        ev["t_ms"] = self.sched.now_ms
        ev["seq"] = len(self.events) + 1
        if pid is not None:
            self.last_seq_by_product[pid] = ev["seq"]
        self.events.append(ev)
        for fn in list(self.subscribers):
            fn(ev)
        return ev

    def send_to_device(self, rec: DeviceRecord, msg: object, nbytes: int, category: str,
                       *, reliable: bool = False) -> bool:
        dev = self.attached.get(rec.device_id)
        if dev is None:
            return False
        return dev.link.send("down", nbytes, category, lambda: dev.on_cloud_message(msg), reliable=reliable)

    def send_event(self, rec: DeviceRecord, name: str, data: str) -> None:
        msg = CloudEvent(name, data)
        self.send_to_device(rec, msg, msg.wire_bytes, "system", reliable=True)

    # -- targets ---------------------------------------------------------------------------
    def target(self, rec: DeviceRecord) -> int | None:
        return rules.target_version(rec.inputs(), self.products[rec.product_id].releases)

    def needs_update(self, rec: DeviceRecord) -> bool:
        return rules.needs_update(self.target(rec), rec.running_version) and not rec.safe_mode

    # -- CloudPeer: device → cloud ---------------------------------------------------------------
    def device_hello(self, dev: "Electron", hello: Hello) -> None:
        rec = self.devices.get(dev.device_id)
        if rec is None:
            return  # not a product device we know: no answer (connect times out)
        now = self.sched.now_ms
        s = rec.session
        resumed = bool(hello.session_id and s and s.session_id == hello.session_id and not s.dropped
                       and not rules.session_expired(established_ms=s.established_ms, now_ms=now,
                                                     max_age_ms=self.params.session_max_age_ms))
        if hello.session_id and not resumed:
            # docs/reference/particle-ota.md §1.2, §8.13: the device resumed, locally, a session this cloud no
            # longer has; it cannot read it. "alert": a DTLS alert back; "silence": nothing at all.
            if self.params.unknown_session_answer == "alert":
                self.send_to_device(rec, SessionAlert(hello.session_id), 40, "control", reliable=True)
            return
        rec.acked_tokens.clear()  # message IDs are per connection
        if rec.transfer is not None:
            rec.transfer.device_gone()  # a new connection: the device's side of that transfer is gone (§2.4)
        if not resumed:
            rec.session = s = CloudSession(f"sess-{next(self._ids)}", now)
        was_online = rec.online
        rec.online = True
        rec.last_heard_ms = now
        if hello.hello_sent or not resumed:
            rec.running_version = hello.product_version
            rec.system_version = hello.system_version
            rec.modules = hello.modules
            rec.app_hash = hello.app_hash
            rec.safe_mode = hello.safe_mode
        total = RESUME_BYTES if resumed else FULL_HANDSHAKE_BYTES
        size = total - total // 2  # the device sent the other half with its hello
        dev.link.send("down", size, "resume" if resumed else "handshake",
                      lambda: dev.on_cloud_message(SessionReply(s.session_id, resumed)), reliable=True)
        if not was_online:
            self.stream_event(rec, "spark/status", "online")
        if rec.safe_mode and (hello.hello_sent or not resumed):
            # docs/reference/particle-ota.md §1.6, §2.7: the modules JSON, once per safe-mode step
            self.stream_event(rec, "spark/status/safe-mode",
                              json.dumps({"p": 10, "m": list(rec.modules)}, separators=(",", ":")))
        # The check happens at the handshake: a release made after it waits for the next one.
        is_check = rules.connection_is_check(resumed=resumed, hello_sent=hello.hello_sent,
                                             check_on_resume=self.params.check_on_resume)
        rec.check_target = self.target(rec) if is_check else None
        self._schedule_renegotiation(rec)
        offer_ms = self.params.handshake_offer_ms
        if is_check and offer_ms is not None:
            # docs/reference/particle-ota.md §8.15: the cloud acts on its check this soon after the HELLO
            self.sched.after(offer_ms, lambda: self._after_connect(rec, begin_delay_ms=0))
        else:
            self.sched.after(self.delay_ms(rec, "pending_false") + dev.link.transfer_ms(100),
                             lambda: self._after_connect(rec))

    def delay_ms(self, rec: DeviceRecord, name: str) -> int:
        """The cloud's delay `name` before acting for `rec` this time: `<name>_delay_ms` plus a seeded
        draw within `<name>_spread_ms` (`CloudParams`), from the device's stream of that name."""
        base = getattr(self.params, f"{name}_delay_ms")
        spread = getattr(self.params, f"{name}_spread_ms")
        return spread_ms(self.world.rng("cloud", rec.device_id, name), base, spread)

    def _schedule_renegotiation(self, rec: DeviceRecord) -> None:
        """docs/reference/particle-ota.md §1.2: "Sessions are automatically renegotiated every 3 days" (cloud-enforced)."""
        s = rec.session
        assert s is not None

        p = self.params

        def expire() -> None:
            if rec.session is s and not s.dropped:
                s.dropped = True  # the next connection is a full handshake
        self.sched.at(s.established_ms + p.session_max_age_ms, expire)
        draw = random.Random(self.world.derive_seed("renegotiation", rec.device_id, s.session_id)).random()
        delay = rules.renegotiation_delay_ms(mode=p.renegotiation, max_age_ms=p.session_max_age_ms,
                                             lag_max_ms=p.renegotiation_lag_max_ms, draw=draw)
        if delay is None:
            return

        def renegotiate() -> None:
            if rec.session is s:
                self.renegotiate(rec)
        self.sched.at(s.established_ms + delay, renegotiate)

    def renegotiate(self, rec: DeviceRecord) -> bool:
        """docs/reference/particle-ota.md §1.2 handle_key_change → DISCARD_SESSION: the connected device
        must handshake again; a transfer in progress ends with `firmware_update failed` (§2.2).
        Whether it was sent (the device is online with a session)."""
        s = rec.session
        if s is None or not rec.online:
            return False
        s.dropped = True
        return self.send_to_device(rec, SessionDiscard(s.session_id), 60, "control", reliable=True)

    def _after_connect(self, rec: DeviceRecord, *, begin_delay_ms: int | None = None) -> None:
        """Triggers that follow a connection (docs/reference/particle-ota.md §7.8.1, §7.8.5, §7.8.7);
        `begin_delay_ms` replaces the drawn `update_begin` delay of a delivery started here."""
        if not rec.online:
            return
        dev = self.attached[rec.device_id]
        if rec.firmware_updates_forced and self.params.resend_forced_on_connect and not dev.flags.updates_forced:
            self.send_event(rec, "particle/device/updates/forced", "true")
        if rec.direct_flash is not None and rec.transfer is None and \
                rules.updates_allowed(enabled=rec.firmware_updates_enabled, forced=rec.firmware_updates_forced):
            self._deliver_direct(rec)
            return
        if self.params.pending_false_on_every_connect and self.needs_update(rec) and rec.transfer is None:
            # docs/reference/particle-ota.md §2.1, §8.3 (parameter): pending=false after every connection,
            # though an update still waits; pending_notified stays, so enabling updates still brings it (§7.8.3)
            self.send_event(rec, "particle/device/updates/pending", "false")
        action = rules.after_connect_action(
            needs_update=self.needs_update(rec), busy=rec.transfer is not None,
            checked=rec.check_target is not None, retry_needed=rec.retry_needed,
            pending_notified=rec.pending_notified,
            allowed=rules.updates_allowed(enabled=rec.firmware_updates_enabled, forced=rec.firmware_updates_forced),
            renotify_pending=self.params.renotify_pending_on_connect)
        if action == "clear":
            if rec.safe_mode:
                self._heal(rec)
                return
            rec.pending_notified = False
            self.send_event(rec, "particle/device/updates/pending", "false")  # §7.8.7
        elif action == "deliver":  # the handshake's check found an update, or a retry
            self.stream_event(rec, "spark/status", "auto-update")
            self.start_delivery(rec, begin_delay_ms=begin_delay_ms)
        elif action == "renotify":
            self.send_event(rec, "particle/device/updates/pending", "true")

    def device_message(self, dev: "Electron", msg: object) -> None:
        rec = self.devices.get(dev.device_id)
        if rec is None or not rec.online:
            return  # no session to read it with (a resume the cloud did not know, §8.13)
        rec.last_heard_ms = self.sched.now_ms
        if isinstance(msg, Confirmable):
            # docs/reference/particle-ota.md §7.3: acknowledged at once; a retransmission is read only once
            self.send_to_device(rec, Ack(msg.token), 40, "control", reliable=True)
            if msg.token in rec.acked_tokens:
                return
            rec.acked_tokens.add(msg.token)
            msg = msg.inner
        if isinstance(msg, Ping):
            self.send_to_device(rec, PingAck(), 40, "control", reliable=True)  # docs/reference/particle-ota.md §1.2
            return
        if isinstance(msg, BeginReply) or isinstance(msg, DoneReply):
            t = rec.transfer
            if t is not None and t.transfer_id == msg.transfer_id:
                if isinstance(msg, BeginReply):
                    t.begin_reply(msg)
                else:
                    t.done_reply(msg)
            return
        if isinstance(msg, CloudEvent):
            self._device_event(rec, msg)

    def _device_event(self, rec: DeviceRecord, ev: CloudEvent) -> None:
        self.stream_event(rec, ev.name, ev.data)
        if ev.name == "particle/device/updates/enabled":
            rec.firmware_updates_enabled = ev.data == "true"
            if rec.firmware_updates_enabled and rec.direct_flash is not None and rec.transfer is None:
                self._deliver_direct(rec)
                return
            # docs/reference/particle-ota.md §7.8.3: the device reports enabled while an update waits for it
            if rec.transfer is None and rules.deliver_on_enabled(
                    enabled=rec.firmware_updates_enabled, needs_update=self.needs_update(rec),
                    pending_notified=rec.pending_notified, retry_needed=rec.retry_needed,
                    last_release_intelligent=self.products[rec.product_id].releases.last_release_intelligent):
                self.start_delivery(rec)
        elif ev.name == "particle/device/updates/forced":
            # docs/reference/particle-ota.md §7.8.5: after the device echoes forced=true, deliver
            if rec.transfer is None and rules.deliver_on_forced_echo(
                    echoed_forced=ev.data == "true", forced_setting=rec.firmware_updates_forced,
                    needs_update=self.needs_update(rec)):
                self.start_delivery(rec)
        elif ev.name == "spark/device/session/end":
            # docs/reference/particle-ota.md §1.3 / §8.10: the cloud drops the DTLS session; the next connect is a full handshake
            if rec.session is not None:
                rec.session.dropped = True

    def device_disconnected(self, dev: "Electron", graceful: bool) -> None:
        """The device said goodbye (`graceful`), or went away without a word: then the cloud learns of it
        only when the device's keep-alive is overdue (docs/reference/particle-ota.md §8.14), unless the
        device connects again first; meanwhile a transfer goes on into the void and may be resent.

        Either way the cloud keeps the device's session (docs/reference/particle-ota.md §1.3, §3.3,
        [inference]: the goodbye carries reasons, not a request to drop it, device-os v2.3.1
        communication/src/dtls_protocol.h:82-99; the device keeps its own, system/src/system_task.cpp
        :601-625; AN028 checks for updates by such a reconnect and is answered). Only
        `spark/device/session/end`, the cloud's renegotiation or a new full handshake replace it."""
        rec = self.devices.get(dev.device_id)
        if rec is None or not rec.online:
            return
        if not graceful:
            heard = rec.last_heard_ms
            self.sched.at(max(heard + self.params.offline_after_silence_ms, self.sched.now_ms),
                          lambda: self._silence_over(rec, heard))
            return
        self._gone_offline(rec)

    def _silence_over(self, rec: DeviceRecord, heard_ms: int) -> None:
        if rec.online and rec.last_heard_ms == heard_ms:
            self._gone_offline(rec)

    def _gone_offline(self, rec: DeviceRecord) -> None:
        rec.online = False
        self.stream_event(rec, "spark/status", "offline")
        if rec.transfer is not None:
            rec.transfer.device_gone()

    # -- delivery -------------------------------------------------------------------------------
    def start_delivery(self, rec: DeviceRecord, version: int | None = None, binary: bytes | None = None,
                       *, begin_delay_ms: int | None = None) -> bool:
        """DELIVER (docs/reference/particle-ota.md §7.9) the product firmware `version` (default: the target), or
        `binary`; UpdateBegin goes out after `begin_delay_ms`, else after the drawn `update_begin` delay."""
        version = version if version is not None else self.target(rec)
        if binary is None:
            product = self.products[rec.product_id]
            fw = product.firmwares.get(version) if version is not None else None
            if fw is None:
                return False
            binary = fw.binary
        if version is None or not rec.online or rec.transfer is not None:
            return False
        rec.retry_needed = False
        rec.transfer = Delivery(self, rec, version, binary, next(self._ids), self._delivery_ended)
        delay = self.delay_ms(rec, "update_begin") if begin_delay_ms is None else begin_delay_ms
        self.sched.after(delay, rec.transfer.start)
        return True

    def _deliver_direct(self, rec: DeviceRecord) -> bool:
        assert rec.direct_flash is not None
        return self.start_delivery(rec, _product_version(rec.direct_flash), rec.direct_flash)

    def flash_device(self, device_id: str, binary: bytes, product_id: int | None = None) -> dict:
        """`PUT /v1/devices/:id` with a .bin (`particle flash <device> <file.bin>`, docs/reference/particle-ota.md §1.6).

        The cloud checks that it is a module for the Electron (platform 10) and sends it as is; the
        device validates it (HAL_FLASH_End, docs/reference/particle-ota.md §2.5). A device with updates disabled answers
        5.03, so the binary waits for it like an Intelligent release: `updates/pending=true`, then
        delivery when it reports updates enabled or reconnects [inference: the cloud's handling of
        a direct flash to a device with updates disabled is not documented].
        """
        rec = self.device(device_id)
        if product_id is not None and rec.product_id != product_id:
            raise CloudError(404, f"Device {device_id} is not in product {product_id}")
        try:
            info = firmware.parse(binary)
        except firmware.FirmwareError as exc:
            raise CloudError(400, f"Invalid firmware binary: {exc}") from None
        if info.platform_id != 10:
            raise CloudError(400, f"Firmware is for platform {info.platform_id}, device is platform 10 (Electron)")
        if not rec.online:
            raise CloudError(400, "Device is offline")
        if rec.transfer is not None:
            raise CloudError(400, "An update is already in progress")
        rec.direct_flash = binary
        self._deliver_direct(rec)
        return {"id": rec.device_id, "status": "Update started"}

    def _delivery_ended(self, t: Delivery, outcome: str) -> None:
        rec = t.rec
        if rec.transfer is t:
            rec.transfer = None
        self.transfer_log.append(t.log(outcome))
        direct = rec.direct_flash is not None and t.binary is rec.direct_flash
        if direct and outcome in ("success", "invalid"):
            rec.direct_flash = None  # landed, or rejected by the device: not retried
        if t.state == "done" or outcome != "refused":
            rec.downloads[t.version] = rec.downloads.get(t.version, 0) + 1
        if outcome == "refused":
            rec.pending_notified = True
            self.send_event(rec, "particle/device/updates/pending", "true")
            self.stream_event(rec, "particle/device/updates/pending", "true")
        elif outcome == "success":
            self.stream_event(rec, "spark/flash/status", "success ")
        else:
            self.stream_event(rec, "spark/flash/status", "failed ")
            rec.retry_needed = outcome == "failed"  # a rejected binary is not retried in a loop (§8.7)
            if rec.retry_needed:
                self.sched.after(self.delay_ms(rec, "retry"), lambda: self._retry(rec))

    def _retry(self, rec: DeviceRecord) -> None:
        if not (rec.retry_needed and rec.online and rec.transfer is None):
            return
        if rec.direct_flash is not None:
            self._deliver_direct(rec)
        elif self.needs_update(rec):
            self.start_delivery(rec)

    def _heal(self, rec: DeviceRecord) -> None:
        """docs/reference/particle-ota.md §2.7 / §7.8.6 / §2.9: deliver the next module a device in safe mode
        lacks, read from its describe — the bootloader first when needed, then the system parts of
        the oldest Electron release that meets the app's dependency, in dependency order (3 -> 1 -> 2),
        one per OTA and reset (`electron_modules.heal_step`; bootloader policy: §8.12 parameter)."""
        if rec.transfer is not None:
            return
        # what the app asks for, as the describe's user module states it (else the product's target)
        need = max((d["v"] for m in rec.modules if m["f"] == "u" for d in m.get("d", ()) if d["f"] == "s"),
                   default=0)
        if not need:
            target = self.target(rec) or rec.running_version
            fw = self.products[rec.product_id].firmwares.get(target) if target is not None else None
            if fw is None:
                return
            need = read_image(fw.binary).required_system_version
        step = heal_step(rec.modules, need, bootloader_on_major_move=self.params.heal_bootloader_on_major_move)
        if step is None:
            return
        key = (step.function, step.index, step.version)
        if key not in self.system_parts:
            self.system_parts[key] = (make_bootloader_image(step.version) if step.function == FUNCTION_BOOTLOADER
                                      else make_system_image(step.index, step.version))
        rec.transfer = Delivery(self, rec, -step.version, self.system_parts[key], next(self._ids),
                                self._delivery_ended)
        self.sched.after(self.delay_ms(rec, "update_begin"), rec.transfer.start)

    # -- REST semantics (docs/reference/particle-ota.md §1.6, docs/reference/particle-cloud-api.md §5) ---
    def upload_firmware(self, product_id: int, version: int, binary: bytes, title: str = "",
                        description: str = "") -> FirmwareRecord:
        product = self.product(product_id)
        try:
            image = read_image(binary)
        except ImageError as exc:
            raise CloudError(400, f"Invalid firmware binary: {exc}") from None
        # the version typed at upload must match the one compiled into the binary, and a binary
        # without PRODUCT_VERSION has none (docs.particle.io Device OS API "PRODUCT_VERSION()";
        # docs/reference/particle-cloud-api.md §5): refused, as the console refuses it
        if image.product_version == NO_PRODUCT_VERSION:
            raise CloudError(400, f"The binary has no PRODUCT_VERSION: its module info carries "
                                  f"{NO_PRODUCT_VERSION:#06x}, so it is not product firmware version {version}")
        if image.product_version != version:
            raise CloudError(400, f"Version {version} does not match the binary's PRODUCT_VERSION "
                                  f"{image.product_version}")
        if version in product.firmwares:
            raise CloudError(400, f"Version {version} already exists")
        fw = FirmwareRecord(version, binary, title or f"v{version}", description, self.sched.now_ms)
        product.firmwares[version] = fw
        self.stream_event(None, "particle/firmware/create", f'{{"version":"{version}"}}', product_id=product_id)
        return fw

    def release(self, product_id: int, version: int, *, product_default: bool = False,
                groups: list[str] | None = None, intelligent: bool = False) -> None:
        """docs/reference/particle-ota.md §7.8.2: a release event; Intelligent releases go to online devices at once."""
        product = self.product(product_id)
        if version not in product.firmwares:
            raise CloudError(404, f"Firmware version {version} not found")
        if not product_default and not groups:
            raise CloudError(400, "Specify product_default or groups")
        rel = product.releases
        if product_default:
            rel.default_release = version
        for g in groups or ():
            rel.group_releases[g] = version
        rel.last_release_intelligent = intelligent
        self.stream_event(None, "particle/firmware/release",
                          f'{{"immediate":{str(intelligent).lower()},"version":{version}}}', product_id=product_id)
        if not intelligent:
            return
        for rec in self.devices.values():
            if rec.product_id != product_id or rec.transfer:
                continue
            action = rules.intelligent_release_action(
                online=rec.online, needs_update=self.needs_update(rec),
                enabled=rec.firmware_updates_enabled, forced=rec.firmware_updates_forced)
            if action == "deliver":
                self.start_delivery(rec)
            elif action == "notify":
                rec.pending_notified = True
                self.send_event(rec, "particle/device/updates/pending", "true")
                self.stream_event(rec, "particle/device/updates/pending", "true")

    def update_device(self, product_id: int | None, device_id: str, **fields: Any) -> dict:
        """PUT /v1/products/:p/devices/:id — lock/unlock (+flash), development, forced, groups."""
        rec = self.device(device_id)
        if product_id is not None and rec.product_id != product_id:
            raise CloudError(404, f"Device {device_id} is not in product {product_id}")
        flash = bool(fields.pop("flash", False))
        if "desired_firmware_version" in fields:
            v = fields["desired_firmware_version"]
            if v is not None and v not in self.products[rec.product_id].firmwares:
                raise CloudError(404, f"Firmware version {v} not found")
            rec.desired_firmware_version = v
        if "development" in fields:
            rec.development = bool(fields["development"])
        if "groups" in fields:
            rec.groups = tuple(fields["groups"] or ())
        if "name" in fields:
            rec.name = str(fields["name"])
        if "firmware_updates_forced" in fields:
            rec.firmware_updates_forced = bool(fields["firmware_updates_forced"])
            if rec.online:
                self.send_event(rec, "particle/device/updates/forced", "true" if rec.firmware_updates_forced else "false")
        if flash and rec.online and self.needs_update(rec) and rec.transfer is None:
            self.start_delivery(rec)  # docs/reference/particle-ota.md §7.8.4: lock + flash now
        return self.device_json(rec)

    def device_json(self, rec: DeviceRecord) -> dict:
        dev = self.attached.get(rec.device_id)
        return {
            "id": rec.device_id, "name": rec.name, "product_id": rec.product_id, "platform_id": 10,
            "online": rec.online, "connected": rec.online, "development": rec.development,
            "firmware_product_id": rec.product_id, "firmware_version": rec.running_version,
            "desired_firmware_version": rec.desired_firmware_version,
            "targeted_firmware_release_version": self.target(rec), "groups": list(rec.groups),
            "firmware_updates_enabled": rec.firmware_updates_enabled,
            "firmware_updates_forced": rec.firmware_updates_forced,
            "system_firmware_version": release_name(rec.system_version) if rec.system_version else "2.3.1",
            "last_heard": self.published_at() if rec.online else None,
            "functions": dev.app.listing(0) if dev is not None and dev.app is not None else [],
            # what the running app registered, with the type it registered (a Cloud API reader
            # parses by it), not a name or type it did not
            "variables": dev.app.variable_types() if dev is not None and dev.app is not None else {},
        }

    def firmware_json(self, product_id: int, fw: FirmwareRecord) -> dict:
        """A product-firmware object (docs/reference/particle-cloud-api.md §5 "seen fields")."""
        rel = self.products[product_id].releases
        groups = sorted(g for g, v in rel.group_releases.items() if v == fw.version)
        running = sum(1 for r in self.devices.values() if r.product_id == product_id and r.running_version == fw.version)
        uploaded = (EPOCH + dt.timedelta(milliseconds=fw.uploaded_ms)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return {"version": fw.version, "title": fw.title, "description": fw.description, "name": "firmware.bin",
                "size": len(fw.binary), "product_default": rel.default_release == fw.version, "groups": groups,
                "uploaded_on": uploaded, "uploaded_at": uploaded, "product_id": product_id,
                "device_count": running, "current": rel.default_release == fw.version}

    def list_firmware(self, product_id: int) -> list[dict]:
        product = self.product(product_id)
        return [self.firmware_json(product_id, fw) for _, fw in sorted(product.firmwares.items())]

    def get_firmware(self, product_id: int, version: int) -> FirmwareRecord:
        fw = self.product(product_id).firmwares.get(version)
        if fw is None:
            raise CloudError(404, f"Firmware version {version} not found")
        return fw

    def edit_firmware(self, product_id: int, version: int, *, title: str | None = None,
                      description: str | None = None) -> FirmwareRecord:
        fw = self.get_firmware(product_id, version)
        if title is not None:
            fw.title = title
        if description is not None:
            fw.description = description
        return fw

    def delete_firmware(self, product_id: int, version: int) -> None:
        """Only unreleased firmware can be deleted (docs/reference/particle-cloud-api.md §5)."""
        self.get_firmware(product_id, version)
        rel = self.products[product_id].releases
        if rel.default_release == version or version in rel.group_releases.values():
            raise CloudError(400, f"Firmware version {version} is released and cannot be deleted")
        del self.products[product_id].firmwares[version]

    def list_devices(self, product_id: int | None = None) -> list[dict]:
        if product_id is not None:
            self.product(product_id)
        return [self.device_json(r) for r in self.devices.values() if product_id is None or r.product_id == product_id]

    def publish_to_devices(self, name: str, data: str, product_id: int | None = None) -> None:
        """An event published by the user: goes to the stream and to subscribed devices."""
        self.stream_event(None, name, data, product_id=product_id)
        for rec in self.devices.values():
            if rec.online and (product_id is None or rec.product_id == product_id):
                self.send_event(rec, name, data)

    def call_function(self, device_id: str, name: str, arg: str) -> int:
        rec = self.device(device_id)
        dev = self.attached.get(device_id)
        if not rec.online or dev is None:
            raise CloudError(400, f"Device {device_id} is offline")
        rv = dev.call_function(name, arg)
        if rv is None:
            raise CloudError(404, f"Function {name} not found")
        return rv

    def get_variable(self, device_id: str, name: str) -> str:
        rec = self.device(device_id)
        dev = self.attached.get(device_id)
        if not rec.online or dev is None:
            raise CloudError(400, f"Device {device_id} is offline")
        value = dev.get_variable(name)
        if value is None:
            raise CloudError(404, f"Variable {name} not found")
        return value


def _product_version(binary: bytes) -> int:
    """The PRODUCT_VERSION a module carries (0 when it has none), for delivery bookkeeping."""
    try:
        return firmware.parse(binary).product_version or 0
    except firmware.FirmwareError:
        return 0
