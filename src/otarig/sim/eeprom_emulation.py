"""Device OS's emulated EEPROM on the Electron, record by record (docs/reference/particle-ota.md §2.10).

The app's `EEPROM` is not a byte array: Device OS 2.3.1 keeps it as a log of 4-byte records in two
internal-flash pages, sector 3 (16 KB at 0x0800C000) and sector 4 (64 KB at 0x08010000)
(`platform/MCU/STM32F2xx/SPARK_Firmware_Driver/inc/eeprom_emulation_impl.h`, the algorithm in
`services/inc/eeprom_emulation.h`, called from `hal/src/stm32/eeprom_hal.cpp`). This module
follows that algorithm, writing through the flash `Journal` so that a power cut can land inside
any word it programs or any page it erases:

* a page starts with a 32-bit status: ERASED 0xFFFFFFFF, COPY 0xFFFFEEEE, ACTIVE 0xFFFF0000,
  INACTIVE 0xCCCC0000; the first ACTIVE page (page 1 first) is read and written;
* a record is (data, status, index as uint16), one word; valid when status == 0 and index != 0xFFFF;
  a read walks the page and stops at the first record that is not valid, the last value wins;
* a put writes one record per *changed* byte, backwards from the end of the run, so the run's
  first record (written last) commits the whole put; it first checks that the word after the run
  is empty, and any invalid record in the page sends the put to a page swap, even a put that
  changes nothing;
* a swap (page full, or an invalid record found): erase the other page unless every byte of it
  reads 0xFF, mark it COPY, copy the latest value of every index (not 0xFF, not in the put), write
  the put's bytes, mark it ACTIVE, then mark the old page INACTIVE; the old page is erased at the
  next swap;
* at boot (`HAL_EEPROM_Init`), no ACTIVE page means `clear()`: erase both, mark page 1 ACTIVE.

What no power cut can do, and only a simulated bench can (`damage`): a committed record that later
reads wrong, a worn or disturbed flash word (docs/reference/particle-ota.md §2.10 "Damaged stored
data"). Each put that programmed something is remembered (`puts`) by the indices it changed, so a
fault can be addressed as "the put k back" without knowing the app's layout.
"""
from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .stm32_flash import Journal, Op, Regions

ERASED, COPY, ACTIVE, INACTIVE = 0xFFFFFFFF, 0xFFFFEEEE, 0xFFFF0000, 0xCCCC0000
PAGES = (("eeprom1", 16 * 1024), ("eeprom2", 64 * 1024))
#: eeprom_emulation.h capacity(): half the records that fit in the smaller page
CAPACITY = PAGES[0][1] // 4 // 2
EMPTY = 0xFFFFFFFF
#: puts remembered for `damage` (a fault addresses recent data; older puts are long superseded)
PUT_HISTORY = 512
#: how a damaged record reads (docs/reference/particle-ota.md §2.10 "Damaged stored data")
READS_WRONG, READS_INVALID = "wrong", "invalid"
#: the STM32F205's core clock on the Electron (SystemCoreClock, 120 MHz)
CPU_HZ = 120_000_000
#: CPU cycles forEachRecord spends on one 4-byte record of a read (docs/reference/particle-ota.md
#: §2.10 "How long a read takes"; no published measurement, an estimate counted from the loop of
#: device-os v2.3.1 services/inc/eeprom_emulation.h:495-516 with readRange's lambda, :338-349,
#: inlined): the end-of-page compare and branch (2), the record's index and status loads (2 x 2),
#: the flash's 3 wait states paid once per 128-bit line the ART accelerator fetches, i.e. once per
#: four records (~1), valid() (index != 0xFFFF, status == 0: 2 compares and branches, 4), the index
#: range test (subtract, compare, branch: 3), the address step (1) and the taken branch back with
#: its pipeline refill (3), about 18, rounded up to 20 for the call and the rarer store of a byte in
#: range: 20 cycles = 0.17 µs, so a full 64 KB page (16,383 records) takes ~2.7 ms per get.
READ_CYCLES_PER_RECORD = 20


def _record(index: int, value: int) -> bytes:
    return struct.pack("<BBH", value, 0, index)


@dataclass
class _PageRead:
    """One page as read at `snapshot`: where its first empty word is, whether every record before
    it is valid, the latest value per index, and the app's view rendered per length."""

    snapshot: bytes
    empty_at: int
    clean: bool
    latest: dict[int, int]
    #: the valid records from the page start up to the first that is not (what a read yields)
    readable: int
    views: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Put:
    """One put that programmed records: when it started and ended (µs of the journal's clock) and
    the EEPROM indices whose value it changed (the bytes it left unchanged wrote nothing)."""

    start_us: int
    end_us: int
    indices: tuple[int, ...]


class EepromEmulation:
    """The two pages over `regions`, written through `journal`."""

    def __init__(self, regions: Regions, journal: Journal) -> None:
        self.regions = regions
        self.journal = journal
        self._reads: dict[int, _PageRead] = {}
        #: the puts that programmed something, oldest first (`damage` addresses them)
        self.puts: deque[Put] = deque(maxlen=PUT_HISTORY)

    # -- reading ---------------------------------------------------------------------------------
    def _page(self, n: int) -> bytearray:
        return self.regions.region(PAGES[n][0])

    def status(self, n: int) -> int:
        return int.from_bytes(self._page(n)[:4], "little")

    def active(self) -> int | None:
        """updateActivePage: the first ACTIVE page (0 or 1), else None."""
        for n in (0, 1):
            if self.status(n) == ACTIVE:
                return n
        return None

    def _scan(self, n: int) -> tuple[np.ndarray, int, bool]:
        """forEachRecord over page `n`: (the record words before the first empty one, the offset of
        that empty one or None as -1, whether every record before it is valid)."""
        words = np.frombuffer(self._page(n), "<u4")[1:]
        empty = np.flatnonzero(words == EMPTY)
        stop = int(empty[0]) if empty.size else len(words)
        head = words[:stop]
        valid = ((head >> 8) & 0xFF == 0) & (head >> 16 != 0xFFFF)
        return head, (4 + 4 * stop) if empty.size else -1, bool(valid.all())

    @staticmethod
    def _readable(words: np.ndarray) -> int:
        """How many records forEachValidRecord yields: the valid ones before the first invalid one."""
        valid = ((words >> 8) & 0xFF == 0) & (words >> 16 != 0xFFFF)
        bad = np.flatnonzero(~valid)
        return int(bad[0]) if bad.size else len(words)

    @staticmethod
    def _latest(words: np.ndarray) -> dict[int, int]:
        """The last value of each index among valid records, reading stops at the first invalid one."""
        valid = ((words >> 8) & 0xFF == 0) & (words >> 16 != 0xFFFF)
        bad = np.flatnonzero(~valid)
        words = words[:bad[0]] if bad.size else words
        index = (words >> 16)[::-1]
        keys, first = np.unique(index, return_index=True)
        values = (words[::-1][first] & 0xFF)
        return dict(zip(keys.tolist(), values.tolist()))

    def _read(self, n: int) -> _PageRead:
        """Page `n` read as the algorithm reads it. Kept while the page's bytes are unchanged (a
        copy compared with memcmp is far cheaper than re-walking thousands of records on every put),
        so anything that changes the page — a cut, a test — is seen."""
        page = self._page(n)
        cached = self._reads.get(n)
        if cached is not None and cached.snapshot == page:
            return cached
        head, empty_at, clean = self._scan(n)
        read = _PageRead(bytes(page), empty_at, clean, self._latest(head), self._readable(head))
        self._reads[n] = read
        return read

    def read_cycles(self) -> int:
        """CPU cycles of one get of any length (readRange, device-os v2.3.1
        services/inc/eeprom_emulation.h:338-349): forEachValidRecord walks the active page from its
        start, every valid record and then the first one that is not (the empty one after the last
        record, or a torn one), which ends the walk (:495-538); a full page of valid records is
        walked to its end. `READ_CYCLES_PER_RECORD` each (docs/reference/particle-ota.md §2.10
        "How long a read takes"). No active page: nothing to walk."""
        n = self.active()
        if n is None:
            return 0
        readable = self._read(n).readable
        records = PAGES[n][1] // 4 - 1
        return READ_CYCLES_PER_RECORD * min(readable + 1, records)

    def view(self, length: int) -> bytes:
        """readRange(0, length): the latest valid value of each index, 0xFF where none."""
        n = self.active()
        if n is None:
            return b"\xff" * length
        read = self._read(n)
        if read.views.get(length) is None:
            out = bytearray(b"\xff" * length)
            for index, value in read.latest.items():
                if index < length:
                    out[index] = value
            read.views[length] = bytes(out)
        return read.views[length]

    # -- writing ---------------------------------------------------------------------------------
    def _program(self, n: int, offset: int, data: bytes, label: str) -> Op:
        return self.journal.run(self.regions, Op("program", PAGES[n][0], offset, len(data), 0, data, label))

    def _erase(self, n: int, label: str) -> Op:
        name, size = PAGES[n]
        return self.journal.run(self.regions, Op("erase", name, 0, size, 0, label=label))

    def _set_status(self, n: int, status: int) -> None:
        self._program(n, 0, status.to_bytes(4, "little"), f"eeprom page {n + 1} status {status:#010x}")

    def init(self) -> None:
        """HAL_EEPROM_Init: no ACTIVE page -> clear()."""
        if self.active() is None:
            self.clear()

    def clear(self) -> None:
        self._erase(0, "eeprom clear")
        self._erase(1, "eeprom clear")
        self._set_status(0, ACTIVE)

    def put(self, index: int, data: bytes) -> None:
        """writeRange: one record per changed byte, committed by the run's first record; a swap
        when the page is full or holds an invalid record. Out of range: nothing is written."""
        if index < 0 or index + len(data) > CAPACITY or not data:
            return
        n = self.active()
        if n is None:
            self.init()
            n = self.active()
            assert n is not None
        read = self._read(n)
        latest, empty_at, clean = read.latest, read.empty_at, read.clean
        existing = [latest.get(index + i, 0xFF) for i in range(len(data))]
        changed = [(index + i, b) for i, b in enumerate(data) if existing[i] != b]
        if not changed and clean:
            # nothing to write; but a page holding an invalid record (a torn write) is swapped even
            # then (device-os v2.3.1 services/inc/eeprom_emulation.h:372-385: readRangeAndFindEmpty
            # fails before writeRangeChanged counts what changed)
            return
        if changed:
            self._remember(changed)
        size = PAGES[n][1]
        if clean and empty_at >= 0:
            end = empty_at + 4 * len(changed)
            page = self._page(n)
            separator_ok = end >= size or page[end:end + 4] == b"\xff\xff\xff\xff"
            if end <= size and separator_ok and self._write_backwards(n, empty_at, changed):
                # the run is committed and read back: the page now reads as before plus the run
                self._reads[n] = _PageRead(bytes(page), end if end < size else -1, clean, {**latest, **dict(changed)},
                                           (end - 4) // 4)
                return
        self._swap_and_write(n, index, data)

    def _remember(self, changed: list[tuple[int, int]]) -> None:
        """Note the put about to be written; its end is fixed by `settle` once it is in flash."""
        now = self.journal.clock_us() if self.journal.clock_us else 0
        self.puts.append(Put(now, -1, tuple(i for i, _ in changed)))

    def settle(self, end_us: int) -> None:
        """The last put's flash operations end at `end_us` (a power cut before that takes it back)."""
        if self.puts and self.puts[-1].end_us < 0:
            last = self.puts.pop()
            self.puts.append(Put(last.start_us, end_us, last.indices))

    def forget_after(self, now_us: int) -> None:
        """Power lost at `now_us`: a put whose flash time was not over was taken back or torn by the
        journal (docs/reference/particle-ota.md §2.10), so it is no put the app made."""
        while self.puts and self.puts[-1].end_us > now_us:
            self.puts.pop()

    def damage(self, indices: tuple[int, ...], reads: str = READS_WRONG, bits: int = 0x01) -> list[int]:
        """Bits of the flash records that hold the live value of `indices` now read wrong, as a worn
        or disturbed word would (docs/reference/particle-ota.md §2.10 "Damaged stored data"); returns
        the indices whose value the app now reads differently.

        `wrong`: the `bits` of each record's data byte (bit 0 unless told) read flipped, a disturbed
        cell reading either way, so a value may read larger or smaller; the record stays valid (status 0,
        its index intact), so the app reads each byte with a wrong value, and eeprom_emulation.h
        carries no check that could tell (device-os v2.3.1 services/inc/eeprom_emulation.h:138-167,
        Record::valid). `invalid`: the status byte of the earliest of those records reads 0x01
        instead of 0; a read stops at the first record that is not valid (forEachValidRecord,
        :523-538), so that record and every one the page holds after it are not read: for the
        newest put, exactly as if a power cut had landed inside it before its commit. The next put
        finds the invalid record and swaps pages (`put`)."""
        if reads not in (READS_WRONG, READS_INVALID):
            raise ValueError(f"a damaged record reads {READS_WRONG!r} or {READS_INVALID!r}, not {reads!r}")
        if not 0 < bits <= 0xFF:
            raise ValueError(f"the bits that read flipped are a mask of a data byte, 0x01-0xFF, not {bits:#x}")
        n = self.active()
        if n is None:
            return []
        page = self._page(n)
        before = self.view(CAPACITY)
        head, _, _ = self._scan(n)
        valid = ((head >> 8) & 0xFF == 0) & (head >> 16 != 0xFFFF)
        bad = np.flatnonzero(~valid)
        readable = int(bad[0]) if bad.size else len(head)
        live: dict[int, int] = {}  # index -> word number of the record holding its value
        wanted = set(indices)
        for k in range(readable - 1, -1, -1):
            index = int(head[k] >> 16)
            if index in wanted and index not in live:
                live[index] = k
        if not live:
            return []
        if reads == READS_WRONG:
            for k in live.values():
                page[4 + 4 * k] ^= bits
        else:
            page[4 + 4 * min(live.values()) + 1] = 0x01
        after = self.view(CAPACITY)
        return [i for i in range(CAPACITY) if before[i] != after[i]]

    def _write_backwards(self, n: int, start: int, changed: list[tuple[int, int]]) -> bool:
        """writeRangeChanged: last changed byte first, the run's first record last (the commit).
        A record that does not read back as written (a torn word under it) fails the put."""
        page = self._page(n)
        for k in range(len(changed) - 1, -1, -1):
            at = start + 4 * k
            rec = _record(*changed[k])
            self._program(n, at, rec, f"eeprom record [{changed[k][0]}]")
            if bytes(page[at:at + 4]) != rec:
                return False
        return True

    def _swap_and_write(self, source: int, index: int, data: bytes) -> None:
        """swapPagesAndWrite, with its two tries."""
        dest = 1 - source
        latest = self._read(source).latest
        keep = [(i, v) for i, v in sorted(latest.items())
                if not index <= i < index + len(data) and v != 0xFF]
        new = [(index + i, b) for i, b in enumerate(data) if b != 0xFF]
        for attempt in range(2):
            page = self._page(dest)
            if attempt or page.count(0xFF) != len(page):
                self._erase(dest, "eeprom swap erase")
            self._set_status(dest, COPY)
            records = b"".join(_record(i, v) for i, v in keep + new)
            if 4 + len(records) > len(page):
                return  # does not fit: Device OS gives up too
            if records:
                self._program(dest, 4, records, "eeprom swap copy")
            if bytes(page[4:4 + len(records)]) != records:
                continue
            self._set_status(dest, ACTIVE)
            self._set_status(source, INACTIVE)
            return
