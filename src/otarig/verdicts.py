"""Verdicts: plain functions over a `Timeline` (docs/design.md principle 5; docs/reference/particle-ota.md §7.10).

Each returns a `Verdict`; a failed one carries the slice of timeline that broke it, so the
report shows *why* without a debugger. They only read what a real rig can see: the board's
serial events, the cloud's event stream, the rig's own actions and injected faults.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .timeline import Entry, Timeline


@dataclass
class Verdict:
    """`message` says what happened; `fix`, on a failure, what to change in the firmware."""

    name: str
    passed: bool
    message: str
    evidence: list[Entry] = field(default_factory=list)
    fix: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def explain(self) -> str:
        head = f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.message}"
        if self.passed:
            return head
        if self.fix:
            head += f"\n  what to change: {self.fix}"
        return head + ("\n" + Timeline.render(self.evidence) if self.evidence else "")


class VerdictFailed(AssertionError):
    """Raised by `require()`; its text is the verdict's explanation with its timeline slice."""


def require(verdict: Verdict) -> Verdict:
    if not verdict.passed:
        raise VerdictFailed(verdict.explain())
    return verdict


def _ok(name: str, msg: str) -> Verdict:
    return Verdict(name, True, msg)


def _fail(tl: Timeline, name: str, msg: str, at: float, *, before: float = 30.0, after: float = 5.0,
          fix: str = "") -> Verdict:
    return Verdict(name, False, msg, tl.window(at - before, at + after), fix)


#: the hooks a firmware's test agent lists in `hello` (docs/protocol.md); absent = all of them
HOOK_WINDOW, HOOK_RECORDS = "window", "records"


def _lacks(tl: Timeline, board: str | None, hook: str) -> bool:
    """The board's firmware said (hello `hooks`) it does not report `hook`: a verdict over it is
    not applicable to this firmware (docs/your-firmware.md "Hooks")."""
    hellos = [e for e in _board(tl, board) if e.kind == "hello" and isinstance(e.get("hooks"), list)]
    return bool(hellos) and hook not in hellos[-1].get("hooks")


def _not_applicable(name: str, why: str) -> Verdict:
    return Verdict(name, True, f"not applicable to this firmware: {why}")


def _without_records(tl: Timeline, board: str | None, name: str) -> Verdict | None:
    """Not applicable when the firmware's test agent reports no records (no records hook)."""
    if _lacks(tl, board, HOOK_RECORDS):
        return _not_applicable(name, "its test agent reports no records (TestAgentApp.records/lastSeq)")
    return None


def _mode_of(tl: Timeline, board: str | None) -> tuple[str, bool]:
    """(system mode, threaded) the board's firmware reported in its last hello."""
    hellos = [e for e in _board(tl, board) if e.kind == "hello"]
    last = hellos[-1] if hellos else None
    return (str(last.get("mode", "")) if last else "", bool(last.get("threaded", True)) if last else True)


#: docs/reference/particle-ota.md §3.1: how to keep updates out from boot
FIX_BOOT = ("add SYSTEM_THREAD(ENABLED) or SYSTEM_MODE(SEMI_AUTOMATIC), call System.disableUpdates() in setup() "
            "and only then Particle.connect() (docs/reference/particle-ota.md §3.1; §7.10 first assertion)")


def _board(tl: Timeline, board: str | None) -> list[Entry]:
    return tl.select(source=f"board:{board}" if board else "board")


def _boots(entries: list[Entry]) -> list[int]:
    """Indices of `hello` events: each starts a boot segment."""
    return [i for i, e in enumerate(entries) if e.kind == "hello"]


def _forced_after(e: Entry, forced: bool) -> bool:
    """Whether the device's releases are forced once `e` is read: the rig's `force` entry sets it
    either way, and the cloud's `particle/device/updates/forced true` for it turns it on
    (docs/reference/particle-ota.md §2.1: a forced update is let in although updates are disabled)."""
    if e.source == "rig" and e.kind == "force":
        return bool(e.get("forced"))
    if e.source == "cloud" and e.kind == "particle/device/updates/forced":
        return forced or e.get("data") == "true"
    return forced


def update_began_in_idle_window(tl: Timeline, board: str | None = None, *, allow_forced: bool = False) -> Verdict:
    """Every `firmware_update begin` fell inside an idle window the guard had opened.

    With `allow_forced`, a begin after the cloud forced updates (docs/reference/particle-ota.md §1.5) is excused: a forced
    update overrides the app's choice by design.
    """
    name = "update began only inside an idle window"
    if _lacks(tl, board, HOOK_WINDOW):
        return _not_applicable(name, "its test agent reports no idle window (TestAgentApp.windowOpen)")
    window_open = False
    forced = False
    begins = 0
    src = f"board:{board}" if board else "board"
    for e in tl.entries:
        forced = _forced_after(e, forced)
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
                return _fail(tl, name, "firmware_update begin while the idle window was closed (app busy)", e.t,
                             fix="keep updates disabled (System.disableUpdates()) while the app works, from boot "
                                 "on; enable them only in an idle window, and re-disable them before work resumes "
                                 "(docs/reference/particle-ota.md §2.1, §3.1)")
    return _ok(name, f"{begins} update(s) began, all inside an idle window"
               + (" or forced by the cloud" if allow_forced and forced else ""))


def shutdown_before_reset(tl: Timeline, board: str | None = None) -> Verdict:
    """After an update began, or once Device OS announced a reset without one (`reset_pending`: a
    MODE double click's power-off, docs/reference/particle-ota.md §2.11), the app shut down cleanly
    before the device went down."""
    name = "shutdown completed before reset"
    entries = _board(tl, board)
    in_update = False
    announced = False  # `reset_pending` seen in this boot
    others = 0
    completed = False
    shut = False
    held = False
    resets = 0
    for e in entries:
        if e.is_sys("firmware_update", "begin"):
            in_update = True
        elif e.is_sys("firmware_update", "complete"):
            completed = True
        elif e.is_sys("reset_pending"):
            announced = True
        elif e.is_guard("shutdown_complete"):
            shut = True
        elif e.is_guard("reset_held"):
            held = True
        elif e.kind == "hello":
            # docs/reference/particle-ota.md §2.8: a non-threaded app is frozen until the transfer ends, so
            # a reset during it (the update watchdog, a power cut) leaves it no chance to shut down
            frozen = in_update and not completed and not _mode_of(tl, board)[1]
            if in_update and not shut and not frozen:
                what = ("the app held the reset but released it without a clean shutdown" if held else
                        "nothing held the reset, so Device OS reset the device as soon as the download completed "
                        "and the app never shut down (data not yet persisted is lost)")
                return _fail(tl, name, f"the device reset after an update without a completed shutdown: {what}",
                             e.t, fix="call System.disableReset() in setup(); on `reset_pending` (or "
                             "`firmware_update` complete) finish the work, persist it, report "
                             "agent.shutdownComplete(...), then System.enableReset() "
                             "(docs/reference/particle-ota.md §2.5, §7.10 third assertion)")
            if announced and not in_update and not shut:
                what = ("the app held it but let it go without a clean shutdown" if held else
                        "nothing held it, so Device OS went down at once and the app never shut down (data not "
                        "yet persisted is lost)")
                return _fail(tl, name, "the device went down after Device OS announced a reset without an update "
                                       f"(`reset_pending`, e.g. a MODE double click's power-off) and no completed "
                                       f"shutdown: {what}", e.t,
                             fix="call System.disableReset() in setup(); on `reset_pending` for any cause finish the "
                                 "work, persist it, report agent.shutdownComplete(...), then System.enableReset() "
                                 "(docs/reference/particle-ota.md §2.5, §2.11)")
            if in_update:
                resets += 1
            elif announced:
                others += 1
            in_update = completed = shut = announced = False
            held = False
        elif e.is_guard("shutdown_begin") and shut:
            shut = False  # a new shutdown cycle
    return _ok(name, f"{resets} update reset(s)" + (f" and {others} other announced reset(s)" if others else "")
               + ", each after shutdown_complete")


def shutdown_persists_every_record_taken(tl: Timeline, board: str | None = None) -> Verdict:
    """A clean shutdown leaves nothing in flight: when the app reports `shutdown_complete` with its
    last persisted record (`agent.shutdownComplete(records, lastSeq)`, docs/your-firmware.md step 2),
    every record it reported taking since its boot (`appRecord(seq, false)`) is at or below that
    number, and by its next boot it has reported each of those persisted (`appRecord(seq, true)`):
    the shutdown is what lets the reset go (docs/reference/particle-ota.md §2.5), so a record still
    in RAM then is lost with it, and one persisted but never reported leaves the rig unable to hold
    the next boot to it (found by generated defects: a shutdown that skipped the last transaction,
    and one that stopped reporting what it persisted, docs/selftest.md)."""
    name = "the shutdown persisted every record taken"
    taken: set[int] = set()
    acked: set[int] = set()
    owed: tuple[Entry, list[int]] | None = None  # the last shutdown, and the records it said it persisted
    checked = 0

    def unreported() -> Verdict | None:
        if owed is None:
            return None
        shutdown, seqs = owed
        missing = [q for q in seqs if q not in acked]
        if not missing:
            return None
        return _fail(tl, name, f"the app reported a clean shutdown with its last persisted record "
                               f"{shutdown.get('last_seq')}, but never reported record(s) {_seq_ranges(missing)} "
                               "persisted: what it says it wrote and what it acknowledged disagree", shutdown.t,
                     fix="call agent.appRecord(seq, true) for each record once it is persisted "
                         "(docs/your-firmware.md step 3)")

    for e in _board(tl, board):
        if e.kind == "hello":
            if (failed := unreported()) is not None:
                return failed
            taken.clear()
            acked.clear()
            owed = None
        elif e.kind == "app" and e.get("action") == "record" and isinstance(e.get("seq"), int):
            (acked if e.get("persisted") else taken).add(int(e.get("seq")))
        elif e.is_guard("shutdown_complete") and isinstance(e.get("last_seq"), int) and taken:
            checked += 1
            last = int(e.get("last_seq"))
            beyond = sorted(q for q in taken if q > last)
            if beyond:
                return _fail(tl, name, f"the app reported a clean shutdown with its last persisted record {last}, but "
                                       f"it had taken record(s) {_seq_ranges(beyond)} by then: they were still in RAM "
                                       "when the shutdown let the reset go, and are lost with it", e.t,
                             fix="in the shutdown path, finish the open transaction and persist every record taken "
                                 "before reporting agent.shutdownComplete(...) (docs/your-firmware.md step 2; "
                                 "docs/reference/particle-ota.md §2.5)")
            owed = (e, sorted(q for q in taken if q <= last))
    if (failed := unreported()) is not None:
        return failed
    if not checked:
        return _not_applicable(name, "no shutdown_complete with a last_seq after records the app reported taking")
    return _ok(name, f"{checked} shutdown(s), each with every record taken persisted and reported")


def _seq_ranges(seqs: list[int]) -> str:
    """1, 2, 3, 7 → "1-3, 7" (a sorted list)."""
    out: list[str] = []
    for q in seqs:
        if out and q == int(out[-1].split("-")[-1]) + 1:
            out[-1] = f"{out[-1].split('-')[0]}-{q}"
        else:
            out.append(str(q))
    return ", ".join(out)


#: what to change when records were lost after the rig damaged what the firmware stored
FIX_STORED_DATA = ("keep each record twice, each copy with its own CRC and its number, where one damaged put cannot "
                   "reach both; count a record as held when either copy checks and carries its number; and at boot "
                   "write again every copy that does not check, so that losing the other one later still leaves one "
                   "(docs/reference/particle-ota.md §2.10 \"Damaged stored data\")")


def _stored_data_faults(tl: Timeline, until: float) -> str:
    """The injected faults on what the firmware stored (simulated bench: `rig.sim.damage_eeprom`)
    up to `until`, said in a few words; "" when there were none (any real bench)."""
    faults = tl.select(source="fault", kind="eeprom_damage", end=until)
    if not faults:
        return ""
    said = "; ".join(f"{e.t:.1f}s: put {e.get('put')} back read {e.get('reads')}"
                     + (f" (bits {e.get('bits'):#04x})" if isinstance(e.get("bits"), int) else "") for e in faults[-3:])
    return f", after {len(faults)} injected fault(s) on what it wrote to EEPROM ({said})"


def no_record_lost(tl: Timeline, board: str | None = None) -> Verdict:
    """Every record acknowledged as persisted before a reset, or recovered at a boot, is recovered
    at every boot after it. When the rig damaged what the firmware stored (simulated bench), the
    explanation says so: the loss is then the firmware's lack of a second copy, or of the repair
    that writes a damaged copy again at boot."""
    name = "no persisted record lost"
    if (skip := _without_records(tl, board, name)) is not None:
        return skip
    entries = _board(tl, board)
    persisted = 0
    how = "acknowledged as persisted"
    checked = 0
    running: object = None  # the version the board reports (state, then each hello)
    writer: object = None   # the version that acknowledged the highest persisted record
    for e in entries:
        if e.kind in ("state", "hello") and e.get("product_version") is not None:
            running = e.get("product_version")
        elif e.kind == "app" and e.get("action") == "record" and e.get("persisted"):
            if int(e.get("seq", 0)) > persisted:
                persisted, writer, how = int(e.get("seq", 0)), running, "acknowledged as persisted"
        elif e.is_guard("shutdown_complete"):
            if int(e.get("last_seq", 0)) > persisted:
                persisted, writer, how = int(e.get("last_seq", 0)), running, "acknowledged as persisted"
        elif e.kind == "boot":
            last = int(e.get("last_seq", 0))
            if last == 0 < persisted and writer is not None and running is not None and writer != running:
                # an update between the writer and the reader, and the reader found nothing at all: the new
                # version does not read the old one's log (a partial loss is the commit's, below)
                return _fail(tl, name, f"the records version {writer} persisted (up to record {persisted}) were not "
                                       f"read by version {running}, which booted with none (last_seq 0): its record "
                                       "format or checksum is not the one the release before it wrote, so the "
                                       "update lost every record that release kept", e.t,
                             fix="keep the record layout and checksum of the release in the field, or have the new "
                                 "version convert the old records at its first boot (read the old format, write the "
                                 "new one) before it takes new ones (docs/reference/particle-ota.md §2.10)")
            if last < persisted:
                damaged = _stored_data_faults(tl, e.t)
                return _fail(tl, name, f"record {persisted} was {how} but the device booted with last_seq {last}"
                                       f"{damaged}", e.t,
                             fix=FIX_STORED_DATA if damaged else
                                 "report a record as persisted only once it is in EEPROM/flash, and commit it so "
                                 "that a reset or power cut cannot undo it, even one inside a flash write: a CRC "
                                 "per record and a second copy (docs/reference/particle-ota.md §2.10)")
            checked += 1
            if last > 0 or persisted > 0:
                how = f"recovered at the boot at {e.t:.1f}s"
            persisted, writer = last, running
    return _ok(name, f"{checked} boot(s) checked; highest persisted record {persisted}")


def record_count_never_drops(tl: Timeline, board: str | None = None) -> Verdict:
    """The number of records the app says it holds (at each shutdown and boot) never goes down, and
    is not 0 once a record is persisted: a count that drops or stays 0 means records acknowledged
    as kept are gone, or the log cannot say what it holds (found by a generated defect, docs/selftest.md).
    Nor is it above the last record's number: records are numbered from 1, one after another, so a
    higher count has a record counted twice or one counted that no copy holds (a check too loose).
    A wiped log (count and last record both 0) starts the count again."""
    name = "record count never drops"
    if (skip := _without_records(tl, board, name)) is not None:
        return skip
    held: int | None = None
    reports = 0
    taken = 0  # the highest record number the app reported or recovered so far
    for e in _board(tl, board):
        if e.kind in ("app", "state") and (e.get("seq") is not None or e.get("last_seq") is not None):
            if e.kind == "state" or e.get("action") == "record":
                taken = max(taken, int(e.get("seq") or e.get("last_seq") or 0))
            continue
        if e.is_guard("shutdown_complete"):
            count, last = e.get("records"), e.get("last_seq")
        elif e.kind == "boot":
            count, last = e.get("records_recovered"), e.get("last_seq")
        else:
            continue
        if count is None:
            continue
        count, last = int(count), int(last or 0)
        reports += 1
        fix = ("count what the log really holds, from what it wrote (e.g. add each committed batch's size; "
               "a ring's count stops at its capacity) and keep it with the records (docs/reference/particle-ota.md §2.10)")
        if last > 0 and count == 0:
            return _fail(tl, name, f"the app reports holding no record although record {last} is persisted", e.t,
                         fix=fix)
        if count > last:
            # numbered one after another from 1 (docs/protocol.md `app record`): no log holds more than `last`
            return _fail(tl, name, f"the app reports holding {count} records, but the highest it holds is record "
                                   f"{last}: records are numbered from 1, one after another, so it counts a record "
                                   f"twice or counts one it does not hold{_stored_data_faults(tl, e.t)}", e.t,
                         fix="count a record once, only when a copy of it checks and carries the number asked for "
                             "(docs/reference/particle-ota.md §2.10); " + fix)
        if held is not None and count < held and not (count == 0 and last == 0):
            never = (f" (its last record, {last}, is a number it never took: the highest it took is {taken}, so the "
                     "log now holds something it never wrote, e.g. a record copied from an uninitialised variable "
                     "whose own CRC checks)") if last > taken > 0 else ""
            if never:
                fix = ("write back (repair, copy) only a record just read from a copy whose CRC and number check, "
                       "never a variable a failed read left unset; " + fix)
            return _fail(tl, name, f"the app held {held} records, then reported {count}{never}"
                                   f"{_stored_data_faults(tl, e.t)}", e.t, fix=fix)
        held = count
        taken = max(taken, last)
    return _ok(name, f"{reports} report(s); the count never dropped")


#: how much longer than the run's quickest start a start may take (docs/your-firmware.md "Startup"):
#: room for an EEPROM page swap made by a repair at boot (a 64 KB sector erase, under 1.1 s on the
#: Electron's STM32F205, docs/reference/particle-ota.md §2.10) and the system's own start
STARTUP_GROWTH_MS = 2000


def startup_does_not_grow(tl: Timeline, board: str | None = None) -> Verdict:
    """The app's start (`boot` begun_ms: millis() when it called agent.begin(), once it loaded what
    it keeps) takes about as long at every boot of the same version: no more than the run's quickest
    start plus `STARTUP_GROWTH_MS`, or twice it. A start that grows with the records the device ever
    took (a loop over every number taken rather than over what the log holds; an emulated EEPROM
    read walks its whole page, §2.10) is fine on the bench and does not finish in time after a
    year in the field (found by a generated defect, docs/selftest.md). Boots of an AUTOMATIC
    non-threaded app are left out: Device OS runs its setup() only once connected (§3.1), so its
    start times the connection. Not applicable to a firmware whose agent reports no begun_ms."""
    name = "startup does not grow"
    quickest: dict[object, Entry] = {}
    boots: list[tuple[object, Entry]] = []
    version: object = None
    timed_connection = False
    for e in _board(tl, board):
        if e.kind == "hello":
            version = e.get("product_version")
            timed_connection = e.get("mode") == "AUTOMATIC" and e.get("threaded") is False
        elif e.kind == "boot" and isinstance(e.get("begun_ms"), int) and not timed_connection:
            boots.append((version, e))
            if version not in quickest or e.get("begun_ms") < quickest[version].get("begun_ms"):
                quickest[version] = e
    if not boots:
        return _not_applicable(name, "no boot reported when its app began (boot begun_ms)")
    for version, e in boots:
        best = quickest[version]
        took, least = int(e.get("begun_ms")), int(best.get("begun_ms"))
        if took > least + max(STARTUP_GROWTH_MS, least):
            return _fail(tl, name, f"the app took {took / 1000:.1f} s to start (to agent.begin()) at this boot, with "
                                   f"records up to {e.get('last_seq', '?')} behind it, against {least / 1000:.1f} s at "
                                   f"the quickest boot of version {version} (at {best.t:.0f}s, records up to "
                                   f"{best.get('last_seq', '?')}): a start that grows with the device's history will "
                                   "not finish in time after a year in the field", e.t,
                         fix="bound the work done at boot by what the log can hold (its capacity), not by the "
                             "numbers ever taken; each EEPROM get walks the whole emulated page "
                             "(docs/reference/particle-ota.md §2.10), so read each slot once")
    return _ok(name, f"{len(boots)} boot(s); the slowest start "
                     f"{max(int(e.get('begun_ms')) for _, e in boots) / 1000:.1f} s")


HOOK_READ_BACK = "read_back"


def record_count_matches_read_back(tl: Timeline, board: str | None = None) -> Verdict:
    """What the app says it holds is what it can read back: at each `read_back` reply (the agent
    walks the app's own read of its records, oldest first, and takes the app's count at the same
    instant; docs/protocol.md), the count equals the records read, they come in increasing order,
    and none is numbered above the highest the app reported taking. A count kept apart from the
    copies goes wrong only once a record is lost in every copy (found by a generated defect,
    docs/selftest.md): a fleet's dashboard would then promise a record nobody can fetch. Not
    applicable to a firmware without the read-back hook (TestAgentApp.readRecord)."""
    name = "record count matches what the app reads back"
    if _lacks(tl, board, HOOK_READ_BACK):
        return _not_applicable(name, "its test agent cannot read records back (TestAgentApp.readRecord)")
    taken = 0  # the highest record number the app reported taking or recovering
    checked = 0
    for e in _board(tl, board):
        if (e.kind == "app" and e.get("action") == "record") or e.kind in ("boot", "state"):
            taken = max(taken, int(e.get("seq") or e.get("last_seq") or 0))
            continue
        if not (e.kind == "reply" and e.get("cmd") == "read_back" and e.get("ok")):
            continue
        checked += 1
        readable, claimed = int(e.get("readable") or 0), e.get("records")
        first, last = e.get("first_seq"), e.get("last_seq")
        span = f" (records {first}-{last})" if readable else ""
        if isinstance(claimed, int) and claimed != readable:
            return _fail(tl, name, f"the app says it holds {claimed} record(s), but reads back {readable}{span}"
                                   f"{_stored_data_faults(tl, e.t)}", e.t,
                         fix="count what the log really holds: a record counts only while a copy of it checks "
                             "(recount from the copies after a repair; never count a slot because its number is "
                             "due), docs/reference/particle-ota.md §2.10")
        if not e.get("in_order", True):
            return _fail(tl, name, f"the app read its records back out of order{span}: a read by position returns "
                                   "a record it already returned, or one older than the one before", e.t,
                         fix="read the log oldest first, each position once (docs/your-firmware.md \"Hooks\")")
        if readable and isinstance(last, int) and taken and last > taken:
            return _fail(tl, name, f"the app read back record {last}, but the highest record it reported taking is "
                                   f"{taken}: its read returns a number it never wrote", e.t,
                         fix="return only a record whose copy checks and carries the number asked for "
                             "(docs/reference/particle-ota.md §2.10)")
    if not checked:
        return _ok(name, "no read-back asked")
    return _ok(name, f"{checked} read-back(s); each count matched the records read")


def record_numbers_go_up(tl: Timeline, board: str | None = None) -> Verdict:
    """The app numbers the records it takes one after another (docs/protocol.md `app record`): the
    first one after a boot is one more than the last record the log recovered (`boot` last_seq),
    each next one is one more than the one before. Records numbered twice cannot be told apart
    (found by a generated defect that stopped numbering), and a number skipped is a record a
    backend that finds losses by gaps in the numbers counts as lost (found by a generated defect
    that skipped one at every boot, docs/selftest.md)."""
    name = "record numbers go up"
    if (skip := _without_records(tl, board, name)) is not None:
        return skip
    last: int | None = None
    after_boot: Entry | None = None  # the boot report, until the first record taken after it
    taken = 0
    fix = ("number each record once, one more than the last one taken or recovered from the log at boot "
           "(docs/protocol.md `app record`)")
    for e in _board(tl, board):
        if e.kind == "boot":
            last = int(e.get("last_seq", 0) or 0)
            after_boot = e
        elif e.kind == "app" and e.get("action") == "record" and not e.get("persisted"):
            seq = int(e.get("seq", 0) or 0)
            if last is not None and seq <= last:
                return _fail(tl, name, f"record {seq} was taken after record {last}", e.t, fix=fix)
            if last is not None and seq > last + 1:
                since = (f"the app booted with its last record {last} (boot at {after_boot.t:.1f}s)"
                         if after_boot is not None else f"the record before it was {last}")
                return _fail(tl, name, f"record {seq} was taken next, but {since}: record(s) "
                                       f"{_seq_ranges(list(range(last + 1, seq)))} were never taken, and a backend "
                                       "counting gaps in the numbers sees them lost", e.t,
                             before=max(30.0, e.t - after_boot.t + 5) if after_boot is not None else 30.0, fix=fix)
            last = seq
            after_boot = None
            taken += 1
    return _ok(name, f"{taken} record(s) taken, numbered one after another")


def app_stays_down_during_update(tl: Timeline, board: str | None = None) -> Verdict:
    """Once the app has shut down for a transfer that began, it does no work until the transfer is
    over (a reset, `failed`, or a cloud disconnect, which ends it silently, docs/reference/particle-ota.md
    §2.2): work started mid-download is unpersisted work the reset can take (§2.5). Work may resume
    after a shutdown when the window closes before any transfer began (the guard takes the release back).
    Once the guard holds the reset to persist (`reset_held`), the app does no new work until the reset
    either, whether or not it had shut down before (a frozen non-threaded app has not, §2.8)."""
    name = "app stays down during an update"
    if (skip := _without_records(tl, board, name)) is not None:
        return skip
    shut = begun = held = False
    for e in _board(tl, board):
        if e.kind in ("hello", "boot"):
            shut = begun = held = False
        elif e.is_guard("reset_held"):
            held = True
        elif held and e.kind == "app" and e.get("action") == "record" and not e.get("persisted"):
            return _fail(tl, name, f"the app recorded {e.get('seq')} while the reset was held for persistence", e.t,
                         fix="when Device OS announces the reset (reset_pending) and it is held, persist and stop "
                             "the app's work at once, not when the hold ends (docs/reference/particle-ota.md §2.5)")
        elif e.is_guard("shutdown_complete"):
            shut = True
        elif e.is_sys("firmware_update", "begin"):
            begun = True
        elif e.is_sys("firmware_update", "failed") or e.is_sys("cloud_status", "disconnected"):
            shut = begun = False
        elif e.is_guard("window_close") and not begun:
            shut = False
        elif shut and begun and e.kind == "app" and e.get("action") == "record":
            return _fail(tl, name, f"the app recorded {e.get('seq')} after shutting down for a download that "
                                   "was still running", e.t,
                         fix="once a download has begun, keep the app shut down until the reset (or until the "
                             "transfer fails or the cloud disconnects); work that starts again is not persisted "
                             "before the reset (docs/reference/particle-ota.md §2.2, §2.5)")
    return _ok(name, "no work between a shutdown and the end of its download")


def records_published_once(tl: Timeline, board: str | None = None) -> Verdict:
    """Each record the app reports as published (`app publish` with `ok`) is published once: the
    numbers of its successful publishes go up, across resets too. A record sent again after a boot
    is a duplicate in the product's data (found by a generated defect that forgot, at boot, which
    records it had already sent, docs/selftest.md). A publish Device OS refused (`ok` false) may be
    tried again. Applies where the firmware reports its publishes (`agent.appPublish`,
    docs/your-firmware.md); nothing to check otherwise."""
    name = "each record published once"
    last: Entry | None = None
    sent = 0
    for e in _board(tl, board):
        if e.kind != "app" or e.get("action") != "publish" or not e.get("ok"):
            continue
        seq = int(e.get("seq", 0) or 0)
        if last is not None and seq <= int(last.get("seq", 0) or 0):
            boots = [b for b in _board(tl, board) if b.kind == "hello" and last.t < b.t <= e.t]
            after = " after a reset" if boots else ""
            return _fail(tl, name, f"record {seq} was published{after} when record {last.get('seq')} had already "
                                   f"been published at {last.t:.1f}s", e.t,
                         fix="publish each record once, in order: remember which records were sent (or that "
                             "everything recovered at boot was), and after a reset go on from the next one "
                             "(docs/reference/particle-ota.md §2.8: every publish also costs the rate limit)")
        last = e
        sent += 1
    if sent == 0:
        return _ok(name, "no publish reported")
    return _ok(name, f"{sent} record(s) published, each once, numbers going up")


def publishes_within_rate_limit(tl: Timeline, board: str | None = None) -> Verdict:
    """The app's publish attempts (`app publish`, refused ones too) keep to Device OS's limit for
    user events: an attempt is refused when the one four before it was less than 1 s earlier, and
    refused attempts count, so an app that tries faster is refused for good (docs/reference/particle-ota.md
    §2.8; device-os v2.3.1 communication/src/publisher.h ~72-85). Timed by the device's own clock
    (`device_t`), per boot (found by a generated defect that broke the app's 300 ms spacing,
    docs/selftest.md)."""
    name = "publishes within Device OS's rate limit"
    stamps: list[int] = []
    attempts = 0
    for e in _board(tl, board):
        if e.kind == "hello":
            stamps = []
        elif e.kind == "app" and e.get("action") == "publish" and e.device_t is not None:
            attempts += 1
            stamps.append(int(e.device_t))
            if len(stamps) >= 5 and stamps[-1] - stamps[-5] < 1000:
                return _fail(tl, name, f"5 publish attempts within {stamps[-1] - stamps[-5]} ms of device time "
                                       "(Device OS takes at most 4 a second and counts refused ones)", e.t,
                             fix="space user events at least 250 ms apart, counting refused attempts, e.g. one "
                                 "per loop pass at most every 300 ms (docs/reference/particle-ota.md §2.8)")
    return _ok(name, f"{attempts} publish attempt(s), never 5 within a second")


#: how late a record may come after its point on the declared grid, as a share of the period: the
#: app takes it at its first loop pass on or after that point (the companion: a 100 ms loop for a
#: 1 s period, so up to ~110 ms late), so an app whose busy loop runs at least 4 times a period meets it
CADENCE_LATE_SHARE = 0.25
#: how early a record may come (ms of device time): the `workload busy` line is stamped when it goes
#: out, a little after the app read the clock its grid starts from
CADENCE_EARLY_MS = 50


def _declared(e: Entry, key: str, current: float | None) -> float | None:
    """What the firmware declares under `key` once `e` (a hello, or a ping/status reply) is read: a
    hello declares afresh (absent: nothing), a reply repeats the hello's for a scenario that begins
    on a board booted long before and leaves `current` alone when it says nothing."""
    raw = e.get(key)
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw > 0:
        return float(raw)
    return None if e.kind == "hello" else current


def _device_ms(e: Entry) -> float:
    """The device's millis() for a board line, else its bench time in ms (a recorded log without `t`)."""
    return float(e.device_t) if e.device_t is not None else e.t * 1000.0


class _SystemHold:
    """Where Device OS runs no loop() of a non-threaded app, read from its board's entries in order:
    during a download (`firmware_update begin` until `complete`, `failed` or a cloud disconnect,
    docs/reference/particle-ota.md §2.2, §2.8) and while its cloud connection is being made
    (`cloud_status disconnected` until `connected`): a non-threaded SEMI_AUTOMATIC app gets no
    loop() then (§3.1; device-os v2.3.1 system/src/main.cpp:450-452, :474-480), nor does an
    AUTOMATIC one while Spark_Idle, called before each loop(), blocks in the modem's connect
    (main.cpp:469-470, system/src/system_network_cellular.h:74-77). A threaded app is never held.
    Threading is each hello's, else the timeline's last hello's (`_mode_of`)."""

    def __init__(self, tl: Timeline, board: str | None) -> None:
        self.threaded = _mode_of(tl, board)[1]
        self.downloading = self.connecting = False

    @property
    def held(self) -> bool:
        return not self.threaded and (self.downloading or self.connecting)

    def step(self, e: Entry) -> str | None:
        """Feed `e`: "start" when a hold begins at it, "end" when it ends there, else None."""
        before = self.held
        if e.kind == "hello":
            self.threaded = bool(e.get("threaded", True))
            self.downloading = self.connecting = False
        elif e.kind == "boot":
            self.downloading = self.connecting = False
        elif e.is_sys("firmware_update", "begin"):
            self.downloading = True
        elif e.is_sys("firmware_update", "complete") or e.is_sys("firmware_update", "failed"):
            self.downloading = False
        elif e.is_sys("cloud_status", "disconnected"):
            self.downloading, self.connecting = False, True
        elif e.is_sys("cloud_status", "connected"):
            self.connecting = False
        if self.held != before:
            return "start" if self.held else "end"
        return None


def records_keep_declared_cadence(tl: Timeline, board: str | None = None) -> Verdict:
    """While the app is busy and running, it takes records at the period it declares (hello
    `record_period_ms`, TestAgentInfo.recordPeriodMs): record k of a busy stretch comes at the
    stretch's start (`app workload busy`) + k periods, on the device's own clock, no more than
    `CADENCE_EARLY_MS` early and no more than `CADENCE_LATE_SHARE` of a period late, and none is
    missing when the stretch ends (a `busy` reported while busy starts no new one: the grid goes
    on). A stretch ends when the app goes idle, the guard shuts the app
    down or holds the reset for persistence, the rig puts it to sleep, or the device boots; work
    resumed after any of these is judged from the next `busy`. Device OS holding a non-threaded app
    (a download, a cloud connection being made: `_SystemHold`) ends a stretch too, and one still
    busy when the hold ends resumes there: its first record may come at once (the one the stall
    made due) and the grid goes on from it, so a burst of catch-up records after a stall fails.
    A record that starts a drive at once, or a cadence that drifts
    (each period measured from the last record, not from the grid), gives the product fewer
    records than it promises (found by generated defects, docs/selftest.md). Not applicable to a
    firmware that declares no period."""
    name = "records keep the declared cadence"
    period: int | None = None
    declared = False
    start: Entry | None = None
    taken = 0
    stretches = 0
    hold = _SystemHold(tl, board)
    busy = held_busy = False  # busy now; a stretch that a hold of Device OS interrupted
    recording = False  # the stretch has shown a record: the app runs
    anchor_free = False  # a resumed stretch: its first record sets the grid
    began = "began at"  # how a failure names the stretch's start
    fix = ("take record k of a busy stretch at the moment the app turned busy + k periods (advance the due time "
           "by one period per record, not from the last record's time), or declare the period the app really "
           "keeps (TestAgentInfo.recordPeriodMs, docs/your-firmware.md \"Record cadence\")")

    def missing(at: Entry) -> Verdict | None:
        if start is None or period is None:
            return None
        due = _device_ms(start) + (taken + 1) * period
        if _device_ms(at) > due + CADENCE_LATE_SHARE * period:
            return _fail(tl, name, f"record {taken + 1} of the busy stretch that {began} {start.t:.1f}s was due "
                                   f"{due - _device_ms(start):.0f} ms in (one every {period} ms declared) and had not "
                                   f"come {_device_ms(at) - due:.0f} ms later", at.t, fix=fix)
        return None

    for e in _board(tl, board):
        change = hold.step(e)
        if change == "start" and start is not None:
            # Device OS holds a non-threaded app (a download, a cloud connection being made): the
            # stretch pauses here and, if the app was taking records (it may be busy but shut
            # down), resumes where the hold ends while it is still busy
            if (recording or e.is_sys("firmware_update", "begin")) and (bad := missing(e)) is not None:
                return bad
            start, held_busy = None, recording
        elif change == "end" and held_busy and busy and period is not None and e.kind not in ("hello", "boot"):
            start, taken, anchor_free, held_busy = e, 0, True, False
            began = "resumed after Device OS held the non-threaded app, at"
            continue
        if e.kind == "hello" or (e.kind == "reply" and e.get("cmd") in ("ping", "status")):
            # the hello's declaration, repeated in `ping` and `status` replies for a scenario that
            # begins on a board booted long before (its timeline then starts with a status reply)
            said = _declared(e, "record_period_ms", period)
            period = int(said) if said is not None else None
            declared = declared or period is not None
            if e.kind == "hello":
                start, busy, held_busy = None, False, False
        elif e.kind == "boot":
            start, busy, held_busy = None, False, False
        elif period is None:
            continue
        elif e.kind == "app" and e.get("action") == "workload":
            if e.get("state") == "busy":
                busy = True
                if start is None:
                    start, taken, anchor_free, held_busy, recording = e, 0, False, False, False
                    began = "began at"
                    stretches += 1
            else:
                if (bad := missing(e)) is not None:
                    return bad
                start, busy, held_busy = None, False, False
        elif e.is_guard("shutdown_begin") or e.is_guard("shutdown_complete") or e.is_guard("reset_held") \
                or (e.kind == "reply" and e.get("cmd") == "sleep"):
            # the app stops: shut down for an update, holding the reset, or told to sleep (the reply
            # goes out before it sleeps); work after it is judged from the next `busy`
            if (bad := missing(e)) is not None:
                return bad
            start, held_busy = None, False
        elif start is not None and anchor_free and e.kind == "app" and e.get("action") == "record" \
                and not e.get("persisted"):
            # the first record of a stretch resumed after a hold: due within a period (and the
            # lateness allowed) of the resumption, and the grid goes on from it
            if (bad := missing(e)) is not None:
                return bad
            start, taken, anchor_free = e, 0, False
            began = "resumed after Device OS held the non-threaded app, with its first record at"
        elif start is not None and e.kind == "app" and e.get("action") == "record" and not e.get("persisted"):
            taken += 1
            recording = True
            offset = _device_ms(e) - (_device_ms(start) + taken * period)
            if offset < -CADENCE_EARLY_MS:
                return _fail(tl, name, f"record {e.get('seq')} (number {taken} of the busy stretch that {began} "
                                       f"{start.t:.1f}s) came {-offset:.0f} ms before its time: one every {period} ms "
                                       "is declared, the first one period after the app turns busy", e.t, fix=fix)
            if offset > CADENCE_LATE_SHARE * period:
                return _fail(tl, name, f"record {e.get('seq')} (number {taken} of the busy stretch that {began} "
                                       f"{start.t:.1f}s) came {offset:.0f} ms after its time on the declared grid "
                                       f"(one every {period} ms; at most {CADENCE_LATE_SHARE * period:.0f} ms late)",
                             e.t, fix=fix)
    if not declared:
        return _not_applicable(name, "it declares no record period (TestAgentInfo.recordPeriodMs)")
    return _ok(name, f"{stretches} busy stretch(es), every record on the declared grid")


#: how far past its declared `publish_every_ms` an app may be before its publishing counts as
#: stalled: a threaded app's loop can lag the system by a queue of events (§2.2), and the bench's
#: own clock reads serial lines a little late
PUBLISH_STALL_FACTOR, PUBLISH_STALL_GRACE_S = 3, 5.0


def publishing_keeps_up(tl: Timeline, board: str | None = None) -> Verdict:
    """While a record the app persisted since its boot waits to be published, and the app runs with
    the cloud connected, the app tries to publish (`appPublish`, ok or refused) at least every
    `publish_every_ms` it declares (TestAgentInfo.publishEveryMs), within `PUBLISH_STALL_FACTOR`
    times that plus `PUBLISH_STALL_GRACE_S`. Publishing that stops (a defect publishing once a boot
    and never again, docs/selftest.md) leaves the product without data it believes is on its way.
    The clock restarts when the cloud comes back, and nothing is judged once the app shut down for
    an update (until the transfer ends without one or the next boot) or was told to sleep (until its
    next boot or reconnection). A shutdown with no update in view stops nothing: no
    `firmware_update_pending`, `begin` or `reset_pending` since the last transfer ended without an
    update (or the boot), and no release, lock or force by the rig of a version the board does not
    run (found by a generated defect whose stale pending latch shut the app down at every idle
    window after a lost transfer, docs/selftest.md). Not applicable to a firmware that declares no
    publishing period."""
    name = "publishing keeps up"
    every: float | None = None
    declared = False
    acked = published = 0          # highest record persisted / published (ok) since the boot
    connected = running = False
    since: float | None = None     # when the app last published, or could start to
    waits = 0
    fix = ("publish the next persisted record whenever the app runs with the cloud connected, at least as often as "
           "declared (TestAgentInfo.publishEveryMs, docs/your-firmware.md \"Publishes\")")

    def stalled(now: float) -> Verdict | None:
        if every is None or since is None or not (connected and running) or acked <= published:
            return None
        limit = PUBLISH_STALL_FACTOR * every + PUBLISH_STALL_GRACE_S
        if now - since > limit:
            why = "" if needless is None else (
                f"; its shutdown at {needless.t:.1f}s excuses nothing: no update was in view (no pending notice, "
                "begin or reset_pending since the last transfer ended without one)")
            return _fail(tl, name, f"record {published + 1} (persisted; {acked - published} waiting) was not published: "
                                   f"the app ran with the cloud connected and tried no publish for {now - since:.0f} s "
                                   f"(it declares one at least every {every:g} s; allowed {limit:g} s){why}", now,
                         fix=fix if needless is None else
                         "shut the app down only for an update that is pending or begun, or a reset that is "
                         "pending; clear what marked an update pending once its transfer begins "
                         "(docs/reference/particle-ota.md §2.3), and " + fix)
        return None

    in_view = begun = False        # an update the app may shut down for; a transfer in progress
    needless: Entry | None = None  # the app's last shutdown with no update in view
    version: int | None = None     # the version the board runs (its last hello, ping or status)
    src = f"board:{board}" if board else "board"
    for e in tl.entries:
        if e.source == "rig" and e.kind in ("release", "lock", "force"):
            forced_on = e.kind == "force" and bool(e.get("forced"))
            wanted = e.get("version")
            another = e.kind != "force" and isinstance(wanted, int) and wanted != version
            in_view = in_view or forced_on or another
            continue
        if not (e.source == src or e.source.startswith(src + ":")):
            continue
        if (bad := stalled(e.t)) is not None:
            return bad
        if e.is_sys("firmware_update_pending") or e.is_sys("reset_pending"):
            in_view = True
        elif e.is_sys("firmware_update", "begin"):
            in_view = begun = True
        elif e.is_sys("firmware_update", "complete"):
            begun = False
        elif begun and (e.is_sys("firmware_update", "failed") or e.is_sys("cloud_status", "disconnected")):
            # over without an update: the app goes back to work, and the cloud tells again what still waits
            in_view = begun = False
            running = True
        if e.kind == "hello" or (e.kind == "reply" and e.get("cmd") in ("ping", "status")):
            said = _declared(e, "publish_every_ms", every * 1000.0 if every is not None else None)
            every = said / 1000.0 if said is not None else None
            declared = declared or every is not None
            if isinstance(e.get("product_version"), int):
                version = e.get("product_version")
            if e.kind == "hello":
                acked = published = 0
                connected, running, since = False, True, None
                in_view = begun = False
            elif e.get("cmd") == "status" and isinstance(e.get("cloud_connected"), bool) and since is None:
                # a timeline that starts on a board booted long before: its first status says how it is
                connected, running, since = bool(e.get("cloud_connected")), True, e.t
        elif e.is_sys("cloud_status", "connected"):
            connected, since = True, e.t
        elif e.is_sys("cloud_status", "disconnected") or e.is_sys("cloud_status", "disconnecting"):
            connected = False
        if e.is_guard("shutdown_begin"):
            needless = None if in_view else e
        if (e.is_guard("shutdown_begin") and in_view) or (e.kind == "reply" and e.get("cmd") == "sleep") \
                or (e.is_sys("firmware_update", "begin") and not _mode_of(tl, board)[1]):
            running = False
        elif e.kind == "app" and e.get("action") == "record" and e.get("persisted") and isinstance(e.get("seq"), int):
            if acked <= published:
                since = e.t if since is None else max(since, e.t)  # a wait begins
                waits += 1
            acked = max(acked, int(e.get("seq")))
        elif e.kind == "app" and e.get("action") == "publish":
            since = e.t
            if e.get("ok") and isinstance(e.get("seq"), int):
                published = max(published, int(e.get("seq")))
    # judged to the end of the timeline: an app that falls silent while a record waits says nothing more
    if tl.entries and (bad := stalled(tl.entries[-1].t)) is not None:
        return bad
    if not declared:
        return _not_applicable(name, "it declares no publishing period (TestAgentInfo.publishEveryMs)")
    return _ok(name, f"{waits} wait(s) for a publish, none stalled")


def refused_publishes_reach_the_cloud(tl: Timeline, board: str | None = None, *,
                                      device_id: str | None = None) -> Verdict:
    """A record whose publish Device OS refused (`app publish` with `ok` false: not connected, busy
    in a transfer, rate-limited, the channel's send failed; docs/reference/particle-ota.md §2.8) is
    still on its way: once the app, in the same boot, publishes a later record with success, the
    refused one must have gone out too (published with success, or a cloud copy naming it). An app
    that counts a refused publish as sent moves on and the record never reaches the cloud, though
    it is persisted and the product expects it (found by a generated defect, docs/selftest.md).
    Records still waiting at a reset are not judged here, nor a record whose copy could have come
    while the rig's event stream was down (a recorded `stream_gap` ending after its refusal: the
    Cloud does not replay). Not applicable to a firmware that reports no publishes (agent.appPublish)."""
    name = "a refused publish reaches the cloud"
    sent: set[int] = set()             # records published with success, any boot
    refused: dict[int, Entry] = {}     # refused in this boot and not sent since
    reported = refusals = 0
    events: set[str] = set()
    for e in _board(tl, board):
        if e.kind == "app" and e.get("action") == "publish" and isinstance(e.get("event"), str):
            events.add(e.get("event"))
    devices = {device_id} if device_id else _board_ids(tl, board)
    copies: set[int] = set()
    unjudged: dict[str, list[int]] = {}  # why (a stream gap) -> records not judged
    gaps = _stream_gaps(tl)
    for e in tl.select(source="cloud"):
        if e.kind in events and (not devices or e.get("coreid") in devices):
            copies |= {int(n) for n in _NUMBER.findall(str(e.get("data", "") or ""))}
    for e in _board(tl, board):
        if e.kind == "hello":
            refused = {}
            continue
        if e.kind != "app" or e.get("action") != "publish" or not isinstance(e.get("seq"), int):
            continue
        reported += 1
        seq = int(e.get("seq"))
        if not e.get("ok"):
            refusals += 1
            if seq not in sent:
                refused.setdefault(seq, e)
            continue
        sent.add(seq)
        refused.pop(seq, None)
        lost = sorted(r for r in refused if r < seq and r not in copies)
        for r in list(lost):  # its copy could have come while the rig's stream was down: not judged
            gap = _stream_gap_since(gaps, refused[r].t)
            if gap is not None:
                unjudged.setdefault(_stream_down(gap), []).append(r)
                refused.pop(r)
                lost.remove(r)
        if lost:
            first = refused[lost[0]]
            cloud = f"; the cloud received no {'/'.join(sorted(events))} naming it" if events else ""
            return _fail(tl, name, f"record(s) {_seq_ranges(lost)} never went out: Device OS refused the publish of "
                                   f"record {lost[0]} at {first.t:.1f}s, and the app published record {seq} at "
                                   f"{e.t:.1f}s without publishing it again{cloud}", e.t, before=min(e.t - first.t + 5.0, 120.0),
                         fix="count a record as published only when Particle.publish() returned true; try a refused "
                             "one again (the same record, first) at the next chance, while connected and within the "
                             "rate limit (docs/reference/particle-ota.md §2.8, docs/your-firmware.md \"Publishes\")")
    if reported == 0:
        return _not_applicable(name, "it reports no publishes (agent.appPublish(seq, ok))")
    return _ok(name, f"{refusals} refused publish attempt(s) of {reported}; every refused record went out before "
                     "a later one" + _not_judged(unjudged))


def _not_judged(unjudged: dict[str, list[int]]) -> str:
    """The records a verdict left unjudged for a gap of the rig's event stream, said in its detail."""
    return "".join(f"; record(s) {_seq_ranges(sorted(seqs))} not seen in the cloud, but {why}: not judged"
                   for why, seqs in unjudged.items())


#: how long after the first publish the app reports in a timeline a cloud copy may still be one of
#: a record published before the timeline began (its report is in the previous timeline)
CLOUD_COPY_SETTLE_S = 5.0
_NUMBER = re.compile(r"(?<![\d.])\d+(?![\d.])")


def _board_ids(tl: Timeline, board: str | None) -> set[str]:
    """The device IDs of the boards judged (a board's source is `board:<device id>`)."""
    return {e.source.split(":", 1)[1] for e in _board(tl, board) if ":" in e.source}


#: the kind of the `cloud` entry the rig writes for an interval its event stream was not connected,
#: with `from`/`to` bench times (otarig.cloud_access): the Cloud does not replay what it sent then
#: (docs/reference/particle-cloud-api.md §3 "Gaps")
STREAM_GAP = "stream_gap"


def _stream_gaps(tl: Timeline) -> list[Entry]:
    """The recorded gaps of the rig's event stream, selected once per verdict (a verdict asks for each
    of thousands of records: scanning the timeline each time made a week's run quadratic). A gap the
    rig wrote as open (no `to`: the stream was still down at a collect) counts until its closed entry
    (same `from`) is in; then that one says when it ended."""
    return without_superseded_gaps(tl.select(source="cloud", kind=STREAM_GAP))


def without_superseded_gaps(entries: list[Entry]) -> list[Entry]:
    """`entries` less each open `stream_gap` whose closed entry (same `from`) is among them."""
    closed = {g.get("from") for g in entries if g.kind == STREAM_GAP and g.get("to") is not None}
    return [g for g in entries if not (g.kind == STREAM_GAP and g.get("to") is None and g.get("from") in closed)]


def stream_gap_end(gap: Entry) -> float:
    """When a recorded gap ended; an open one (the stream still down when judged) never did."""
    end = gap.get("to", gap.t)
    return math.inf if end is None else float(end)


def _stream_gap_since(gaps: list[Entry], since: float) -> Entry | None:
    """The first of `gaps` (`_stream_gaps`) that ends at or after `since`: something the cloud got
    from then on may have come while the rig was not listening, so its absence proves nothing."""
    return next((g for g in gaps if stream_gap_end(g) >= since), None)


def _stream_down(gap: Entry) -> str:
    """A gap as a verdict's detail says it."""
    start, end = float(gap.get("from", gap.t)), stream_gap_end(gap)
    if end == math.inf:
        return f"the rig's event stream was down from {start:.1f} s and still down when judged"
    return f"the rig's event stream was down from {start:.1f} s to {end:.1f} s"


def cloud_copy_names_published_records(tl: Timeline, board: str | None = None, *,
                                       device_id: str | None = None) -> Verdict:
    """What the cloud received agrees with what the app reported publishing: each event the cloud
    got from the device under a name the app reports its records go out under (`app publish` with
    `event`, agent.appPublish(seq, ok, event)) names, among the numbers in its payload, a record
    the app reported publishing under that name. A payload that lost its record number (an empty
    or truncated buffer) is data the product cannot use, though the app saw `Particle.publish`
    succeed (found by a generated defect, docs/selftest.md). Copies lost on the way are not
    judged (a publish without acknowledgement may be lost, docs/reference/particle-ota.md §2.8).
    Not applicable to a firmware that reports no event name with its publishes."""
    name = "the cloud's copy of each published record names it"
    reported: dict[str, set[int]] = {}
    first: Entry | None = None
    publishes = 0
    for e in _board(tl, board):
        if e.kind == "app" and e.get("action") == "publish":
            publishes += 1
            if isinstance(e.get("event"), str):
                reported.setdefault(e.get("event"), set()).add(int(e.get("seq", 0) or 0))
                first = first or e
    if first is None:
        if publishes == 0:
            return _ok(name, "no publish reported")
        return _not_applicable(name, "it reports no event name with its publishes (agent.appPublish(seq, ok, event))")
    devices = {device_id} if device_id else _board_ids(tl, board)
    lowest = {event: min(seqs) for event, seqs in reported.items()}
    copies = 0
    for e in tl.select(source="cloud", start=first.t):
        if e.kind not in reported or (devices and e.get("coreid") not in devices):
            continue
        copies += 1
        named = {int(n) for n in _NUMBER.findall(str(e.get("data", "") or ""))}
        if named & reported[e.kind]:
            continue
        if e.t <= first.t + CLOUD_COPY_SETTLE_S and any(n < lowest[e.kind] for n in named):
            continue  # a record published just before this timeline began
        return _fail(tl, name, f"the cloud received {e.kind} with payload {str(e.get('data', ''))[:80]!r}, which names "
                               f"no record the app reported publishing under that name (it reported "
                               f"{len(reported[e.kind])}, numbers {min(reported[e.kind])}–{max(reported[e.kind])})",
                     e.t, fix="build the payload in a buffer large enough for it and check what snprintf returns; "
                              "publish the record's number with its data, so that the product can tell its records "
                              "apart (docs/your-firmware.md \"Publishes\")")
    return _ok(name, f"{copies} cloud copies of {sum(len(v) for v in reported.values())} reported publish(es), "
                     "each naming a record the app published")


#: a record published less than this before the record's end is not judged: its copy may still be
#: on its way (Device OS retransmits a confirmable event, docs/reference/particle-ota.md §2.8)
PUBLISH_SETTLES_S = 120.0
PUBLISH_FIX = ("publish each record under the event name the product subscribes to and report that name with "
               "agent.appPublish(seq, ok, event); count a record as sent only when Particle.publish() returned true "
               "for that event (docs/your-firmware.md \"Publishes\")")


def published_records_reach_the_cloud(tl: Timeline, board: str | None = None, *,
                                      device_id: str | None = None) -> Verdict:
    """Each record the app reports published under an event name (`app publish` with `ok` and
    `event`, agent.appPublish(seq, true, event)) reaches the cloud: an event of that name from the
    device names it, however late (Device OS answers a publish once the channel took it and
    retransmits it until acknowledged, §2.8, so a copy can come minutes late after an outage). A
    copy goes missing only when the session ends before it is acknowledged: a record followed by a
    cloud disconnect or a boot is judged only as part of the whole (no copy of that event name at
    all while other events from the device came), nor is one published less than
    PUBLISH_SETTLES_S before the record's end, nor one after which the cloud's stream brought
    nothing more from the device (its session may have ended unreported), nor one whose copy could
    have come while the rig's event stream was down (a recorded `stream_gap` ending after the
    publish: the Cloud does not replay, docs/reference/particle-cloud-api.md §3 "Gaps"; the detail
    names the gap). A gap never makes a record pass that had none behind it. A record the app
    counts as sent that the product never gets is lost data (found by a generated defect that
    published under another name, docs/selftest.md). Not applicable to a firmware that reports no
    event name with its publishes."""
    name = "each record reported published reaches the cloud"
    entries = _board(tl, board)
    sent = [e for e in entries if e.kind == "app" and e.get("action") == "publish" and e.get("ok")
            and isinstance(e.get("event"), str) and e.get("event")]
    if not sent:
        if any(e.kind == "app" and e.get("action") == "publish" for e in entries):
            return _not_applicable(name, "it reports no event name with its publishes (agent.appPublish(seq, ok, event))")
        return _ok(name, "no publish reported")
    end = tl.entries[-1].t if tl.entries else 0.0
    cuts = [e.t for e in entries if e.kind == "hello" or e.is_sys("cloud_status", "disconnected")]
    devices = {device_id} if device_id else _board_ids(tl, board)
    received = [e for e in tl.select(source="cloud", start=sent[0].t)
                if e.kind != STREAM_GAP and (not devices or e.get("coreid") in devices)]
    settled = [p for p in sent if p.t + PUBLISH_SETTLES_S <= end]
    gaps = _stream_gaps(tl)
    for event in sorted({p.get("event") for p in settled}):
        # a record whose copy could have come in a gap of the rig's stream does not count against the whole
        heard = [p for p in settled if p.get("event") == event and _stream_gap_since(gaps, p.t) is None]
        if not heard:
            continue
        first = heard[0]
        others = sorted({e.kind for e in received if e.t >= first.t and e.kind != event})
        if others and not any(e.kind == event for e in received):
            count = len(heard)
            return _fail(tl, name, f"the app reported {count} record(s) published as {event} from {first.t:.1f} s on, "
                                   f"but the cloud received no {event} from the device at all (it received "
                                   f"{', '.join(others[:5])} after the first)", first.t, after=PUBLISH_SETTLES_S,
                         fix=PUBLISH_FIX)
    # each copy's payload read once: the latest time a copy of (event, record) came, the last device
    # event and the last cut, so a record is judged without scanning the stream again
    named: dict[tuple[str, int], float] = {}
    for e in received:
        for n in _NUMBER.findall(str(e.get("data", "") or "")):
            named[(e.kind, int(n))] = max(e.t, named.get((e.kind, int(n)), e.t))
    last_received = max((e.t for e in received), default=float("-inf"))
    last_cut = max(cuts, default=float("-inf"))
    judged = 0
    unjudged: dict[str, list[int]] = {}  # why (a stream gap) -> records not judged
    for p in settled:
        seq, event = int(p.get("seq", 0) or 0), p.get("event")
        if named.get((event, seq), float("-inf")) >= p.t:
            judged += 1
            continue
        gap = _stream_gap_since(gaps, p.t)
        if gap is not None:  # named first: a stream still down also leaves nothing received after it
            unjudged.setdefault(_stream_down(gap), []).append(seq)
            continue
        if last_cut >= p.t or last_received < p.t:
            continue
        judged += 1
        others = sorted({e.kind for e in received if e.t >= p.t and e.kind != event})
        return _fail(tl, name, f"the app reported record {seq} published as {event} at {p.t:.1f} s, but the cloud never "
                               f"received {event} naming it, though the session did not end before the record's end "
                               f"(from the device it received {', '.join(others[:5]) or 'only other records'} after it)",
                     p.t, after=PUBLISH_SETTLES_S, fix=PUBLISH_FIX)
    return _ok(name, f"{judged} record(s) reported published and judged, each received by the cloud"
               + _not_judged(unjudged))


#: cloud variables that mirror a field of the agent's `status` reply (the companion's remote
#: interface, firmware/companion/README.md "Cloud interface"; docs/your-firmware.md step 3); checked where a
#: firmware has them
CLOUD_MIRRORS = {"version": "product_version", "records": "records", "lastSeq": "last_seq",
                 "windowOpen": "window_open"}


def _same_answer(value: object, field_value: object) -> bool:
    """A variable's answer equals the status field it mirrors: a bool field as the cloud writes a bool
    variable (true/false), anything else as text."""
    if isinstance(field_value, bool):
        return str(value).strip().lower() in (("true", "1") if field_value else ("false", "0"))
    return str(value) == str(field_value)
#: the `workload` cloud function: busy/idle answered 0 (done), anything else -1
WORKLOAD_STATES = ("busy", "idle")


def cloud_interface_agrees(tl: Timeline, board: str | None = None) -> Verdict:
    """What the app answers through the cloud agrees with what it reports over serial: the rig's
    `particle get` of a variable that mirrors a status field (`rig` `get` entries) returns the
    value of the status reply just before it, and a `particle call` of `workload` with busy or
    idle (`rig` `call` entries) is answered 0 and the next status reply shows that workload. A
    fleet's dashboard acts on these answers; a wrong one is a control the operator cannot trust
    (found by a generated defect that answered -1 to a request it carried out, docs/selftest.md)."""
    name = "cloud variables and functions agree with the app"
    src = f"board:{board}" if board else "board"
    status: Entry | None = None
    call: Entry | None = None
    checked = 0
    fix = ("keep each cloud variable in step with the state it names, and answer a cloud function with what it "
           "did: the companion's `workload` answers 0 when done, -1 to an argument it refuses "
           "(firmware/companion/README.md \"Cloud interface\"; docs/reference/particle-cloud-api.md `call`, `get`)")
    for e in tl.entries:
        if (e.source == src or e.source.startswith(src + ":")) and e.kind == "reply" and e.get("cmd") == "status":
            if call is not None and e.get("workload") != call.get("arg"):
                return _fail(tl, name, f"`workload {call.get('arg')}` was answered {call.get('result')} but the "
                                       f"app then reported workload {e.get('workload')}", e.t, fix=fix)
            status, call = e, None
        elif e.source == "rig" and e.kind == "get" and e.get("var") in CLOUD_MIRRORS and status is not None:
            want = status.get(CLOUD_MIRRORS[e.get("var")])
            if not _same_answer(e.get("value"), want):
                return _fail(tl, name, f"cloud variable {e.get('var')} read {e.get('value')} while the app reported "
                                       f"{CLOUD_MIRRORS[e.get('var')]} {want}", e.t, fix=fix)
            checked += 1
        elif e.source == "rig" and e.kind == "call" and e.get("fn") == "workload" and e.get("arg") in WORKLOAD_STATES:
            if str(e.get("result")) != "0":
                return _fail(tl, name, f"`workload {e.get('arg')}` was answered {e.get('result')}, not 0 (done)",
                             e.t, fix=fix)
            call = e
            checked += 1
    if call is not None:
        return _fail(tl, name, f"no status reply after `workload {call.get('arg')}` to show it took effect", call.t)
    return _ok(name, f"{checked} cloud answer(s), each agreeing with the app" if checked else
               "no cloud variable or function read")


#: the roles of the rig's `cloud` `interface` listings: the release the fleet runs, the candidate
FLEET_ROLE, CANDIDATE_ROLE = "fleet", "candidate"


def cloud_interface_kept(tl: Timeline, device_id: str | None = None) -> Verdict:
    """The candidate offers every cloud variable (with its type) and function the fleet's release
    offered: the rig's listings of the device's cloud interface (`rig` `cloud` entries with `what`
    `interface`, `role` fleet or candidate: the Cloud API's device info, `variables` {name: type}
    and `functions`, read while each version ran) are compared. A product's backend or dashboard
    reads them by name; one renamed, dropped or retyped breaks it the moment the update lands
    (found by generated defects that registered a variable under an empty name, docs/selftest.md).
    Not applicable when no listing of the fleet's release was recorded."""
    name = "the candidate keeps the fleet's cloud interface"
    listings = [e for e in tl.select(source="rig", kind="cloud")
                if e.get("what") == "interface" and (device_id is None or e.get("device") in (None, device_id))]
    fleet = next((e for e in listings if e.get("role") == FLEET_ROLE), None)
    if fleet is None:
        return _not_applicable(name, "no listing of the fleet's release's cloud interface was recorded")
    offered_vars: dict[str, str] = dict(fleet.get("variables") or {})
    offered_fns: list[str] = list(fleet.get("functions") or [])
    candidates = [e for e in listings if e.get("role") == CANDIDATE_ROLE and e.t >= fleet.t]
    if not offered_vars and not offered_fns:
        return _ok(name, "the fleet's release offered no cloud variable or function")
    if not candidates:
        return _not_applicable(name, "no listing of the candidate's cloud interface was recorded")
    for e in candidates:
        variables: dict[str, str] = dict(e.get("variables") or {})
        functions = set(e.get("functions") or [])
        missing = [f"variable {n!r} ({t})" for n, t in offered_vars.items() if n not in variables]
        retyped = [f"variable {n!r} ({t}, now {variables[n]})" for n, t in offered_vars.items()
                   if n in variables and variables[n] != t]
        missing += [f"function {n!r}" for n in offered_fns if n not in functions]
        if missing or retyped:
            what = "; ".join(x for x in (("no " + ", ".join(missing)) if missing else "",
                                         ("retyped " + ", ".join(retyped)) if retyped else "") if x)
            return _fail(tl, name, f"the candidate (version {e.get('version')}) no longer offers what the fleet's "
                                   f"release (version {fleet.get('version')}) offered through the cloud: {what} "
                                   f"(it lists variables {sorted(variables)}, functions {sorted(functions)})",
                         e.t, fix="keep each Particle.variable and Particle.function the fleet's release registered, "
                                  "under the same name and with the same type, and register it in setup(): a "
                                  "product's backend or dashboard reads it by name and breaks when the update lands "
                                  "(add new names beside the old ones; docs/your-firmware.md \"The fleet's release\")")
    return _ok(name, f"{len(offered_vars)} variable(s) and {len(offered_fns)} function(s) of the fleet's release, "
                     f"each offered by the candidate in {len(candidates)} listing(s)")


def app_resumes_after_a_lost_transfer(tl: Timeline, board: str | None = None, *, quiet_s: float = 30.0) -> Verdict:
    """A transfer that ended without an update (`failed`, or a cloud disconnect after its `begin`
    with no `complete`: docs/reference/particle-ota.md §2.2) gives the app its work back: while it
    is busy afterwards it takes records again. A guard that keeps the app shut down after such a
    transfer stops the product's work until some later reset (found by a generated defect,
    docs/selftest.md). Judged where the app showed earlier in the timeline that it takes records
    while busy; its cadence then sets how long it may stay silent (three times its longest gap,
    at least `quiet_s`)."""
    name = "app resumes after a lost transfer"
    if (skip := _without_records(tl, board, name)) is not None:
        return skip
    busy_since: float | None = None
    last_record: float | None = None
    longest_gap: float | None = None  # the app's own cadence while busy, before any lost transfer
    begun = completed = False
    lost: Entry | None = None
    resumed = 0
    hold = _SystemHold(tl, board)  # Device OS holding a non-threaded app: no silence counts then
    released: float | None = None  # where the last such hold ended

    def silent_since(now: float) -> Verdict | None:
        if lost is None or busy_since is None or longest_gap is None or hold.held:
            return None
        start = max(lost.t, busy_since, released if released is not None else lost.t)
        limit = max(quiet_s, 3 * longest_gap)
        if now - start >= limit:
            return _fail(tl, name, f"the app took no record for {now - start:.0f} s while busy after the transfer "
                                   f"that ended at {lost.t:.1f}s without an update (before it, one at least every "
                                   f"{longest_gap:.0f} s)", start + limit,
                         fix="when a download ends without completing (`firmware_update` failed, or the cloud "
                             "disconnects, which sends no `failed`), hold updates again and let the app go back to "
                             "work (docs/reference/particle-ota.md §2.2, §2.4)")
        return None

    for e in _board(tl, board):
        if e.kind == "hello" and (bad := silent_since(e.t)) is not None:
            return bad
        silence = silent_since(e.t)  # judged before the entry, in case a hold starts at it
        if (change := hold.step(e)) == "start" and silence is not None:
            return silence
        if change == "end":
            released = e.t
            if busy_since is not None:
                last_record = e.t  # the app's own cadence is measured between its loop()s, not across the hold
        if e.kind in ("hello", "boot"):
            busy_since = last_record = None
            begun = completed = False
            lost = None
        elif e.kind == "state":
            busy_since = e.t if e.get("workload") == "busy" else None
        elif e.kind == "app" and e.get("action") == "workload":
            if e.get("state") == "busy":
                busy_since = busy_since if busy_since is not None else e.t
                last_record = None
            else:
                if (bad := silent_since(e.t)) is not None:
                    return bad
                busy_since = None
        elif e.kind == "app" and e.get("action") == "record" and not e.get("persisted"):
            if (bad := silent_since(e.t)) is not None:
                return bad
            if lost is not None and busy_since is not None:
                lost = None  # back at work
                resumed += 1
            elif busy_since is not None and lost is None and not begun:
                gap = e.t - (last_record if last_record is not None else busy_since)
                longest_gap = gap if longest_gap is None else max(longest_gap, gap)
            last_record = e.t
        elif e.is_sys("firmware_update", "begin"):
            if (bad := silent_since(e.t)) is not None:
                return bad
            begun, completed, lost = True, False, None
        elif e.is_sys("firmware_update", "complete"):
            completed = True
        elif begun and not completed and (e.is_sys("firmware_update", "failed")
                                          or e.is_sys("cloud_status", "disconnected")):
            begun, lost = False, e
    end = tl.entries[-1].t if tl.entries else 0.0
    if (bad := silent_since(end)) is not None:
        return bad
    if longest_gap is None:
        return _ok(name, "not judged: no record taken while busy before any lost transfer")
    return _ok(name, f"{resumed} lost transfer(s) followed by work while busy")


#: guard reports whose state the agent's `status` reply also gives: report -> (status field, value)
_REPORTED_STATE = {"updates_enabled": ("updates_enabled", True), "updates_disabled": ("updates_enabled", False),
                   "window_open": ("window_open", True), "window_close": ("window_open", False)}
#: every `guard` action docs/protocol.md defines; a report with any other (or none) says nothing a verdict can read
GUARD_ACTIONS = frozenset(_REPORTED_STATE) | {"shutdown_begin", "shutdown_complete", "reset_held", "reset_released",
                                              "handshake_forced"}
#: how long (device ms) a `begin` may follow the app's `updates_disabled` that ended a stretch it
#: reported enabled: Device OS accepted the transfer while they were enabled and its event line
#: can reach the serial port after the app thread's report (two threads, one port)
REPORT_ORDER_GRACE_MS = 1000


def reports_agree_with_status(tl: Timeline, board: str | None = None) -> Verdict:
    """The decisions the app reports (`guard` updates_enabled/updates_disabled, window_open/
    window_close) agree with the state its agent reads back in each later `status` reply
    (System.updatesEnabled(), the window hook), in the board's own order: the verdicts over the
    window and the timeline plot rest on these reports, so one that is missing or wrong hides what
    the device really did (found by a generated defect that stopped reporting updates_disabled,
    docs/selftest.md). Only states the app has reported since its boot are compared.

    They also agree with what Device OS let in: an unforced `firmware_update begin` while the app's
    last report since its boot is `updates_disabled` cannot be (Device OS takes an update only with
    updates enabled unless the cloud forced it, docs/reference/particle-ota.md §2.1), so the report
    of the enabling is missing or wrong (found by a generated defect that reported an empty action
    instead of `updates_enabled`, docs/selftest.md). Forced is read as `update_began_in_idle_window`
    reads it (the rig's `force`, the cloud's `particle/device/updates/forced`). And a `guard` report
    whose action is empty or none docs/protocol.md defines is a broken report, as is a
    `shutdown_complete` without its `records` and `last_seq` (found by a generated defect that
    dropped them, docs/selftest.md: `the shutdown persisted every record taken` then has nothing
    to check)."""
    name = "reported decisions agree with the device"
    src = f"board:{board}" if board else "board"
    reports_updates = any(e.is_guard("updates_enabled") or e.is_guard("updates_disabled") for e in _board(tl, board))
    known: dict[str, tuple[bool, Entry]] = {}
    enabled_at: Entry | None = None  # the app's last `updates_enabled` report since its boot
    forced = False
    compared = begins = 0
    fix = ("report each decision where it is taken, right after the call it reports "
           "(System.enableUpdates()/disableUpdates(), the window opening or closing), and "
           "only then (docs/your-firmware.md step 3, docs/protocol.md `guard`)")
    for e in tl.entries:
        forced = _forced_after(e, forced)
        if not (e.source == src or e.source.startswith(src + ":")):
            continue
        if e.kind == "hello":
            known.clear()
            enabled_at = None
        elif e.kind == "guard" and e.get("action") not in GUARD_ACTIONS:
            return _fail(tl, name, f"the app reported a guard action {e.get('action')!r}, which is none the protocol "
                                   "defines: the decision it stands for is lost to every verdict and to the plot",
                         e.t, fix=fix)
        elif e.is_guard("shutdown_complete") and not all(
                isinstance(e.get(k), int) and not isinstance(e.get(k), bool) for k in ("records", "last_seq")):
            return _fail(tl, name, "the app reported a clean shutdown without the records it holds and its last "
                                   "persisted record (`records`, `last_seq`): what the shutdown persisted, which "
                                   "the reset may not take, cannot be checked", e.t,
                         fix="report the shutdown with agent.shutdownComplete(records, lastSeq), or pass the "
                             "counts to agent.guardAction(\"shutdown_complete\", records, lastSeq, true) "
                             "(docs/protocol.md `guard`, docs/your-firmware.md step 2)")
        elif e.kind == "guard" and e.get("action") in _REPORTED_STATE:
            field_name, value = _REPORTED_STATE[e.get("action")]
            known[field_name] = (value, e)
            if e.get("action") == "updates_enabled":
                enabled_at = e
        elif e.is_sys("firmware_update", "begin"):
            begins += 1
            state = known.get("updates_enabled")
            if not reports_updates or forced or state is None or state[0]:
                continue
            disabled = state[1]
            if enabled_at is not None and _device_ms(e) - _device_ms(disabled) <= REPORT_ORDER_GRACE_MS:
                continue  # taken while they were still enabled; the lines crossed on the port
            return _fail(tl, name, f"an update began (not forced by the cloud) while the app's last report was "
                                   f"updates_disabled (at {disabled.t:.1f}s"
                                   + ("" if enabled_at else ", and no updates_enabled since its boot")
                                   + "): Device OS lets an unforced update in only with updates enabled "
                                   "(docs/reference/particle-ota.md §2.1), so the app enabled them without "
                                   "reporting it", e.t, before=max(30.0, e.t - disabled.t + 5), fix=fix)
        elif e.kind == "reply" and e.get("cmd") == "status":
            for field_name, (value, report) in known.items():
                if e.get(field_name) is None:
                    continue
                compared += 1
                if bool(e.get(field_name)) != value:
                    return _fail(tl, name, f"the app last reported {report.get('action')} (at {report.t:.1f}s) but its "
                                           f"status says {field_name} {bool(e.get(field_name))}", e.t,
                                 before=max(30.0, e.t - report.t + 5), fix=fix)
    return _ok(name, f"{compared} status field(s) compared with the app's reports"
               + (f"; {begins} update(s) began, none while it reported updates disabled" if reports_updates and begins
                  else ""))


def reported_threading_holds(tl: Timeline, board: str | None = None) -> Verdict:
    """A firmware whose `hello` says it is not threaded behaves so: its app is frozen while a
    download runs (docs/reference/particle-ota.md §2.8), so nothing but system events comes from
    it between a `begin` and the transfer's end. Verdicts excuse a frozen app on that claim
    (`shutdown_before_reset`), so a wrong one would hide a defect (found by a generated defect
    that reported a threaded build as not threaded, docs/selftest.md)."""
    name = "reported threading holds"
    hellos = [e for e in _board(tl, board) if e.kind == "hello" and e.get("threaded") is not None]
    if not hellos or any(bool(h.get("threaded")) for h in hellos):
        return _ok(name, "not judged: the firmware says it is threaded" if hellos else "not judged: no hello")
    downloading = False
    downloads = 0
    for e in _board(tl, board):
        if e.is_sys("firmware_update", "begin"):
            downloading = True
            downloads += 1
        elif e.kind == "hello" or e.is_sys("firmware_update", "complete") or e.is_sys("firmware_update", "failed") \
                or e.is_sys("cloud_status", "disconnecting") or e.is_sys("cloud_status", "disconnected"):
            downloading = False
        elif downloading and e.kind in ("app", "guard", "reply"):
            return _fail(tl, name, f"the firmware says it is not threaded, yet its app ran during a download "
                                   f"({e.kind} {e.get('action') or e.get('cmd')})", e.t,
                         fix="report the threading the firmware is built with (TestAgentInfo threaded = "
                             "SYSTEM_THREAD(ENABLED)), docs/your-firmware.md step 2")
    return _ok(name, f"{downloads} download(s), the app frozen through each as a non-threaded one is")


#: docs/reference/particle-ota.md §3.2, §3.3, §7.10 fourth assertion
FIX_CUT = ("do not sleep, call Particle.disconnect() or turn the modem off while a download is in progress: "
           "note `firmware_update` begin and wait for complete/failed (docs/reference/particle-ota.md §3.2, §3.3, "
           "§7.10 fourth assertion)")


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
                                       "own sleep or Particle.disconnect(); no `failed` follows a disconnect)", cut.t,
                             fix=FIX_CUT)
            start = cut = None
        if e.is_sys("firmware_update", "begin"):
            start, cut = e, None
            downloads += 1
        elif start is None:
            continue
        elif cut is None and (e.is_sys("cloud_status", "disconnecting") or e.is_sys("cloud_status", "disconnected")):
            cut = e
        elif e.kind == "log" and e.get("msg") == "sleep" and not rig_caused(start, e):
            return _fail(tl, name, "the app went to sleep during a download", e.t, fix=FIX_CUT)
    if start is not None and cut is not None and not rig_caused(start, cut):
        return _fail(tl, name, "the download was cut by a disconnect the rig did not cause (the app's own "
                               "sleep or Particle.disconnect(); no `failed` follows a disconnect)", cut.t, fix=FIX_CUT)
    return _ok(name, f"{downloads} download(s), none cut by the app's own sleep or disconnect")


#: docs/reference/particle-ota.md §1.3, §2.2, §2.5: when a firmware's periodic forced handshake must wait
FIX_FORCED_HANDSHAKE = ("before forcing the periodic full handshake (spark/device/session/end, Particle.disconnect(), "
                        "Particle.connect()), check that the app has not just let a pending update in (enableUpdates() "
                        "until its `firmware_update` begin), no download is in progress (begin until "
                        "complete/failed or a disconnect) and no reset is pending (System.resetPending()), and put it "
                        "off until then (docs/reference/particle-ota.md §1.3, §2.2, §2.5, §3.3)")


def no_forced_handshake_during_update(tl: Timeline, board: str | None = None) -> Verdict:
    """A firmware that forces a full handshake now and then (its guard reports `handshake_forced`:
    publish `spark/device/session/end`, `Particle.disconnect()`, `Particle.connect()`,
    docs/reference/particle-ota.md §1.3, §3.3) does not force one while an update is under way.

    From a `firmware_update begin` to its end (`complete`, `failed`, a new `begin`, a boot, or a
    disconnect, the cut itself counted until the next `connecting`/`connected`) the disconnect drops
    the transfer without a `failed` (§2.2, §3.3) and the cloud sends the image again from chunk 0
    (§2.4, §7.9): a daily self-disconnect that lands in a download wastes the data already spent
    and delays the update. From the app's `updates_enabled` with an update pending
    (`firmware_update_pending` seen, no `begin` since) to the `begin` the cloud is about to send the
    update: a self-disconnect there makes the cloud offer it again at the reconnection (§7.8.1),
    a reconnection and a full handshake spent to delay the update the app just let in. From a
    `reset_pending` to the next boot the device still runs the old
    version, so the full handshake's check finds it behind its release and delivers the image it
    already holds again (§7.7, §7.8.1); a reset without an update is a power-off (§2.11). Reads
    only the app's own `handshake_forced` reports: not applicable to a firmware that reports none.
    """
    name = "no forced handshake during an update"
    entries = _board(tl, board)
    forced = [e for e in entries if e.is_guard("handshake_forced")]
    if not forced:
        return _not_applicable(name, "it reported no forced handshake here (agent.guardAction `handshake_forced`)")
    download: Entry | None = None  # the begin of the transfer in progress
    cut: Entry | None = None       # the begin of a transfer a disconnect just ended (until the next connection)
    pending: Entry | None = None   # the reset Device OS announced, until the next boot
    offered: Entry | None = None   # the update Device OS said is pending, until it begins
    let_in: Entry | None = None    # the app's `updates_enabled` for that update, until it begins
    for e in entries:
        if e.kind == "hello":
            download = cut = pending = offered = let_in = None
        elif e.is_sys("firmware_update_pending"):
            offered = e
        elif e.is_guard("updates_enabled") and offered is not None:
            let_in = let_in or e
        elif e.is_guard("updates_disabled"):
            let_in = None
        elif e.is_sys("firmware_update", "begin"):
            download, cut, offered, let_in = e, None, None, None
        elif e.is_sys("firmware_update", "complete") or e.is_sys("firmware_update", "failed"):
            download = cut = None
        elif e.is_sys("cloud_status", "disconnected") and download is not None:
            download, cut = None, download
        elif e.is_sys("cloud_status", "connecting") or e.is_sys("cloud_status", "connected"):
            cut = None
        elif e.is_sys("reset_pending") and pending is None:
            pending = e
        elif e.is_guard("handshake_forced"):
            if download is not None or cut is not None:
                began = download or cut
                assert began is not None
                return _fail(tl, name, f"the app forced a full handshake {e.t - began.t:.1f} s after `firmware_update "
                                       "begin`, with the download still in progress: its disconnect drops the "
                                       "transfer without a `failed` and the cloud sends the whole image again",
                             e.t, before=max(30.0, e.t - began.t + 5), after=30.0, fix=FIX_FORCED_HANDSHAKE)
            if let_in is not None:
                return _fail(tl, name, f"the app forced a full handshake {e.t - let_in.t:.1f} s after it let the "
                                       "pending update in (`updates_enabled`), before the cloud began it: its "
                                       "disconnect puts the update off to the reconnection, where the cloud offers "
                                       "it again", e.t, before=max(30.0, e.t - let_in.t + 5), after=30.0,
                             fix=FIX_FORCED_HANDSHAKE)
            if pending is not None:
                return _fail(tl, name, f"the app forced a full handshake {e.t - pending.t:.1f} s after Device OS "
                                       "announced a reset (`reset_pending`): until that reset the device runs the old "
                                       "version, and the handshake's update check delivers an image it already holds "
                                       "(or reconnects a device about to power off)",
                             e.t, before=max(30.0, e.t - pending.t + 5), fix=FIX_FORCED_HANDSHAKE)
    return _ok(name, f"{len(forced)} forced handshake(s), none during a download or with a reset pending")


#: how long a forced handshake may take to show its disconnect and its reconnection: the system
#: thread acts on Particle.disconnect() at its next pass, later while it waits for room in a busy
#: application queue (docs/reference/particle-ota.md §2.2, §3.3; a put gives up after 5 s, and each
#: queued item waits its turn), and the reconnection of a parked device takes seconds (§1.3)
FORCED_HANDSHAKE_WITHIN_S = 300.0
FIX_HANDSHAKE_RECONNECT = ("after Particle.disconnect() call Particle.connect() only once Particle.connected() is "
                           "false: until the system thread has acted on the disconnect (later while it is busy) a "
                           "connect sets the flag again and the disconnect never happens (docs/reference/"
                           "particle-ota.md §2.2, §3.3); and do call it then, or the device stays offline")


def forced_handshakes_take_effect(tl: Timeline, board: str | None = None) -> Verdict:
    """Each forced handshake the app reports (`handshake_forced`, while the cloud is connected) is
    a disconnect and a new connection: `cloud_status disconnected`, then `connected`, each within
    FORCED_HANDSHAKE_WITHIN_S. A `Particle.connect()` made before the system thread acted on the
    `Particle.disconnect()` sets the connect flag again and cancels it (docs/reference/particle-ota.md
    §3.3): the session stays up, no full handshake checks for Standard releases (§1.1, §1.3), and
    the app believes it did. One that never reconnects leaves the device offline. A boot ends the
    wait; a report too near the record's end is not judged. Not applicable to a firmware that
    reports no forced handshake."""
    name = "forced handshakes take effect"
    entries = _board(tl, board)
    if not any(e.is_guard("handshake_forced") for e in entries):
        return _not_applicable(name, "it reported no forced handshake here (agent.guardAction `handshake_forced`)")
    end = tl.entries[-1].t if tl.entries else 0.0
    connected = False
    judged = 0
    for i, e in enumerate(entries):
        if e.is_sys("cloud_status", "connected"):
            connected = True
        elif e.is_sys("cloud_status", "disconnected") or e.kind == "hello":
            connected = False
        if not (e.is_guard("handshake_forced") and connected):
            continue
        if e.t + FORCED_HANDSHAKE_WITHIN_S > end:
            continue
        later = [x for x in entries[i + 1:] if x.t <= e.t + FORCED_HANDSHAKE_WITHIN_S]
        cut = next((x for x in later if x.kind == "hello" or x.is_sys("cloud_status", "disconnected")), None)
        if cut is not None and cut.kind == "hello":
            continue
        if cut is None:
            return _fail(tl, name, f"the app reported a forced handshake at {e.t:.1f} s, but the cloud stayed connected "
                                   f"for the {FORCED_HANDSHAKE_WITHIN_S:.0f} s after it: its Particle.connect() came "
                                   "before Device OS acted on the Particle.disconnect(), so the session stayed up and "
                                   "no full handshake checked for Standard releases", e.t,
                         after=FORCED_HANDSHAKE_WITHIN_S, fix=FIX_HANDSHAKE_RECONNECT)
        back = next((x for x in later if x.t >= cut.t and (x.kind == "hello" or x.is_sys("cloud_status", "connected"))),
                    None)
        if back is None:
            return _fail(tl, name, f"the app forced a handshake at {e.t:.1f} s and the cloud disconnected "
                                   f"{cut.t - e.t:.1f} s later, but the device did not connect again within "
                                   f"{FORCED_HANDSHAKE_WITHIN_S:.0f} s: it stays offline until something else "
                                   "connects it", cut.t, after=FORCED_HANDSHAKE_WITHIN_S, fix=FIX_HANDSHAKE_RECONNECT)
        judged += 1
    return _ok(name, f"{judged} forced handshake(s) judged, each a disconnect and a new connection")


def new_version_runs(tl: Timeline, expected: int, board: str | None = None, *, device_id: str | None = None) -> Verdict:
    """After the update's reset the board runs `expected`, and the cloud saw it online with it (not
    judged when the rig's event stream was down after the boot: a recorded `stream_gap`)."""
    name = f"version {expected} runs and is reported to the cloud"
    hellos = [e for e in _board(tl, board) if e.kind == "hello"]
    if not hellos or hellos[-1].get("product_version") != expected:
        states = [e for e in _board(tl, board) if e.kind == "state"]  # the version when the scenario began
        got = hellos[-1].get("product_version") if hellos else states[0].get("product_version") if states else None
        at = hellos[-1].t if hellos else (tl.entries[-1].t if tl.entries else 0.0)
        return _fail(tl, name, f"board runs version {got}, expected {expected}", at)
    # since the boot: the hello's arrival less the uptime it carries (an app that connects before its
    # first loop() says hello after the cloud already saw it online)
    booted = hellos[-1].t - (hellos[-1].device_t or 0) / 1000
    seen = [e for e in tl.select(source="cloud")
            if e.get("version") == expected and (device_id is None or e.get("coreid") == device_id)
            and e.t >= booted]
    if not seen:
        gap = _stream_gap_since(_stream_gaps(tl), booted)
        if gap is not None:  # the Cloud does not replay (docs/reference/particle-cloud-api.md §3 "Gaps")
            return _ok(name, f"board booted version {expected} at {hellos[-1].t:.1f}s; no cloud report of it, but "
                             f"{_stream_down(gap)}: not judged")
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
    began = tl.select(source="board", kind="sys", start=t0, where=lambda e: e.is_sys("firmware_update", "begin"))
    pending = tl.select(source="board", kind="sys", start=t0, where=lambda e: e.is_sys("firmware_update_pending"))
    resumed = _forced_handshakes_resumed(tl, t0, board) if not began else []
    fix = ("the update was pending but never let in: enable updates (System.enableUpdates()) in the app's idle "
           "windows (docs/reference/particle-ota.md §1.5, §7.8.3)" if pending and not began else
           "publish `spark/device/session/end` before the forced handshake's Particle.disconnect(): without it "
           "the cloud keeps the session and the reconnect resumes it (docs/reference/particle-ota.md §1.3, §3.3)"
           if resumed else
           "a Standard release reaches a device only at a full handshake (docs/reference/particle-ota.md §1.1): "
           "once a day, in an idle window, publish `spark/device/session/end` and reconnect (§1.3), or release "
           "as Intelligent (§1.5)" if not began else "")
    why = "" if began else ": no download began"
    if resumed:
        why += (f"; the app reported {len(resumed)} forced handshake(s) since the release (first at "
                f"{resumed[0].t:.1f}s), but each reconnect resumed the session (`cloud_status session_resume`) "
                "and no full handshake (`handshake`) followed, so the cloud made no Standard-release check "
                "(docs/reference/particle-ota.md §8.1)")
    if not booted:
        return _fail(tl, name, "the new version never booted" + why, tl.entries[-1].t, before=120, fix=fix)
    took = booted[0].t - t0
    if took > budget_s:
        return _fail(tl, name, f"took {took:.1f}s", booted[0].t, fix=fix)
    return _ok(name, f"took {took:.1f}s")


def _forced_handshakes_resumed(tl: Timeline, since: float, board: str | None) -> list[Entry]:
    """The app's forced handshakes (`handshake_forced`) since `since` when none of them was followed by
    a full handshake, only by session resumes, before the next one or the end: a disconnect and
    reconnect without `spark/device/session/end` keeps the session (docs/reference/particle-ota.md §1.3,
    §3.3). Empty when there was none, or when any of them did lead to a full handshake."""
    forced: list[Entry] = []
    resumed = full = False
    for e in _board(tl, board):
        if e.t < since:
            continue
        if e.is_guard("handshake_forced"):
            forced.append(e)
        elif forced and e.is_sys("cloud_status", "session_resume"):
            resumed = True
        elif forced and e.is_sys("cloud_status", "handshake"):
            full = True
    return forced if forced and resumed and not full else []


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
                return _fail(tl, name, "the window stayed open without the pending update beginning", e.t,
                             fix="on `firmware_update_pending` (or System.updatesPending()) finish the work at the next idle moment and " \
                                 "call System.enableUpdates() (docs/reference/particle-ota.md §1.5, §7.10 second assertion); " \
                                 "remember the event until a transfer begins: the cloud's updates/pending=false may clear " \
                                 "the flag at any reconnection while the update still waits (§2.1, §8.3)")
            opened = None
        elif e.is_sys("firmware_update", "begin"):
            if opened is not None and e.t - opened.t > seconds:
                return _fail(tl, name, f"began {e.t - opened.t:.1f}s after the window opened", e.t,
                             fix="on `firmware_update_pending` (or System.updatesPending()) finish the work at the next idle moment and " \
                                 "call System.enableUpdates() (docs/reference/particle-ota.md §1.5, §7.10 second assertion)")
            pending, opened = False, None
    return _ok(name, "every pending update began promptly")


def app_saw_every_update(tl: Timeline, board: str | None = None) -> Verdict:
    """Every change of version came through a download the app saw begin: an update that lands
    before the app's `setup()` ran (or before it listened for system events) was one the app
    could not refuse, hold or shut down for (docs/reference/particle-ota.md §3.1, §7.10 first
    assertion). Read from the board's `hello`s and `firmware_update` events, with the cloud's
    `spark/flash/status` as corroboration; a version change the rig made itself (a USB flash of
    the baseline) is not counted."""
    name = "the app saw every update begin"
    src = f"board:{board}" if board else "board"
    version = None
    begun = False
    changes = 0
    for e in tl.entries:
        if e.source == "rig" and e.kind in ("baseline_flash", "usb_flash"):
            begun = True  # the rig's own flash: no app decision involved
            continue
        if not (e.source == src or e.source.startswith(src + ":")):
            continue
        if e.kind == "state" and e.get("product_version") is not None:
            version = e.get("product_version")
        elif e.is_sys("firmware_update", "begin"):
            begun = True
        elif e.kind == "hello":
            new = e.get("product_version")
            if version is not None and new != version:
                changes += 1
                if not begun:
                    mode, threaded = _mode_of(tl, board)
                    started = tl.select(source="cloud", kind="spark/flash/status", end=e.t,
                                        where=lambda x: str(x.get("data", "")).startswith("started"))
                    when = f" (the cloud started the transfer at {started[-1].t:.1f}s)" if started else ""
                    why = ("the firmware is AUTOMATIC and not threaded, so Device OS connects to the cloud before "
                           "setup() runs and takes the update offered at that boot handshake while updates are "
                           "still enabled: the System.disableUpdates() in setup() comes too late"
                           if mode in ("AUTOMATIC", "") and not threaded else
                           "the update landed before the app listened for system events")
                    return _fail(tl, name, f"the device went from version {version} to {new} without the app "
                                           f"seeing a `firmware_update` begin{when}: {why}", e.t, before=120,
                                 fix=FIX_BOOT)
            version = new
            begun = False
    return _ok(name, f"{changes} version change(s), each through a download the app saw")


#: docs/reference/particle-ota.md §2.5, §2.11: what a pending reset asks of the app
FIX_RESET_PENDING = ("on `reset_pending` (System.resetPending()) stop taking work, keep updates disabled, persist, "
                     "report the shutdown, then System.enableReset(); a critical section that holds the reset "
                     "(System.disableReset()) finishes what it started, it takes nothing new "
                     "(docs/reference/particle-ota.md §2.5, §2.11)")


def _reset_pending_spans(tl: Timeline, board: str | None) -> list[tuple[Entry, list[Entry]]]:
    """Per boot: the first `reset_pending` the app reported and the board's entries after it, up to
    the next `hello` (the reset, or the power-off, that Device OS announced)."""
    spans: list[tuple[Entry, list[Entry]]] = []
    current: tuple[Entry, list[Entry]] | None = None
    for e in _board(tl, board):
        if e.kind == "hello":
            current = None
        elif current is None and e.is_sys("reset_pending"):
            current = (e, [])
            spans.append(current)
        elif current is not None:
            current[1].append(e)
    return spans


def no_new_work_once_reset_pending(tl: Timeline, board: str | None = None) -> Verdict:
    """Once Device OS announced a reset (`reset_pending`: after an update, or a power-off asked with
    a MODE double click), the app takes no new record before the device boots again: the reset comes
    as soon as the app lets it, and work begun after the announcement is work it cuts. An app that
    holds the reset for a critical section still stops taking new work (found by a generated defect
    that skipped the shutdown under the app's own hold, docs/selftest.md)."""
    name = "no new work once a reset is pending"
    if (skip := _without_records(tl, board, name)) is not None:
        return skip
    spans = _reset_pending_spans(tl, board)
    for pending, after in spans:
        for e in after:
            if e.kind == "app" and e.get("action") == "record" and not e.get("persisted"):
                return _fail(tl, name, f"record {e.get('seq')} was taken {e.t - pending.t:.1f} s after Device OS "
                                       "announced a reset (`reset_pending`): the app kept working instead of "
                                       "shutting down for it", e.t, before=max(30.0, e.t - pending.t + 5),
                             fix=FIX_RESET_PENDING)
    return _ok(name, f"{len(spans)} announced reset(s); no record taken after any")


def updates_stay_disabled_once_reset_pending(tl: Timeline, board: str | None = None) -> Verdict:
    """Once a reset is pending the app does not enable updates: Device OS resets (or powers off) as
    soon as resets are enabled, during a transfer too (docs/reference/particle-ota.md §2.5 idle pass),
    so an update let in then is cellular data for a download the reset cuts, or one that lands while
    the device was asked to power off (§2.11). Reads the app's own `updates_enabled` reports: not
    applicable to a firmware that reports none."""
    name = "updates stay disabled once a reset is pending"
    entries = _board(tl, board)
    if not any(e.is_guard("updates_enabled") or e.is_guard("updates_disabled") for e in entries):
        return _not_applicable(name, "its test agent reports no updates_enabled / updates_disabled "
                                     "(agent.guardAction)")
    spans = _reset_pending_spans(tl, board)
    for pending, after in spans:
        for e in after:
            if e.is_guard("updates_enabled"):
                return _fail(tl, name, f"the app enabled updates {e.t - pending.t:.1f} s after Device OS announced "
                                       "a reset (`reset_pending`): an update it lets in now races the reset",
                             e.t, before=max(30.0, e.t - pending.t + 5), fix=FIX_RESET_PENDING)
    return _ok(name, f"{len(spans)} announced reset(s); updates never enabled after one")
