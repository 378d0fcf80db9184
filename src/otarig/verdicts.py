"""Verdicts: plain functions over a `Timeline` (docs/design.md principle 5; docs/reference/particle-ota.md §7.10).

Each returns a `Verdict`; a failed one carries the slice of timeline that broke it, so the
report shows *why* without a debugger. They only read what a real rig can see: the board's
serial events, the cloud's event stream, the rig's own actions and injected faults.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .timeline import Entry, Timeline


@dataclass
class Verdict:
    name: str
    passed: bool
    message: str
    evidence: list[Entry] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def explain(self) -> str:
        head = f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.message}"
        if self.passed or not self.evidence:
            return head
        return head + "\n" + Timeline.render(self.evidence)


class VerdictFailed(AssertionError):
    """Raised by `require()`; its text is the verdict's explanation with its timeline slice."""


def require(verdict: Verdict) -> Verdict:
    if not verdict.passed:
        raise VerdictFailed(verdict.explain())
    return verdict


def _ok(name: str, msg: str) -> Verdict:
    return Verdict(name, True, msg)


def _fail(tl: Timeline, name: str, msg: str, at: float, *, before: float = 30.0, after: float = 5.0) -> Verdict:
    return Verdict(name, False, msg, tl.window(at - before, at + after))


def _board(tl: Timeline, board: str | None) -> list[Entry]:
    return tl.select(source=f"board:{board}" if board else "board")


def _boots(entries: list[Entry]) -> list[int]:
    """Indices of `hello` events: each starts a boot segment."""
    return [i for i, e in enumerate(entries) if e.kind == "hello"]


def update_began_in_idle_window(tl: Timeline, board: str | None = None, *, allow_forced: bool = False) -> Verdict:
    """Every `firmware_update begin` fell inside an idle window the guard had opened.

    With `allow_forced`, a begin after the cloud forced updates (docs/reference/particle-ota.md §1.5) is excused: a forced
    update overrides the app's choice by design.
    """
    name = "update began only inside an idle window"
    window_open = False
    forced = False
    begins = 0
    src = f"board:{board}" if board else "board"
    for e in tl.entries:
        if e.source == "rig" and e.kind == "force":
            forced = bool(e.get("forced"))
        elif e.source == "cloud" and e.kind == "particle/device/updates/forced":
            forced = forced or e.get("data") == "true"
        if not (e.source == src or e.source.startswith(src + ":")):
            continue
        if e.kind == "hello":
            window_open = False
        elif e.kind in ("boot", "state"):  # `state`: the app as it was when the scenario began
            window_open = bool(e.get("window_open", False))
        elif e.is_guard("window_open"):
            window_open = True
        elif e.is_guard("window_close"):
            window_open = False
        elif e.is_sys("firmware_update", "begin"):
            begins += 1
            if not window_open and not (allow_forced and forced):
                return _fail(tl, name, "firmware_update begin while the idle window was closed (app busy)", e.t)
    return _ok(name, f"{begins} update(s) began, all inside an idle window"
               + (" or forced by the cloud" if allow_forced and forced else ""))


def shutdown_before_reset(tl: Timeline, board: str | None = None) -> Verdict:
    """After an update began, the app shut down cleanly before the device reset."""
    name = "shutdown completed before reset"
    entries = _board(tl, board)
    in_update = False
    shut = False
    resets = 0
    for e in entries:
        if e.is_sys("firmware_update", "begin"):
            in_update = True
        elif e.is_guard("shutdown_complete"):
            shut = True
        elif e.kind == "hello":
            if in_update and not shut:
                return _fail(tl, name, "the device reset after an update without a completed shutdown", e.t)
            if in_update:
                resets += 1
            in_update = shut = False
        elif e.is_guard("shutdown_begin") and shut:
            shut = False  # a new shutdown cycle
    return _ok(name, f"{resets} update reset(s), each after shutdown_complete")


def no_record_lost(tl: Timeline, board: str | None = None) -> Verdict:
    """Every record acknowledged as persisted before a reset is recovered after it."""
    name = "no persisted record lost"
    entries = _board(tl, board)
    persisted = 0
    checked = 0
    for e in entries:
        if e.kind == "app" and e.get("action") == "record" and e.get("persisted"):
            persisted = max(persisted, int(e.get("seq", 0)))
        elif e.is_guard("shutdown_complete"):
            persisted = max(persisted, int(e.get("last_seq", 0)))
        elif e.kind == "boot":
            last = int(e.get("last_seq", 0))
            if last < persisted:
                return _fail(tl, name, f"record {persisted} was acknowledged as persisted but the device "
                                       f"booted with last_seq {last}", e.t)
            checked += 1
            persisted = last
    return _ok(name, f"{checked} boot(s) checked; highest persisted record {persisted}")


#: rig commands that disconnect the DUT on purpose: a cut they cause is the scenario's, not the app's
_RIG_CUTS = ("cloud", "cellular", "sleep", "reset")


def no_sleep_or_disconnect_during_download(tl: Timeline, board: str | None = None) -> Verdict:
    """docs/reference/particle-ota.md §7.10 fourth assertion: no sleep or disconnect between a
    `begin` and its end, unless the rig caused it.

    A disconnect ends a transfer *without* `firmware_update failed` (docs/reference/particle-ota.md
    §2.2, §2.4, corrected), so "its end" is `complete`, `failed`, a new `begin`, or a reboot
    (`hello`), and a cut download shows as the board's `cloud_status` `disconnecting`/`disconnected`
    inside that span — followed on the cloud's stream by `spark/flash/status` `failed` and, later, a
    new `begin` with no `complete` before it. A `failed` that comes before any disconnect is an
    error of the protocol's event loop or a rejected image (§2.2, §2.5), not the app's doing. A cut
    is excused when the rig caused it: a fault it injected, or one of its `cloud`/`cellular`/`sleep`/
    `reset` commands, between the `begin` and the cut. Only what a real bench sees is used.
    """
    name = "no sleep or disconnect during a download"
    src = f"board:{board}" if board else "board"

    def rig_caused(start: Entry, at: Entry) -> bool:
        if tl.select(source="fault", start=start.t, end=at.t):
            return True
        return bool(tl.select(source="rig", kind="command", start=start.t, end=at.t,
                              where=lambda x: x.get("cmd") in _RIG_CUTS))

    start: Entry | None = None
    cut: Entry | None = None
    downloads = 0
    for e in tl.entries:
        if not (e.source == src or e.source.startswith(src + ":")):
            continue
        ended = e.is_sys("firmware_update", "begin") or e.is_sys("firmware_update", "complete") or \
            e.is_sys("firmware_update", "failed") or e.kind == "hello"
        if start is not None and ended:
            if cut is not None and not rig_caused(start, cut):
                return _fail(tl, name, "the download was cut by a disconnect the rig did not cause (the app's "
                                       "own sleep or Particle.disconnect(); no `failed` follows a disconnect)", cut.t)
            start = cut = None
        if e.is_sys("firmware_update", "begin"):
            start, cut = e, None
            downloads += 1
        elif start is None:
            continue
        elif cut is None and (e.is_sys("cloud_status", "disconnecting") or e.is_sys("cloud_status", "disconnected")):
            cut = e
        elif e.kind == "log" and e.get("msg") == "sleep" and not rig_caused(start, e):
            return _fail(tl, name, "the app went to sleep during a download", e.t)
    if start is not None and cut is not None and not rig_caused(start, cut):
        return _fail(tl, name, "the download was cut by a disconnect the rig did not cause (the app's own "
                               "sleep or Particle.disconnect(); no `failed` follows a disconnect)", cut.t)
    return _ok(name, f"{downloads} download(s), none cut by the app's own sleep or disconnect")


def new_version_runs(tl: Timeline, expected: int, board: str | None = None, *, device_id: str | None = None) -> Verdict:
    """After the update's reset the board runs `expected`, and the cloud saw it online with it."""
    name = f"version {expected} runs and is reported to the cloud"
    hellos = [e for e in _board(tl, board) if e.kind == "hello"]
    if not hellos or hellos[-1].get("product_version") != expected:
        got = hellos[-1].get("product_version") if hellos else None
        at = hellos[-1].t if hellos else (tl.entries[-1].t if tl.entries else 0.0)
        return _fail(tl, name, f"board runs version {got}, expected {expected}", at)
    seen = [e for e in tl.select(source="cloud")
            if e.get("version") == expected and (device_id is None or e.get("coreid") == device_id)
            and e.t >= hellos[-1].t]
    if not seen:
        return _fail(tl, name, "the cloud never reported the new version after the reset", hellos[-1].t, after=600)
    return _ok(name, f"board booted version {expected} at {hellos[-1].t:.1f}s; cloud saw it at {seen[0].t:.1f}s")


def release_to_update_within(tl: Timeline, expected: int, budget_s: float, board: str | None = None) -> Verdict:
    """The time from the release (a rig action) to the new version booting is within budget."""
    name = f"release → version {expected} within {budget_s:g}s"
    releases = tl.select(source="rig", kind="release", where=lambda e: e.get("version") == expected)
    if not releases:
        return Verdict(name, False, "no release of this version in the timeline")
    t0 = releases[0].t
    booted = [e for e in _board(tl, board) if e.kind == "hello" and e.get("product_version") == expected and e.t >= t0]
    if not booted:
        return _fail(tl, name, "the new version never booted", tl.entries[-1].t, before=120)
    took = booted[0].t - t0
    if took > budget_s:
        return _fail(tl, name, f"took {took:.1f}s", booted[0].t)
    return _ok(name, f"took {took:.1f}s")


def no_update_loop(tl: Timeline, board: str | None = None, *, max_downloads: int = 1) -> Verdict:
    """One download per release: no repeated `complete` for a version already installed."""
    name = "no update loop"
    completes = [e for e in _board(tl, board) if e.is_sys("firmware_update", "complete")]
    if len(completes) > max_downloads:
        return _fail(tl, name, f"{len(completes)} complete downloads (expected at most {max_downloads})",
                     completes[max_downloads].t)
    return _ok(name, f"{len(completes)} complete download(s)")


def pending_honoured_within(tl: Timeline, seconds: float, board: str | None = None) -> Verdict:
    """A pending update begins within N s of the next idle window opening."""
    name = f"pending update honoured within {seconds:g}s of the next idle window"
    pending = False
    opened: Entry | None = None
    for e in _board(tl, board):
        if e.is_sys("firmware_update_pending"):
            pending = True
        elif e.is_guard("window_open") and pending:
            opened = e
        elif e.is_guard("window_close"):
            if opened is not None and e.t - opened.t > seconds:
                return _fail(tl, name, "the window stayed open without the pending update beginning", e.t)
            opened = None
        elif e.is_sys("firmware_update", "begin"):
            if opened is not None and e.t - opened.t > seconds:
                return _fail(tl, name, f"began {e.t - opened.t:.1f}s after the window opened", e.t)
            pending, opened = False, None
    return _ok(name, "every pending update began promptly")
