"""One tree of random streams per world, grown from the run's seed.

Every random choice of the simulated bench draws from a named stream (`("link", device_id,
"latency")`, `("cloud", device_id, "begin")`, ...), never from the global `random`: the same seed
gives the same draws in any process, and a component that draws more or less often shifts no
other component's draws (docs/design.md principle 4). A stream's seed is a hash of the run's seed
and the stream's name, stable across interpreters (Python's `hash()` of a str is not).
"""
from __future__ import annotations

import hashlib
import random


class SeedTree:
    """Named `random.Random` streams derived from one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._streams: dict[tuple[str, ...], random.Random] = {}

    def derive(self, *name: object) -> int:
        """A 32-bit seed for the stream called `name` (the same in every interpreter)."""
        text = "\0".join(map(str, (self.seed, *name))).encode()
        return int.from_bytes(hashlib.sha256(text).digest()[:4], "big")

    def stream(self, *name: object) -> random.Random:
        """The stream called `name`: created on first use, then the same object (it keeps its state)."""
        key = tuple(map(str, name))
        rng = self._streams.get(key)
        if rng is None:
            rng = self._streams[key] = random.Random(self.derive(*name))
        return rng


def spread_ms(rng: random.Random, base_ms: int, spread: int) -> int:
    """`base_ms` plus a uniform 0..`spread` ms, the latitude a parameter declares.

    A zero spread draws nothing, so a bench with all spreads at 0 runs the fixed timings exactly.
    """
    return base_ms + rng.randint(0, spread) if spread > 0 else base_ms
