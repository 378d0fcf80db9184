"""The board pool (otarig.pool): one board per worker under an fcntl lock that a crashed worker
cannot keep, and `otarig run --workers 2` over the real command merging into one record."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otarig.config import BenchConfig
from otarig.pool import BoardLock, PoolError, claim_board, pool_args

REPO = Path(__file__).resolve().parents[1]
IDS = ["e00fce680000000000000001", "e00fce680000000000000002"]


def _sim(n: int) -> BenchConfig:
    return BenchConfig.model_validate({"boards": [{"id": i} for i in IDS[:n]]})


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from otarig.pool import BoardLock
    lock = BoardLock(Path(sys.argv[1]), sys.argv[2])
    print("held", flush=True)
    time.sleep(600)
""")


def test_a_board_held_by_a_live_worker_is_skipped_and_freed_when_it_is_killed(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), IDS[0]], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        cfg, lock = claim_board(_sim(2), tmp_path)
        assert [b.id for b in cfg.boards] == [IDS[1]] and lock is not None
        with pytest.raises(PoolError, match="no free board: all 2 boards"):
            claim_board(_sim(2), tmp_path)
        lock.release()
        holder.send_signal(signal.SIGKILL)  # a crashed worker: no cleanup of its own
        holder.wait(timeout=30)
        cfg, lock = claim_board(_sim(2), tmp_path)
        assert [b.id for b in cfg.boards] == [IDS[0]], "the kernel dropped the dead worker's lock"
        assert lock is not None
        lock.release()
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_is_exclusive_within_one_process_too(tmp_path: Path) -> None:
    first = BoardLock(tmp_path, IDS[0])
    with pytest.raises(BlockingIOError):
        BoardLock(tmp_path, IDS[0])
    first.release()
    BoardLock(tmp_path, IDS[0]).release()


def test_one_simulated_board_is_copied_into_each_worker(tmp_path: Path) -> None:
    cfg = _sim(1)
    assert claim_board(cfg, tmp_path) == (cfg, None)


def test_the_pool_is_refused_where_it_cannot_run() -> None:
    with pytest.raises(PoolError, match="expected 1 or more"):
        pool_args(_sim(1), 0)
    assert pool_args(_sim(1), 1) == []
    real = BenchConfig.model_validate({
        "bench": {"kind": "real"}, "cloud": {"api_url": "https://api.particle.io"},
        "firmware": {"versions": {"1": "v1.bin"}}, "boards": [{"id": i, "port": "/dev/null"} for i in IDS]})
    with pytest.raises(PoolError, match="runs on the simulated bench"):
        pool_args(real, 2)


def test_two_workers_share_the_scenarios_and_make_one_record(tmp_path: Path) -> None:
    report = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "otarig.cli", "run", "--workers", "2", "--report", str(report),
                           "-k", "lock_and_flash or reset_is_held"], cwd=REPO, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    record = json.loads((report / "certification.json").read_text())
    assert record["passed"] and record["summary"]["passed"] == 2
    assert {r["pool_worker"] for r in record["results"]} == {"gw0", "gw1"}
    assert len(list((report / "tests").glob("*/timeline.jsonl"))) == 2, "one timeline per scenario"
    junit = (report / "junit.xml").read_text()
    assert junit.count("<testcase") == 2
    # the controller drew both workers' pictures, each the one its timeline gives
    from otarig.plot import plot_timeline
    from otarig.timeline import Timeline

    for result in record["results"]:
        folder = Path(result["artifacts_dir"]) if result.get("artifacts_dir") else None
        folder = folder or next(p.parent for p in (report / "tests").glob("*/meta.json")
                                if json.loads(p.read_text())["name"] == result["name"])
        drawn = plot_timeline(Timeline.read_jsonl(folder / "timeline.jsonl"), tmp_path / "inline.png",
                              title=result["name"])
        assert (folder / "timeline.png").read_bytes() == drawn.read_bytes(), result["name"]


class _Item:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid


def test_longest_scenarios_start_first_on_different_workers_in_shares_the_scheduler_splits_by_count(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """xdist's work stealing hands worker k the next len/(N-k) items of the list; the order puts
    the longest known scenarios at the head of different shares, balances the shares' time, and
    counts a scenario never timed as the longest. Durations come from the file runs leave."""
    from otarig.pool import known_durations, longest_first, remember_durations

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    remember_durations({"week": 14.0, "busy": 5.5, "cli": 2.8, "a": 1.0, "b": 0.9, "c": 0.5, "d": 0.4})
    remember_durations({"e": 0.3})  # folded in, the others kept
    durations = known_durations()
    assert durations["week"] == 14.0 and durations["e"] == 0.3
    items = [_Item(n) for n in ("a", "b", "c", "d", "e", "cli", "new", "busy", "week")]
    longest_first(items, durations, 2)
    order = [i.nodeid for i in items]
    first, second = order[:4], order[4:]  # 9 items: the scheduler sends 9 // 2 = 4, then 5
    assert first[0] == "new" and second[0] == "week"  # never timed counts as longest
    assert sorted(order) == sorted(["a", "b", "c", "d", "e", "cli", "new", "busy", "week"])
    share_time = [sum(durations.get(n, 15.0) for n in share) for share in (first, second)]
    assert abs(share_time[0] - share_time[1]) < 5.0
    for share in (first, second):  # each share runs longest first
        times = [durations.get(n, 15.0) for n in share]
        assert times == sorted(times, reverse=True)
    (tmp_path / "otarig" / "scenario-durations.json").write_text("not json")
    assert known_durations() == {}
