"""The cloud as scenarios use it, over the Particle Cloud API on any bench (real or simulated).

Scenarios speak in *logical* versions (1 = the baseline, 2 and 3 = candidates). A real product
already has versions, and the cloud refuses to upload one that exists, so each run maps logical
versions onto product versions above the product's highest existing one (`VersionMap`); the
binaries uploaded carry the mapped version in their module suffix (docs/real-bench.md,
"Versions"). Releases go to the bench's device group only, never to the whole product.

Cloud events come in over one server-sent event stream on the product; their times are the
clock's business (`BenchClock.event_time`), and on a simulated bench the clock keeps the stream
in step with virtual time (`BenchClock.attach`). The Cloud does not replay what it sent while the
stream was down, so each interval the stream was not connected goes into the timeline too, as a
`cloud` `stream_gap` entry with `from`/`to` bench times (docs/reference/particle-cloud-api.md §3
"Gaps"); verdicts that conclude the cloud never got something do not judge what could have come then.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from . import firmware as fw
from .clock import BenchClock
from .cloud import CloudError, EventStream, ParticleCloud
from .verdicts import STREAM_GAP  # the timeline kind of an interval the rig's event stream was not connected

log = logging.getLogger(__name__)



#: a module's product version field when the app declares no PRODUCT_VERSION(x): the 0xFFFF the
#: Device OS linker leaves there (docs/reference/particle-cloud-api.md §5)
NO_PRODUCT_VERSION = 0xFFFF


class NoProductVersion(CloudError):
    """The cloud refused a binary that carries no product version: the firmware lacks
    PRODUCT_VERSION(x). No scenario can upload it, so the run stops at the first upload."""


class VersionMap:
    """Logical (scenario) versions ↔ product versions for one run.

    Each logical version 1..`span` has `variants` product versions, one per distinct binary of it
    this run uploads (a threaded and a non-threaded build are two binaries of version 2, and a
    product version names exactly one binary): product = offset + variant × span + logical.
    """

    def __init__(self, offset: int = 0, *, span: int = 3, variants: int = 4) -> None:
        if not 0 <= offset or offset + span * variants > 0xFFFF:
            raise ValueError(f"version offset {offset} leaves no room below 65535 (16-bit product versions)")
        self.offset, self.span, self.variants = offset, span, variants

    @classmethod
    def above(cls, existing: list[int], *, span: int = 3, variants: int = 4) -> "VersionMap":
        """A map whose product versions all lie above every version the product has."""
        top = max(existing, default=0)
        if top + span * variants > 0xFFFF:
            raise CloudError(f"the product's highest firmware version is {top}: no room for "
                             f"{span * variants} more below 65535 (PRODUCT_VERSION is 16-bit); "
                             "delete old versions in the console")
        return cls(top, span=span, variants=variants)

    def product(self, logical: int, variant: int = 0) -> int:
        if not 1 <= logical <= self.span or not 0 <= variant < self.variants:
            raise ValueError(f"logical version {logical} (binary #{variant + 1}) is outside this run's map "
                             f"(versions 1..{self.span}, {self.variants} binaries each)")
        return self.offset + variant * self.span + logical

    def logical(self, product: int | None) -> int | None:
        if product is None or product <= self.offset or product > self.offset + self.span * self.variants:
            return product  # not one of this run's versions: reported as the cloud has it
        return (product - self.offset - 1) % self.span + 1


@dataclass
class ApiCloudAccess:
    """`otarig.rig.CloudAccess` over `otarig.cloud.ParticleCloud` and a product event stream."""

    api: ParticleCloud
    product_id: int
    clock: BenchClock
    group: str
    versions: VersionMap = field(default_factory=VersionMap)
    #: product versions uploaded by this run, and the SHA-256 of what was uploaded
    uploaded: dict[int, str] = field(default_factory=dict)
    #: logical version → SHA-256 of each distinct binary of it seen this run (its variant slots)
    slots: dict[int, list[str]] = field(default_factory=dict)
    #: logical version → product version of its last upload
    current: dict[int, int] = field(default_factory=dict)
    #: the product version this run last released to the bench group
    group_release: int | None = None
    stream: EventStream | None = None
    #: how many of the stream's gaps are already in the timeline
    gaps_reported: int = 0
    #: the start of the drop the stream has not recovered from, once it is in the timeline as open
    open_gap_reported: float | None = None

    @classmethod
    def connect(cls, api: ParticleCloud, product_id: int, clock: BenchClock, *, group: str,
                device_ids: list[str], allocate: bool = True) -> "ApiCloudAccess":
        """Check the token and product, allocate this run's versions, put the bench's devices in
        `group`, and open the product's event stream (before anything is published)."""
        existing = [int(f["version"]) for f in api.list_firmware(product_id)]
        versions = VersionMap.above(existing) if allocate else VersionMap()
        access = cls(api, product_id, clock, group, versions)
        for did in device_ids:
            groups = set(api.device(did, product_id).get("groups") or [])
            if group not in groups:
                api.set_groups(did, sorted(groups | {group}), product_id)
        access.stream = api.events(product=product_id, now=clock.now)
        if not access.stream.wait_open(10):
            access.close()
            raise CloudError(f"the event stream of product {product_id} did not open within 10 s "
                             f"({api.api_url}); check the network and the token's scope")
        clock.attach(access.stream)
        return access

    # -- CloudAccess ------------------------------------------------------------------------------
    def product_version(self, binary: bytes, version: int) -> int:
        """The product version these bytes of logical `version` have in this run (the next free
        one for bytes not seen before)."""
        key = fw.parse(binary).sha256_computed
        slots = self.slots.setdefault(version, [])
        if key not in slots:
            slots.append(key)
        return self.versions.product(version, slots.index(key))

    def prepare(self, binary: bytes, version: int) -> bytes:
        """The binary as this run uploads or flashes it: its suffix carries its product version
        (a defective image — bad CRC or another platform — goes as it is)."""
        info = fw.parse(binary)
        if not info.crc_ok or info.platform_id != fw.ELECTRON_PLATFORM_ID:
            return binary
        if info.product_version == NO_PRODUCT_VERSION:
            return binary  # no PRODUCT_VERSION(x) in the app: not the rig's to make up; the cloud refuses it
        return fw.with_product(binary, product_id=self.product_id,
                               product_version=self.product_version(binary, version))

    def upload(self, version: int, binary: bytes, title: str = "") -> None:
        """Upload once per run; the same bytes again are a no-op. The last upload of a logical
        version is what `release` and `lock` of that version mean."""
        image = self.prepare(binary, version)
        info = fw.parse(image)
        product_version = (self.versions.product(version) if info.product_version == NO_PRODUCT_VERSION
                           else info.product_version or self.versions.product(version))
        if product_version not in self.uploaded:
            try:
                self.api.upload_firmware(product_version, image, title=title or f"otarig v{version}",
                                         description="uploaded by otarig", product=self.product_id)
            except CloudError as exc:
                if exc.status != 400 or info.product_version != NO_PRODUCT_VERSION:
                    raise
                raise NoProductVersion(
                    f"the cloud refused {title or f'version {version}'} as product firmware, its binary carries no "
                    f"product version ({exc}); what to change: add PRODUCT_VERSION(x) to your app's source, "
                    "beside PRODUCT_ID(...): Device OS puts the version in the module only through that macro "
                    "(docs/your-firmware.md)", exc.status, exc.error, exc.description) from None
            self.uploaded[product_version] = info.sha256_computed
        self.current[version] = product_version

    def _current(self, version: int) -> int:
        return self.current.get(version, self.versions.product(version))

    def release(self, version: int, *, intelligent: bool = False, groups: list[str] | None = None) -> None:
        product_version = self._current(version)
        self.api.release(product_version, groups=groups or [self.group], intelligent=intelligent,
                         product=self.product_id)
        if not groups or self.group in groups:
            self.group_release = product_version

    def lock(self, device_id: str, version: int | None, *, flash: bool = True) -> None:
        if version is None:
            self.api.unlock(device_id, self.product_id)
        else:
            self.api.lock(device_id, self._current(version), flash=flash, product=self.product_id)

    def force(self, device_id: str, forced: bool) -> None:
        self.api.force_updates(device_id, forced, self.product_id)

    def development(self, device_id: str, on: bool) -> None:
        """A development device keeps what it was flashed with: the product's release does not
        pull it back (the documented way to try a one-off binary on a product device)."""
        self.api.set_development(device_id, on, self.product_id)

    def flash(self, device_id: str, binary: bytes, version: int | None = None) -> None:
        """A cloud OTA of one binary to one device (as `particle flash <device> <file>`)."""
        image = self.prepare(binary, version) if version is not None else binary
        self.api.flash_device(device_id, image, product=self.product_id)

    def device(self, device_id: str) -> dict:
        info = dict(self.api.device(device_id, self.product_id))
        for key in ("firmware_version", "desired_firmware_version", "targeted_firmware_release_version"):
            if isinstance(info.get(key), int):
                info[key] = self.versions.logical(info[key])
        return info

    def variable(self, device_id: str, name: str) -> object:
        """A cloud variable's value as a dashboard reads it (`GET .../devices/:id/:name`,
        docs/reference/particle-cloud-api.md `get`): the device answers it."""
        return self.api.get(device_id, name, product=self.product_id)

    def new_events(self) -> list[dict]:
        """Events read since the last call, as timeline data (versions in logical terms)."""
        if self.stream is None:
            return []
        out = []
        # Every event of the product goes in, the app's own data too (the companion's
        # `otarig/telemetry`): verdicts compare the cloud's copy with what the app reported publishing
        # (verdicts.cloud_copy_names_published_records). Nothing on the bench publishes events of its
        # own; the `otarig/` prefix once kept out was the companion's telemetry, hidden by mistake.
        for ev in self.stream.drain():
            data: dict[str, Any] = {k: v for k, v in ev.raw.items() if k not in ("name",)}
            data["data"] = ev.data
            if isinstance(data.get("version"), int):
                data["version"] = self.versions.logical(data["version"])
            out.append({"name": ev.name, "t": self.clock.event_time(ev.published_at), **data})
        gaps = self.stream.gaps[self.gaps_reported:]
        self.gaps_reported += len(gaps)
        out.extend({"name": STREAM_GAP, "t": start, "from": round(start, 3), "to": round(end, 3)}
                   for start, end in gaps)
        # A drop not recovered from yet goes in as an open gap (no `to`) once, so that verdicts judged
        # while the stream is still down know it; its closed entry follows when the stream is back.
        down = self.stream.down_since
        if down is not None and down != self.open_gap_reported:
            self.open_gap_reported = down
            out.append({"name": STREAM_GAP, "t": down, "from": round(down, 3), "to": None, "open": True})
        return out

    # -- bench state --------------------------------------------------------------------------------
    def reset_device(self, device_id: str) -> None:
        """Clean cloud state before a scenario: updates not forced, not a development device, not locked."""
        info = self.api.device(device_id, self.product_id)
        if info.get("firmware_updates_forced"):
            self.api.force_updates(device_id, False, self.product_id)
        if info.get("development"):
            self.api.set_development(device_id, False, self.product_id)
        if info.get("desired_firmware_version") is not None:
            self.api.unlock(device_id, self.product_id)

    def reset_group(self, baseline: int, binary: bytes) -> None:
        """The bench group's release back to the baseline `binary`, if this run released something
        else to it (a Standard release of what the board runs: nothing is sent)."""
        self.upload(baseline, binary)
        product_version = self._current(baseline)
        if self.group_release not in (None, product_version):
            self.api.release(product_version, groups=[self.group], product=self.product_id)
            self.group_release = product_version

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None
