"""The board pool: `otarig run --workers N` spreads the scenarios over N boards (docs/lab.md §4).

Each pytest-xdist worker claims one board of the bench file for its whole life with an fcntl
lock on a lock file per board: the kernel drops the lock when the worker's process ends, even
by SIGKILL, so a crashed worker never leaves a board taken. A worker runs its scenarios on its
board alone (the bench file narrowed to it). On the simulated bench every scenario has a world
of its own anyway: a bench file with one simulated board gives each worker its own copy of that
board (the same device ID, so a scenario's timeline does not depend on which worker ran it,
docs/design.md principle 4); one that lists several gives each worker one of them.

The workers write each scenario's artifacts (its one timeline, logs, meta.json) into the same
report folder and xdist's controller writes junit.xml, so `otarig run` builds one record as for
one worker. Loaded into pytest as a plugin (`-p otarig.pool`) only when N > 1.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from .config import BenchConfig, ConfigError
from .resources import cache_root

#: where a worker learns the pool's lock folder (set by the controller, inherited by workers)
LOCK_DIR_ENV = "OTARIG_POOL_LOCKS"
#: set by the controller: it draws the workers' timeline pictures, so they start no picture process
PICTURES_ENV = "OTARIG_POOL_PICTURES"


class PoolError(ConfigError):
    """The pool cannot be made on this bench; the message says why and what to do."""


def pool_args(cfg: BenchConfig, workers: int) -> list[str]:
    """pytest arguments for N workers ([] for one)."""
    if workers < 1:
        raise PoolError(f"--workers {workers}: expected 1 or more")
    if workers == 1:
        return []
    if not cfg.simulated:
        raise PoolError(f"--workers {workers}: the board pool runs on the simulated bench; a real bench (or a "
                        "stand-in) has one tester board and one PSU wired to one DUT, and one product's versions "
                        "and releases, so its scenarios run one at a time (docs/lab.md §4, what a real pool needs)")
    return ["-p", "xdist", "-p", "otarig.pool", f"--numprocesses={workers}", "--dist=worksteal"]  # long and short scenarios even out


class BoardLock:
    """An exclusive, non-blocking fcntl lock on `<folder>/<board id>.lock`, held while open."""

    def __init__(self, folder: Path, board_id: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{board_id}.lock"
        self.board_id = board_id
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())  # who holds it, for a person looking

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None


def claim_board(cfg: BenchConfig, folder: Path) -> tuple[BenchConfig, BoardLock | None]:
    """This worker's board: the first of the bench file's boards no live process holds, the file
    narrowed to it. With one board on the simulated bench each worker simulates its own copy."""
    if cfg.simulated and len(cfg.boards) == 1:
        return cfg, None
    for board in cfg.boards:
        try:
            lock = BoardLock(folder, board.id)
        except BlockingIOError:
            continue
        narrowed = cfg.model_copy(update={"boards": [board.model_copy(update={"role": "dut"})]})
        return narrowed, lock
    raise PoolError(f"no free board: all {len(cfg.boards)} boards of the bench file are held by other workers "
                    f"(lock files in {folder}); use --workers {len(cfg.boards)} or fewer")


_claimed: dict[str, tuple[BenchConfig, BoardLock | None]] = {}


def worker_bench(cfg: BenchConfig) -> BenchConfig:
    """In a pool worker, the bench narrowed to the worker's board (claimed once per process)."""
    folder = os.environ.get(LOCK_DIR_ENV)
    if not os.environ.get("PYTEST_XDIST_WORKER") or not folder:
        return cfg
    if "board" not in _claimed:
        _claimed["board"] = claim_board(cfg, Path(folder))
    return _claimed["board"][0]


# -- longest scenarios first ------------------------------------------------------------------------
# The pool's wall time is at least its longest scenario's; started last, that scenario keeps one
# worker busy while the others idle. Each run remembers how long every scenario took, and a pool
# run starts the ones that took longest last time first (longest-processing-time-first order).

def durations_file() -> Path:
    return cache_root() / "scenario-durations.json"


def known_durations() -> dict[str, float]:
    """nodeid → wall seconds it took (setup to teardown) in the latest run that ran it ({} when unreadable)."""
    try:
        data = json.loads(durations_file().read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}


def remember_durations(seen: dict[str, float]) -> None:
    """Fold a finished run's durations (setup to teardown) into the file (best effort: it only orders work)."""
    if not seen:
        return
    path = durations_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**known_durations(), **seen}, indent=0, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass


def longest_first(items: list[Any], durations: dict[str, float], workers: int) -> None:
    """Order in place for xdist's work-stealing scheduler, which hands each worker a contiguous
    share of the list by count (the first len/N to the first worker, …) and later lets an idle
    worker steal the tail of a busy one's queue. So the list becomes N shares of those sizes, each
    filled longest first onto the share with the least time so far, and each run longest first:
    the longest scenarios start at once on different workers, short ones are left to steal.
    A scenario never timed counts as the longest (it may be)."""
    never = max(durations.values(), default=0.0) + 1.0
    cost = {item.nodeid: durations.get(item.nodeid, never) for item in items}
    ranked = sorted(items, key=lambda item: -cost[item.nodeid])  # stable: ties keep the suite's order
    sizes, left = [], len(items)
    for i in range(max(workers, 1)):
        sizes.append(left // (max(workers, 1) - i))
        left -= sizes[-1]
    shares: list[list[Any]] = [[] for _ in sizes]
    totals = [0.0] * len(sizes)
    for item in ranked:
        open_shares = [k for k in range(len(sizes)) if len(shares[k]) < sizes[k]]
        k = min(open_shares, key=lambda k: (totals[k], k))
        shares[k].append(item)
        totals[k] += cost[item.nodeid]
    items[:] = [item for share in shares for item in share]


# -- pytest hooks (this module is a plugin in a pool run) -------------------------------------------

def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Every worker collects and must see the same order: all read the same file at start."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or config.getoption("numprocesses", 1) or 1)
    longest_first(items, known_durations(), workers)


#: the controller's picture process, drawing every worker's timeline pictures
_pictures: list[Any] = []


def pytest_configure(config: Any) -> None:
    """The controller names the lock folder (beside the report's artifacts) for its workers, and
    starts the one process that draws all their timeline pictures: one per worker imported
    matplotlib and warmed its own caches (docs/lab.md §4)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        from .pictures import TimelinePictures

        artifacts = Path(config.getoption("--otarig-artifacts")).resolve()
        os.environ[LOCK_DIR_ENV] = str(artifacts.parent / "pool-locks")
        os.environ[PICTURES_ENV] = "1"
        pictures = TimelinePictures()
        pictures.start()
        _pictures.append(pictures)


def pytest_runtest_logreport(report: Any) -> None:
    """In the controller: a worker's scenario has ended; its picture is drawn from its timeline."""
    picture = getattr(report, "otarig_picture", None)
    if picture and _pictures and not os.environ.get("PYTEST_XDIST_WORKER"):
        jsonl, png, title = picture
        _pictures[-1].submit(Path(jsonl), Path(png), title)


def pytest_unconfigure(config: Any) -> None:
    """The controller: once the last picture is drawn (the report embeds them)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.pop(LOCK_DIR_ENV, None)
        os.environ.pop(PICTURES_ENV, None)
        while _pictures:
            _pictures.pop().close()


def pytest_collection_finish(session: Any) -> None:
    """In a worker, what `otarig run` does around a one-worker run (`runner._long_lived_out_of_gc`,
    issue 15): what is alive once the suite is collected lives as long as the worker, so it is
    frozen out of the worker's full garbage collections, each of which walked all of it again
    (~2 CPU-s of the workers' ~32 in a 2-worker run, docs/lab.md §4)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    import gc

    from . import compose, rig  # noqa: F401 - every scenario imports them: now, before the freeze
    from .sim import service  # noqa: F401

    gc.collect()
    gc.freeze()


def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """The controller collects nothing itself: the workers' collection gives `otarig run`'s
    progress its total and its list of scenarios (what never started, if interrupted)."""
    for plugin in node.config.pluginmanager.get_plugins():
        if hasattr(plugin, "collected") and hasattr(plugin, "progress") and not plugin.collected:
            plugin.collected = list(ids)
            if plugin.progress is not None and getattr(plugin, "task", None) is None:
                plugin.task = plugin.progress.add_task("scenarios", total=len(ids))
