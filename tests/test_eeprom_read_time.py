"""An EEPROM read takes the CPU time of Device OS's walk of the emulated EEPROM's page
(docs/reference/particle-ota.md §2.10 "How long a read takes"; device-os v2.3.1
services/inc/eeprom_emulation.h:338-349 readRange, :495-538 forEachRecord/forEachValidRecord).

Through the real host build on the simulated bench: a probe firmware (threaded, MANUAL, no cloud)
times its own gets with `millis()` and reports them on its serial port, and the device companion's
boot (RecordLog::begin) is timed by the `t` of its first line. The walk's length is counted here
from the flash bytes themselves, not asked of the model.
"""
from __future__ import annotations

import struct
from pathlib import Path

from sim_helpers import PRODUCT_ID, ImageFactory, RigFactory, SimRig

from otarig.protocol import Event
from otarig.sim import deviceos as dos
from otarig.sim.app_thread import PUMP_PERIOD_MS
from otarig.sim.build import build_firmware
from otarig.sim.eeprom_emulation import ACTIVE, CPU_HZ, PAGES, READ_CYCLES_PER_RECORD
from otarig.sim.images import make_app_image

#: the probe: `fill N` makes N puts of a 16-byte block whose every byte changes (16 records each);
#: `gets K` makes K gets of that block in one pass of loop(); `wait MS` is a delay() of as long.
#: Each reports how long it took by millis() and how many System.on calls ran meanwhile.
PROBE_APP = r"""#include "Particle.h"

SYSTEM_THREAD(ENABLED);
SYSTEM_MODE(MANUAL);

namespace {
volatile int handled = 0;
uint32_t puts = 0;
char line[32];
int len = 0;

void onEvent(system_event_t, int) { handled++; }

void report(const char* what, uint32_t n, uint32_t t0, int before) {
    const uint32_t t1 = millis();
    Serial.printlnf("{\"ev\":\"%s\",\"t\":%lu,\"n\":%lu,\"ms\":%lu,\"handled\":%d}", what, (unsigned long)t1,
                    (unsigned long)n, (unsigned long)(t1 - t0), handled - before);
}

void run(const char* cmd, uint32_t n) {
    uint8_t block[16];
    const int before = handled;
    const uint32_t t0 = millis();
    if (!strcmp(cmd, "fill")) {
        for (uint32_t i = 0; i < n; i++) {
            memset(block, (puts++ & 1) ? 0xA5 : 0x5A, sizeof(block));
            EEPROM.put(0, block);
        }
    } else if (!strcmp(cmd, "gets")) {
        for (uint32_t i = 0; i < n; i++) EEPROM.get(0, block);
    } else if (!strcmp(cmd, "wait")) {
        delay(n);
    }
    report(cmd, n, t0, before);
}
}  // namespace

void setup() { System.on(all_events, onEvent); }

void loop() {
    while (Serial.available() > 0) {
        const int c = Serial.read();
        if (c != '\n') {
            if (len < (int)sizeof(line) - 1) line[len++] = (char)c;
            continue;
        }
        line[len] = 0;
        len = 0;
        char cmd[8] = {0};
        unsigned long n = 0;
        if (sscanf(line, "%7s %lu", cmd, &n) == 2) run(cmd, (uint32_t)n);
    }
}
"""


def probe_image(tmp_path: Path) -> bytes:
    project = tmp_path / "probe"
    (project / "src").mkdir(parents=True)
    (project / "src" / "probe.cpp").write_text(PROBE_APP)
    so = build_firmware(1, project=project, threaded=True, product_id=PRODUCT_ID)
    return make_app_image(so, product_id=PRODUCT_ID, product_version=1)


def ask(rig: SimRig, cmd: str, n: int, timeout: float = 600) -> Event:
    assert rig.board is not None
    rig.board.write(f"{cmd} {n}\n".encode())
    return rig.board.expect(lambda e: e.name == cmd and e.get("n") == n, timeout)


def records_walked(rig: SimRig) -> int:
    """The records one get walks, counted from the active page's bytes: every valid record from the
    page start, then the first that is not (the empty word after the last), or none past the end."""
    regions = rig.dev.flash.regions
    for name, size in PAGES:
        page = regions[name]
        if int.from_bytes(page[:4], "little") != ACTIVE:
            continue
        walked = 0
        for at in range(4, size, 4):
            _, status, index = struct.unpack_from("<BBH", page, at)
            walked += 1
            if status != 0 or index == 0xFFFF:
                break
        return walked
    raise AssertionError("no ACTIVE page")


def walk_ms(gets: int, walked: int) -> float:
    return gets * walked * READ_CYCLES_PER_RECORD * 1000 / CPU_HZ


def test_a_get_costs_more_virtual_time_as_the_page_fills(tmp_path: Path, sim_rig: RigFactory) -> None:
    """The same 200 gets of 16 bytes, at page 1 empty, a quarter, half and almost full, then page 2
    (64 KB) almost full: each time as long as 200 walks of the records the page holds then, to the
    millisecond (the sub-millisecond rest carries over exactly, so it adds at most 1 ms)."""
    rig = sim_rig(probe_image(tmp_path))
    gets = 200
    took: list[tuple[int, int]] = []
    # page 1 holds 4095 records (255 puts), then a swap to page 2 (16,383 records; 1023 more puts)
    for puts in (0, 64, 64, 127, 1023):
        ask(rig, "fill", puts)
        walked = records_walked(rig)
        ms = ask(rig, "gets", gets).get("ms")
        expected = walk_ms(gets, walked)
        assert int(expected) <= ms <= int(expected) + 1, (walked, ms, expected)
        took.append((walked, ms))
    assert [w for w, _ in took] == sorted(w for w, _ in took) and took[-1][0] > 15_000
    assert [ms for _, ms in took] == sorted(ms for _, ms in took) and took[0][1] <= 1
    assert 500 <= took[-1][1] <= 560, "a full 64 KB page: ~2.7 ms a get"


def test_a_get_is_cpu_work_that_takes_no_queued_system_event(tmp_path: Path, sim_rig: RigFactory) -> None:
    """docs/reference/particle-ota.md §2.2: a threaded app takes its queued system events at a loop()
    boundary or once a second of a delay(); a get is neither. While 1500 gets over a full page take
    ~4 s of the app's time, events queued meanwhile wait for the next loop() pass; a delay() as
    long takes one a second."""
    rig = sim_rig(probe_image(tmp_path))
    ask(rig, "fill", 255 + 1023)  # page 2 full (the test above)
    sched = rig.bench.world.sched
    for cmd, n in (("gets", 1500), ("wait", 4000)):
        start = rig.now_ms
        emits = [sched.at(start + k * 500, lambda: rig.dev.emit(dos.TIME_CHANGED, 0)) for k in range(1, 11)]
        done = ask(rig, cmd, n)
        assert done.get("ms") >= 3_000 and rig.now_ms - start < 5_000 + 2_000, (cmd, done)
        for timer in emits:
            timer.cancel()
        if cmd == "gets":
            assert done.get("handled") == 0, "a get took a queued event"
            end = rig.now_ms
            rig.run(2)
            handled = rig.handled(dos.TIME_CHANGED, since_ms=start)
            assert handled and all(e.t_ms >= end - 1 for e in handled), "taken only after the gets"
        else:
            assert done.get("handled") >= done.get("ms") // PUMP_PERIOD_MS - 1 >= 2
        rig.run(10)  # the queue drains at the loop() boundaries before the next command


def test_the_companion_s_boot_reads_a_full_page_in_well_under_a_second(companion_image: ImageFactory,
                                                                     sim_rig: RigFactory) -> None:
    """RecordLog::begin() at boot: 64 gets to find the last record, a repair pass and a recount over
    the 31 it holds (16-byte gets), each a walk of the whole 64 KB page: ~0.5 s of the app's time
    before its first line, far from the seconds a log that walked every number it ever took would
    spend (docs/selftest.md, RecordLog:59)."""
    rig = sim_rig(companion_image(1))
    assert rig.board is not None
    rig.board.command("workload", state="busy")
    rig.run(120)  # records persisted in both copies
    rig.board.command("workload", state="idle")
    rig.run(10)
    rig.dev.power_off()
    emulation = rig.dev.flash.emulation
    filler = [0]

    def put_filler() -> None:
        """Another part of the app's EEPROM (0x700, outside the log's 0x200-0x5FF): 16 records."""
        filler[0] ^= 0xFF
        emulation.put(0x700, bytes([filler[0] ^ k for k in range(16)]))
        rig.run((rig.dev.flash.journal.busy_until_us // 1000 + 1 - rig.now_ms) / 1000)  # its flash time

    while emulation.active() != 1:
        put_filler()
    for _ in range((16_383 - records_walked(rig)) // 16):
        put_filler()
    walked = records_walked(rig)
    rig.board.expect_from_now()
    rig.power_on()
    boot = rig.board.expect(lambda e: e.name == "boot", 60)
    assert boot.get("records_recovered", 0) > 20
    hello = [e for e in rig.board.events("hello")][-1]
    per_get = walk_ms(1, walked)
    assert 64 * per_get <= hello.t < 1_000, (hello.t, per_get)
