"""The cellular link between a simulated Electron and the cloud.

Every message between device and cloud crosses a `CellularLink`: it adds latency and
serialisation time plus a latency jitter, can lose packets (both drawn from the world's seeded
streams, so a seed reproduces one run and another seed explores another interleaving), can be down
(scheduled outages, flaps, antenna off), and counts the bytes each side spent by category
so every test can report the data it cost (docs/reference/particle-ota.md §5).
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from .randomness import spread_ms
from .scheduler import Scheduler


@dataclass(frozen=True)
class LinkProfile:
    """Latency and throughput of a radio access technology.

    Figures are [inference] from docs/reference/particle-ota.md §5 ("roughly 5-10 KB/s effective 3G", "2G/GPRS ≈2-5 KB/s");
    no measured Electron figure exists (docs/reference/particle-ota.md §8.4).
    `jitter_ms`: each message's one-way latency is `one_way_latency_ms` plus a uniform 0..jitter
    (cellular round trips vary by tens to hundreds of ms [inference]; messages stay in order, as
    DTLS record sequence numbers and CoAP's one-at-a-time confirmable messages keep them, §7.9).
    `loss`: the chance an unreliable message (an OTA chunk) is lost (0 unless a profile says).
    """

    name: str
    one_way_latency_ms: int
    bytes_per_s: int
    jitter_ms: int = 0
    loss: float = 0.0


PROFILES: dict[str, LinkProfile] = {
    "2g": LinkProfile("2g", one_way_latency_ms=350, bytes_per_s=3_500, jitter_ms=250),
    "3g": LinkProfile("3g", one_way_latency_ms=120, bytes_per_s=7_500, jitter_ms=80),
    # E Series LTE (Cat M1): docs/reference/particle-ota.md §5 reference point, the Gen 3 LTE log's 9965 B in 1.9 s and
    # 373 KB in 73 s (≈5.1 KB/s effective); latency [inference].
    "ltem": LinkProfile("ltem", one_way_latency_ms=150, bytes_per_s=5_100, jitter_ms=100),
    "lan": LinkProfile("lan", one_way_latency_ms=5, bytes_per_s=1_000_000, jitter_ms=2),
}

#: docs/reference/particle-ota.md §1.2: "around 5-6 Kbytes" for a full handshake; "less than 200 bytes" for a resume.
FULL_HANDSHAKE_BYTES = 5_600
RESUME_BYTES = 180
#: docs/reference/particle-ota.md §4.3: the CLI's Electron estimate, per 512 B chunk: 16+29+28 bytes of overhead.
CHUNK_OVERHEAD_BYTES = 16 + 29 + 28
#: docs/reference/particle-ota.md §4.3 formula: 48 + 6·(29+28) fixed cost per OTA.
OTA_FIXED_BYTES = 48 + 6 * (29 + 28)
#: CoAP + DTLS framing of a small message (event, ack) [inference].
MESSAGE_OVERHEAD_BYTES = 57


def ota_on_air_bytes(size: int, chunk_size: int = 512) -> int:
    """docs/reference/particle-ota.md §4.3/§5: ceil(size/512)·(16+29+28) + 48 + 6·(29+28) + size."""
    chunks = -(-size // chunk_size)
    return chunks * CHUNK_OVERHEAD_BYTES + OTA_FIXED_BYTES + size


@dataclass
class LinkStats:
    """Bytes on air, by direction and category."""

    up: Counter = field(default_factory=Counter)
    down: Counter = field(default_factory=Counter)
    dropped: int = 0

    @property
    def total(self) -> int:
        return sum(self.up.values()) + sum(self.down.values())

    def as_dict(self) -> dict:
        return {"up": dict(self.up), "down": dict(self.down), "total": self.total, "dropped": self.dropped}


class CellularLink:
    """One device's radio path. `send()` schedules delivery or silently drops (like UDP/DTLS)."""

    def __init__(self, sched: Scheduler, profile: LinkProfile | str = "3g", *, loss: float | None = None,
                 seed: int = 0, jitter_rng: random.Random | None = None) -> None:
        """`loss` overrides the profile's; `seed` seeds the loss draws; `jitter_rng` draws each
        message's extra latency (None: no jitter, the profile's fixed latency)."""
        self.sched = sched
        self.profile = PROFILES[profile] if isinstance(profile, str) else profile
        self.loss = self.profile.loss if loss is None else loss
        self.rng = random.Random(seed)
        self.jitter_rng = jitter_rng
        self.stats = LinkStats()
        self._outages: list[tuple[int, int]] = []
        self.antenna_connected = True
        self._busy_until = {"up": 0, "down": 0}
        #: the last arrival scheduled per direction: jitter never reorders messages
        self._last_arrival = {"up": 0, "down": 0}

    # -- faults -------------------------------------------------------------------------
    def add_outage(self, start_ms: int, duration_ms: int) -> None:
        """Schedule a period with no coverage (docs/reference/instruments-and-faults.md A.3 #6, connectivity loss)."""
        self._outages.append((start_ms, start_ms + duration_ms))

    def add_flaps(self, start_ms: int, count: int, down_ms: int, up_ms: int) -> None:
        t = start_ms
        for _ in range(count):
            self.add_outage(t, down_ms)
            t += down_ms + up_ms

    def is_up(self, at_ms: int | None = None) -> bool:
        t = self.sched.now_ms if at_ms is None else at_ms
        if not self.antenna_connected:
            return False
        return not any(a <= t < b for a, b in self._outages)

    def next_change_ms(self) -> int | None:
        """When coverage next changes state (for devices waiting to register)."""
        now = self.sched.now_ms
        edges = sorted({e for span in self._outages for e in span if e > now})
        return edges[0] if edges else None

    # -- traffic ------------------------------------------------------------------------
    def transfer_ms(self, nbytes: int) -> int:
        return self.profile.one_way_latency_ms + (nbytes * 1000) // self.profile.bytes_per_s

    def send(self, direction: str, nbytes: int, category: str, deliver: Callable[[], None],
             *, reliable: bool = False) -> bool:
        """Put `nbytes` on air now; call `deliver` at the far end unless lost.

        Bytes are counted whether or not they arrive (they were transmitted). `reliable`
        messages (CoAP confirmable with retransmission) are not subject to random loss but
        still fail during an outage. Returns whether delivery was scheduled.
        """
        counter = self.stats.up if direction == "up" else self.stats.down
        counter[category] += nbytes
        now = self.sched.now_ms
        start = max(now, self._busy_until[direction])
        airtime = (nbytes * 1000) // self.profile.bytes_per_s
        self._busy_until[direction] = start + airtime
        arrive = start + airtime + self.latency_ms()
        if not self.is_up(now) or not self.is_up(arrive):
            self.stats.dropped += 1
            return False
        if not reliable and self.loss and self.rng.random() < self.loss:
            self.stats.dropped += 1
            return False
        arrive = max(arrive, self._last_arrival[direction])
        self._last_arrival[direction] = arrive
        self.sched.at(arrive, deliver)
        return True

    def latency_ms(self) -> int:
        """One message's one-way latency: the profile's, plus its jitter drawn from the seeded stream."""
        if self.jitter_rng is None:
            return self.profile.one_way_latency_ms
        return spread_ms(self.jitter_rng, self.profile.one_way_latency_ms, self.profile.jitter_ms)
