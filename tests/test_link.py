"""The cellular link: latency, outages, loss, byte accounting (docs/reference/particle-ota.md §4.3, §5)."""
from otarig.sim.link import CellularLink, ota_on_air_bytes
from otarig.sim.scheduler import Scheduler


def test_ota_on_air_bytes_matches_the_cli_formula_for_100_kb():
    # docs/reference/particle-ota.md §5: 102,400 B → 200 chunks → ≈117 KB on air
    assert ota_on_air_bytes(102_400) == 200 * 73 + 48 + 6 * 57 + 102_400
    assert 116_000 < ota_on_air_bytes(102_400) < 118_000


def test_delivery_after_latency_and_airtime_and_bytes_counted():
    s = Scheduler()
    link = CellularLink(s, "3g")
    got = []
    assert link.send("down", 7_500, "ota", lambda: got.append(s.now_ms))
    s.run_until(10_000)
    assert got == [1_000 + link.profile.one_way_latency_ms]
    assert link.stats.down["ota"] == 7_500


def test_outage_drops_messages_but_counts_bytes():
    s = Scheduler()
    link = CellularLink(s, "3g")
    link.add_outage(0, 5_000)
    got = []
    assert not link.send("up", 100, "events", lambda: got.append(1), reliable=True)
    s.run_until(6_000)
    assert got == [] and link.stats.up["events"] == 100 and link.stats.dropped == 1
    assert link.send("up", 100, "events", lambda: got.append(2))
    s.run_until(10_000)
    assert got == [2]


def test_random_loss_is_seeded():
    def run(seed):
        s = Scheduler()
        link = CellularLink(s, "lan", loss=0.3, seed=seed)
        return [link.send("down", 10, "x", lambda: None) for _ in range(50)]
    assert run(1) == run(1)
    assert run(1) != run(2)
    assert 0 < run(1).count(False) < 50
