"""The virtual-time scheduler: ordering, cancellation, early stop (docs/design.md principle 4)."""
from otarig.sim.scheduler import Scheduler


def test_events_run_in_time_then_insertion_order():
    s = Scheduler()
    seen = []
    s.at(20, lambda: seen.append("b"))
    s.at(10, lambda: seen.append("a"))
    s.at(20, lambda: seen.append("c"))
    assert s.run_until(100) == 100
    assert seen == ["a", "b", "c"]


def test_cancelled_timer_never_runs_and_future_events_wait():
    s = Scheduler()
    seen = []
    t = s.at(5, lambda: seen.append("x"))
    s.at(50, lambda: seen.append("late"))
    t.cancel()
    s.run_until(10)
    assert seen == [] and s.now_ms == 10
    s.run_until(50)
    assert seen == ["late"]


def test_request_stop_returns_at_the_instant_of_the_event():
    s = Scheduler()
    s.at(7, s.request_stop)
    s.at(9, lambda: None)
    assert s.run_until(1000) == 7
    assert s.run_until(1000) == 1000


def test_timers_scheduled_in_the_past_run_now():
    s = Scheduler()
    s.run_until(100)
    seen = []
    s.at(3, lambda: seen.append(s.now_ms))
    s.run_until(100)
    assert seen == [100]
