"""docs/reference/particle-ota.md §1.2 "Sessions are automatically renegotiated every 3 days": how the simulated cloud does it
for a device that stays connected (CloudParams.renegotiation, one rule shared with the planner)."""
from __future__ import annotations

import pytest

from otarig.sim.bench import SimBench
from otarig.sim.build import build_companion
from otarig.sim.images import make_app_image
from otarig.sim.params import DAY_MS, CloudParams

DID = "e00fce680000000000000001"


@pytest.fixture(scope="module")
def image() -> bytes:
    # The guard's own daily forced handshake is pushed out of the way (49 days) so only the cloud acts.
    so = build_companion(1, extra_defines={"OTARIG_HANDSHAKE_INTERVAL_MS": "4000000000UL"})
    return make_app_image(so, product_id=4242, product_version=1)


def _full_handshakes(image: bytes, params: CloudParams, days: int) -> tuple[int, list[int]]:
    bench = SimBench(seed=3, cloud_params=params)
    try:
        dev = bench.add_electron(DID, product_id=4242, image=image, with_port=False)
        bench.run_for(days * 24 * 3600)
        discards = [e.t_ms for e in dev.trace if e.kind == "session_discarded"]
        return dev.net.full_handshakes, discards
    finally:
        bench.close()


def test_expired_session_of_a_connected_device_is_discarded_within_the_lag(image):
    """Default "lag": the cloud discards a connected device's session 3 to 7 days after it began;
    the device handshakes again at once (docs/reference/particle-ota.md §1.2 DISCARD_SESSION)."""
    full, discards = _full_handshakes(image, CloudParams(), 15)
    assert discards, "the cloud never renegotiated"
    gaps = [b - a for a, b in zip([0] + discards, discards)]
    assert all(3 * DAY_MS <= g <= 7 * DAY_MS + 60_000 for g in gaps), gaps
    assert full == 1 + len(discards)


def test_at_expiry_renegotiates_every_3_days_and_next_connect_never(image):
    full, discards = _full_handshakes(image, CloudParams(renegotiation="at_expiry"), 10)
    assert len(discards) == 3 and full == 4
    full, discards = _full_handshakes(image, CloudParams(renegotiation="next_connect"), 10)
    assert discards == [] and full == 1
