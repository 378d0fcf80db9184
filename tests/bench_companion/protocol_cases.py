# Protocol cases for the bench companion (firmware/bench/otarig_bench.py), run on CPython
# (tests/test_bench_companion_protocol.py, one pytest test per case) and on real MicroPython
# (tests/test_bench_companion_micropython.py: tools/micropython/run.mjs calls run_all()).
#
# MicroPython-compatible: no f-strings, typing or dataclasses; dicts are compared, never their order.
#
# Each case is `case_<name>(mk)`: `mk()` builds a fresh companion on a fresh fakemachine with the
# pin map given to the Maker (firmware/bench/bench_pins.json), `mk(pins)` with another, and returns
# a Bench to drive it. Failures raise AssertionError with a message.
import json

MAX_MS = 24 * 3600 * 1000

#: Cases that show a known bug of the program: case name -> the bug. Both runners report them as
#: expected failures, and fail once such a case passes (then delete its entry).
EXPECTED_FAILURES = {}  # case name -> why it is known to fail (empty: the program does what the docs say)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def copy_pins(pins):
    return json.loads(json.dumps(pins))


class Maker:
    """`mk()` / `mk(pins)` → a Bench. `load()` returns the program module (fresh per call)."""

    def __init__(self, pins, fm, load):
        self.pins = pins
        self.fm = fm
        self.load = load

    def __call__(self, pins=None):
        self.fm.reset()
        return Bench(self.load(), self.fm, copy_pins(self.pins if pins is None else pins))


def micropython_maker(pins):
    """On MicroPython, with fakemachine.py as /lib/machine.py and otarig_bench.py in /lib: the
    program's `time` and `micropython` imports get the fake (manual clock; the VM's own schedule)."""
    import sys

    import machine

    sys.modules["time"] = machine
    sys.modules["micropython"] = machine

    def load():
        sys.modules.pop("otarig_bench", None)
        return __import__("otarig_bench")

    return Maker(pins, machine, load)


class Bench:
    """A companion, its fakemachine, and its pin map; sends command lines and reads the replies."""

    def __init__(self, prog, fm, pins):
        self.prog = prog
        self.fm = fm
        self.pins = pins
        self.c = prog.BenchCompanion(pins, "rp2")
        self.start_lines = self.lines()  # the hello
        self.next_id = 0

    def lines(self):
        """Everything queued since the last look, parsed."""
        return [json.loads(line) for line in self.c.take_lines()]

    def line(self, text, too_long=False):
        """Send one raw line → (reply, events queued before it)."""
        self.c.handle(text, too_long)
        msgs = self.lines()
        check(len(msgs) >= 1 and msgs[-1]["ev"] == "reply", "the last line is not a reply: %r" % (msgs,))
        for m in msgs[:-1]:
            check(m["ev"] != "reply", "two replies to one line: %r" % (msgs,))
        return msgs[-1], msgs[:-1]

    def cmd(self, name, **fields):
        """Send {"id": next, "cmd": name, **fields} → (reply, events)."""
        self.next_id += 1
        obj = {"id": self.next_id, "cmd": name}
        obj.update(fields)
        reply, events = self.line(json.dumps(obj))
        eq(reply["id"], self.next_id, "%s: reply id" % name)
        eq(reply["cmd"], name, "%s: reply cmd" % name)
        return reply, events

    def ok(self, name, **fields):
        reply, events = self.cmd(name, **fields)
        check(reply["ok"] is True and "error" not in reply, "%s %r: expected ok, got %r" % (name, fields, reply))
        return reply, events

    def bad(self, name, **fields):
        """A refused command → its error text; it must change no switch."""
        before = self.levels()
        reply, events = self.cmd(name, **fields)
        check(reply["ok"] is False, "%s %r: expected ok false, got %r" % (name, fields, reply))
        check(isinstance(reply.get("error"), str) and reply["error"], "%s: no error text in %r" % (name, reply))
        eq(events, [], "%s %r: events of a refused command" % (name, fields))
        eq(self.levels(), before, "%s %r: pin levels after a refused command" % (name, fields))
        return reply["error"]

    # -- pins and time ------------------------------------------------------------------------------
    def level(self, name):
        return self.fm.level(self.pins[name]["pin"])

    def levels(self):
        out = {}
        for name in ("vin", "vbus", "antenna", "wkp"):
            out[name] = self.level(name)
        return out

    def closed(self, name):
        """Whether switch `name` conducts, from its pin level and the map's active_high."""
        return self.level(name) == (1 if self.pins[name].get("active_high", True) else 0)

    def expect_closed(self, what, **want):
        for name in want:
            eq(self.closed(name), want[name], "%s: %s closed" % (what, name))

    def drive_status(self, level):
        self.fm.drive(self.pins["status"]["pin"], level)

    def pulse_status(self, n=1):
        """`n` rising (and falling) edges on the status line."""
        for _ in range(n):
            self.drive_status(1)
            self.drive_status(0)

    def advance(self, ms):
        """Let `ms` pass → the lines queued meanwhile."""
        self.fm.advance(ms)
        return self.lines()


def switches_of(events):
    return [(e["name"], e["closed"], e["by"]) for e in events if e["ev"] == "switch"]


def only(events, ev):
    return [e for e in events if e["ev"] == ev]


# -- start, ping, status -------------------------------------------------------------------------------
def case_hello_at_start(mk):
    b = mk()
    msgs = b.start_lines
    eq([m["ev"] for m in msgs], ["hello"], "lines at start")
    hello = msgs[0]
    eq(hello["proto"], 1, "hello proto")
    eq(hello["agent"], "otarig-bench", "hello agent")
    check(isinstance(hello["version"], str) and hello["version"], "hello version: %r" % (hello,))
    eq(hello["platform"], "rp2", "hello platform")
    eq(hello["t"], 0, "hello t")
    want = {}
    for name in ("vin", "vbus", "antenna", "wkp", "status", "mode"):
        if name in b.pins:
            want[name] = b.pins[name]["pin"]
    eq(hello["pins"], want, "hello pins")
    eq(hello["switches"], {"vin": True, "vbus": True, "antenna": True}, "hello switches")
    b.expect_closed("at start", vin=True, vbus=True, antenna=True)
    eq(b.level("wkp"), 0, "wkp at start")


def case_missing_pin_in_map(mk):
    pins = copy_pins(mk.pins)
    del pins["vbus"]
    try:
        mk(pins)
    except ValueError as exc:
        check("vbus" in str(exc), "the error names the missing pin: %r" % (str(exc),))
        return
    raise AssertionError("a pin map without vbus was accepted")


def case_ping(mk):
    b = mk()
    reply, events = b.ok("ping")
    eq(events, [], "ping events")
    eq(reply["proto"], 1, "ping proto")
    eq(reply["agent"], "otarig-bench", "ping agent")
    eq(reply["pins"]["status"], b.pins["status"]["pin"], "ping pins.status")
    eq(reply["switches"], {"vin": True, "vbus": True, "antenna": True}, "ping switches")


def case_status(mk):
    b = mk()
    reply, _ = b.ok("status")
    eq(reply["switches"], {"vin": True, "vbus": True, "antenna": True}, "status switches")
    eq((reply["status_line"], reply["edges"], reply["armed"], reply["wkp"], reply["timers"]),
       (0, 0, 0, 0, []), "fresh status (status_line, edges, armed, wkp, timers)")
    b.drive_status(1)
    b.ok("wake", ms=50)
    b.ok("antenna_off", ms=70)
    b.ok("power_off", ms=90)
    reply, _ = b.ok("status")
    eq((reply["status_line"], reply["edges"], reply["wkp"]), (1, 1, 1), "status (status_line, edges, wkp)")
    eq(reply["timers"], ["antenna", "power", "wkp"], "status timers")
    eq(reply["switches"], {"vin": False, "vbus": False, "antenna": False}, "status switches")


# -- switch --------------------------------------------------------------------------------------------
def case_switch_missing_keys(mk):
    b = mk()
    err = b.bad("switch")
    for name in ("vin", "vbus", "antenna"):
        check(name in err, "the error names %s: %r" % (name, err))
    err = b.bad("switch", power=False)
    check("vin" in err, "unknown key only: %r" % (err,))


def case_switch_bad_values(mk):
    b = mk()
    for name, value in (("vin", 0), ("vbus", "off"), ("antenna", None)):
        fields = {name: value}
        err = b.bad("switch", **fields)
        check(name in err, "the error names the key %s: %r" % (name, err))
    # A bad key refuses the whole command: the good one is not applied either.
    err = b.bad("switch", vin=False, vbus=1)
    check("vbus" in err, "the error names vbus: %r" % (err,))
    b.expect_closed("after refused switches", vin=True, vbus=True, antenna=True)


def case_switch_sets_pins_and_events(mk):
    b = mk()
    reply, events = b.ok("switch", vin=False, antenna=False)
    eq(sorted(switches_of(events)), [("antenna", False, "cmd"), ("vin", False, "cmd")], "switch events")
    eq(reply["switches"], {"vin": False, "vbus": True, "antenna": False}, "switch reply")
    b.expect_closed("after switch", vin=False, vbus=True, antenna=False)
    _, events = b.ok("switch", vin=False)
    eq(events, [], "no event for a switch already in that state")
    _, events = b.ok("switch", vin=True, antenna=True)
    eq(sorted(switches_of(events)), [("antenna", True, "cmd"), ("vin", True, "cmd")], "switch back events")
    b.expect_closed("switched back", vin=True, vbus=True, antenna=True)


def case_switch_active_low(mk):
    pins = copy_pins(mk.pins)
    for name in ("vin", "vbus", "antenna"):
        pins[name]["active_high"] = False
    b = mk(pins)
    eq((b.level("vin"), b.level("vbus"), b.level("antenna")), (0, 0, 0), "active-low closed switches at start")
    b.ok("switch", antenna=False)
    eq(b.level("antenna"), 1, "active-low open antenna switch")
    b.ok("power_off", ms=5)
    eq((b.level("vin"), b.level("vbus")), (1, 1), "active-low power off")
    b.advance(5)
    eq((b.level("vin"), b.level("vbus")), (0, 0), "active-low power restored")


# -- power_off / antenna_off ---------------------------------------------------------------------------
def case_power_off_restores_after_exactly_ms(mk):
    b = mk()
    b.advance(1000)
    reply, events = b.ok("power_off", ms=250)
    eq(reply["ms"], 250, "power_off reply ms")
    eq(sorted(switches_of(events)), [("vbus", False, "cmd"), ("vin", False, "cmd")], "power_off events")
    for e in events:
        eq(e["t"], 1000, "power_off event t")
    b.expect_closed("power off", vin=False, vbus=False, antenna=True)
    eq(b.advance(249), [], "lines before ms")
    b.expect_closed("at ms - 1", vin=False, vbus=False)
    events = b.advance(1)
    eq(sorted(switches_of(events)), [("vbus", True, "timer"), ("vin", True, "timer")], "restore events")
    for e in events:
        eq(e["t"], 1250, "restore event t")
    b.expect_closed("at ms", vin=True, vbus=True, antenna=True)
    eq(b.ok("status")[0]["timers"], [], "timers after the restore")


def case_power_off_without_ms_stays_off(mk):
    b = mk()
    reply, _ = b.ok("power_off")
    eq(reply["ms"], 0, "power_off default ms")
    eq(b.advance(3600 * 1000), [], "lines an hour later")
    b.expect_closed("an hour later", vin=False, vbus=False)
    eq(b.ok("status")[0]["timers"], [], "timers")
    b.ok("switch", vin=True, vbus=True)
    b.expect_closed("switched on", vin=True, vbus=True)


def case_power_off_bad_ms(mk):
    b = mk()
    for ms in (-1, "10", True, 1.5, MAX_MS + 1):
        err = b.bad("power_off", ms=ms)
        check("ms" in err, "the error names ms: %r" % (err,))
    b.ok("power_off", ms=MAX_MS)


def case_power_off_again_restarts_timer(mk):
    b = mk()
    b.ok("power_off", ms=100)
    b.advance(60)
    _, events = b.ok("power_off", ms=100)
    eq(events, [], "no switch events when already off")
    eq(b.advance(99), [], "lines before the new deadline (the old one passed)")
    b.expect_closed("old deadline passed", vin=False, vbus=False)
    eq(len(switches_of(b.advance(1))), 2, "restore at the new deadline")
    b.expect_closed("new deadline", vin=True, vbus=True)


def case_antenna_off(mk):
    b = mk()
    reply, events = b.ok("antenna_off", ms=100)
    eq(reply["ms"], 100, "antenna_off reply ms")
    eq(switches_of(events), [("antenna", False, "cmd")], "antenna_off events")
    b.expect_closed("antenna off", vin=True, vbus=True, antenna=False)
    eq(b.advance(99), [], "lines before ms")
    eq(switches_of(b.advance(1)), [("antenna", True, "timer")], "antenna restore")
    b.expect_closed("antenna restored", antenna=True)
    b.ok("antenna_off")
    eq(b.advance(10 ** 6), [], "antenna_off without ms: no restore")
    b.expect_closed("without ms", antenna=False)
    err = b.bad("antenna_off", ms=-5)
    check("ms" in err, "the error names ms: %r" % (err,))


def case_antenna_off_zero_cancels_timer(mk):
    b = mk()
    b.ok("antenna_off", ms=100)
    b.ok("antenna_off", ms=0)
    eq(b.ok("status")[0]["timers"], [], "timers after antenna_off 0")
    eq(b.advance(1000), [], "no restore")
    b.expect_closed("after antenna_off 0", antenna=False)


# -- a command while a timer is pending ----------------------------------------------------------------
def case_switch_cancels_power_timer(mk):
    b = mk()
    b.ok("power_off", ms=100)
    b.advance(10)
    # Documented: `switch` cancels a timer that would undo it; the power timer restores both rails.
    b.ok("switch", vin=True)
    eq(b.ok("status")[0]["timers"], [], "timers after switch vin")
    eq(b.advance(1000), [], "no restore after the switch")
    b.expect_closed("switch vin during power_off", vin=True, vbus=False)


def case_switch_antenna_keeps_power_timer(mk):
    b = mk()
    b.ok("power_off", ms=100)
    b.ok("antenna_off", ms=300)
    b.ok("switch", antenna=False)  # cancels the antenna timer only
    eq(b.ok("status")[0]["timers"], ["power"], "timers")
    b.ok("ping")
    eq(sorted(switches_of(b.advance(100))), [("vbus", True, "timer"), ("vin", True, "timer")], "power restored")
    eq(b.advance(1000), [], "no antenna restore")
    b.expect_closed("end", vin=True, vbus=True, antenna=False)


def case_wake_again_extends_pulse(mk):
    b = mk()
    b.ok("wake", ms=20)
    b.advance(10)
    _, events = b.ok("wake", ms=20)
    eq(events, [{"ev": "wkp", "t": 10, "level": 1}], "second wake events")
    eq(b.advance(19), [], "the first pulse's end is cancelled")
    eq(b.level("wkp"), 1, "wkp still high")
    eq(b.advance(1), [{"ev": "wkp", "t": 30, "level": 0}], "one falling edge")
    eq(b.level("wkp"), 0, "wkp low")


# -- wake ----------------------------------------------------------------------------------------------
def case_wake_pulse_width(mk):
    b = mk()
    reply, events = b.ok("wake", ms=25)
    eq(reply["ms"], 25, "wake reply ms")
    eq(events, [{"ev": "wkp", "t": 0, "level": 1}], "wake events")
    eq(b.level("wkp"), 1, "wkp during the pulse")
    eq(b.advance(24), [], "lines during the pulse")
    eq(b.level("wkp"), 1, "wkp at ms - 1")
    eq(b.advance(1), [{"ev": "wkp", "t": 25, "level": 0}], "end of the pulse")
    eq(b.level("wkp"), 0, "wkp after the pulse")
    reply, _ = b.ok("wake")
    eq(reply["ms"], 10, "wake default ms")
    b.advance(9)
    eq(b.level("wkp"), 1, "default pulse at 9 ms")
    b.advance(1)
    eq(b.level("wkp"), 0, "default pulse at 10 ms")
    for ms in (0, -1, "5"):
        err = b.bad("wake", ms=ms)
        check("ms" in err, "the error names ms: %r" % (err,))


# -- press_mode (the MODE button: open drain, active low) ---------------------------------------------
def case_press_mode_double_click(mk):
    b = mk()
    eq(b.level("mode"), 1, "mode released at start")
    reply, events = b.ok("press_mode", ms=100, count=2, gap_ms=200)
    eq((reply["ms"], reply["count"], reply["gap_ms"]), (100, 2, 200), "press_mode reply")
    eq(events, [{"ev": "mode", "t": 0, "pressed": True}], "first press at once")
    eq(b.level("mode"), 0, "pulled low while pressed")
    eq(b.advance(99), [], "still pressed at 99 ms")
    eq(b.advance(1), [{"ev": "mode", "t": 100, "pressed": False}], "released at 100 ms")
    eq(b.level("mode"), 1, "released between the clicks")
    eq(b.advance(200), [{"ev": "mode", "t": 300, "pressed": True}], "second press after the gap")
    eq(b.advance(100), [{"ev": "mode", "t": 400, "pressed": False}], "second release")
    eq(b.advance(1000), [], "nothing after the last press")
    eq(b.level("mode"), 1, "released at the end")


def case_press_mode_defaults_and_bad_keys(mk):
    b = mk()
    reply, _ = b.ok("press_mode")
    eq((reply["ms"], reply["count"], reply["gap_ms"]), (100, 1, 250), "press_mode defaults")
    b.advance(100)
    eq(b.level("mode"), 1, "one press of 100 ms")
    for bad in ({"count": 0}, {"count": 6}, {"count": True}, {"ms": 0}, {"gap_ms": 0}, {"ms": "5"}):
        b.bad("press_mode", **bad)
        eq(b.level("mode"), 1, "a refused press_mode %r leaves MODE released" % (bad,))


def case_press_mode_again_releases_first(mk):
    b = mk()
    b.ok("press_mode", ms=500)
    b.advance(50)
    _, events = b.ok("press_mode", ms=40)
    eq(events, [{"ev": "mode", "t": 50, "pressed": False}, {"ev": "mode", "t": 50, "pressed": True}],
       "the running press is released, then the new one begins")
    eq(b.advance(40), [{"ev": "mode", "t": 90, "pressed": False}], "the new press lasts its own ms")
    eq(b.advance(1000), [], "the old press's end is cancelled")


def case_press_mode_without_a_mode_pin(mk):
    pins = copy_pins(mk.pins)
    del pins["mode"]
    b = mk(pins)
    check("mode" not in b.start_lines[0]["pins"], "hello names no mode pin")
    err = b.bad("press_mode")
    check("mode" in err and "pin map" in err, "the error says the pin map has no mode line: %r" % (err,))
    check("mode_pressed" not in b.ok("status")[0], "status without a mode line")


# -- arm_cut / disarm ----------------------------------------------------------------------------------
def case_arm_cut_at_kth_edge(mk):
    b = mk()
    reply, _ = b.ok("arm_cut", edges=3, off_ms=500)
    eq((reply["armed"], reply["off_ms"]), (3, 500), "arm_cut reply (armed, off_ms)")
    b.pulse_status(2)
    eq(b.lines(), [], "lines after 2 of 3 edges")
    b.expect_closed("before the 3rd edge", vin=True, vbus=True, antenna=True)
    b.advance(1000)
    b.drive_status(1)
    b.expect_closed("at the 3rd edge", vin=False, vbus=False, antenna=True)
    events = b.lines()
    eq(only(events, "cut"), [{"ev": "cut", "t": 1000, "edges": 3, "off_ms": 500}], "cut event")
    eq(sorted(switches_of(events)), [("vbus", False, "cut"), ("vin", False, "cut")], "cut switch events")
    eq(len(events), 3, "lines at the cut: %r" % (events,))
    reply, _ = b.ok("status")
    eq((reply["armed"], reply["edges"], reply["timers"]), (0, 3, ["power"]), "status after the cut")
    b.drive_status(0)
    eq(b.advance(499), [], "lines before off_ms")
    b.expect_closed("at off_ms - 1", vin=False, vbus=False)
    events = b.advance(1)
    eq(sorted(switches_of(events)), [("vbus", True, "timer"), ("vin", True, "timer")], "restore after off_ms")
    eq(events[0]["t"], 1500, "restore t")
    b.expect_closed("after off_ms", vin=True, vbus=True)


def case_arm_cut_first_edge(mk):
    b = mk()
    b.ok("arm_cut", edges=1, off_ms=10)
    b.drive_status(1)
    b.expect_closed("at the 1st edge", vin=False, vbus=False)
    eq(only(b.lines(), "cut")[0]["edges"], 1, "cut edges")


def case_cut_only_once(mk):
    b = mk()
    b.ok("arm_cut", edges=2, off_ms=50)
    b.pulse_status(2)
    eq(len(only(b.lines(), "cut")), 1, "one cut")
    b.advance(50)
    b.pulse_status(5)
    eq(b.lines(), [], "edges after the cut")
    b.expect_closed("after the cut's restore", vin=True, vbus=True)
    eq(b.ok("status")[0]["edges"], 7, "edges counted on")


def case_arm_cut_off_ms_zero_stays_off(mk):
    b = mk()
    reply, _ = b.ok("arm_cut", edges=1)
    eq(reply["off_ms"], 0, "arm_cut default off_ms")
    b.pulse_status(1)
    eq(only(b.lines(), "cut")[0]["off_ms"], 0, "cut off_ms")
    eq(b.advance(10 ** 6), [], "no restore")
    b.expect_closed("cut for good", vin=False, vbus=False, antenna=True)


def case_falling_edges_do_not_count(mk):
    b = mk()
    b.ok("arm_cut", edges=2, off_ms=10)
    b.drive_status(1)
    b.drive_status(1)  # no edge: already high
    b.drive_status(0)
    b.drive_status(0)
    eq(b.ok("status")[0]["edges"], 1, "edges after one rising and one falling edge")
    eq(b.lines(), [], "no cut")
    b.expect_closed("no cut", vin=True, vbus=True)
    b.drive_status(1)
    eq(len(only(b.lines(), "cut")), 1, "cut at the 2nd rising edge")


def case_rearm_resets_count(mk):
    b = mk()
    b.ok("arm_cut", edges=3, off_ms=10)
    b.pulse_status(2)
    b.ok("arm_cut", edges=3, off_ms=20)
    eq(b.ok("status")[0]["edges"], 0, "edges after re-arming")
    b.pulse_status(2)
    eq(b.lines(), [], "no cut at 4 edges in all (2 since re-arming)")
    b.pulse_status(1)
    cut = only(b.lines(), "cut")
    eq(cut, [{"ev": "cut", "t": 0, "edges": 3, "off_ms": 20}], "cut at the 3rd edge since re-arming")


def case_disarm(mk):
    b = mk()
    b.ok("arm_cut", edges=2, off_ms=10)
    b.pulse_status(1)
    reply, _ = b.ok("disarm")
    eq((reply["was_armed"], reply["edges"]), (2, 1), "disarm reply (was_armed, edges)")
    b.pulse_status(3)
    eq(b.lines(), [], "no cut after disarm")
    b.expect_closed("disarmed", vin=True, vbus=True)
    reply, _ = b.ok("disarm")
    eq(reply["was_armed"], 0, "disarm when not armed")


def case_arm_cut_bad_args(mk):
    b = mk()
    for fields in ({}, {"edges": 0}, {"edges": -2}, {"edges": "3"}, {"edges": True}, {"edges": 2.0}):
        err = b.bad("arm_cut", **fields)
        check("edges" in err, "arm_cut %r: the error names edges: %r" % (fields, err))
    err = b.bad("arm_cut", edges=1, off_ms=-1)
    check("off_ms" in err, "the error names off_ms: %r" % (err,))
    eq(b.ok("status")[0]["armed"], 0, "not armed after refusals")
    b.pulse_status(2)
    eq(b.lines(), [], "no cut")


def case_cut_restore_replaces_power_timer(mk):
    b = mk()
    b.ok("power_off", ms=1000)
    b.ok("arm_cut", edges=1, off_ms=300)
    b.advance(100)
    b.pulse_status(1)
    eq(only(b.lines(), "cut")[0]["t"], 100, "cut t")
    eq(sorted(switches_of(b.advance(300))), [("vbus", True, "timer"), ("vin", True, "timer")],
       "restore at cut + off_ms")
    eq(b.advance(1000), [], "the power_off timer was replaced")


def case_cut_for_good_cancels_an_older_power_timer(mk):
    b = mk()
    b.ok("arm_cut", edges=1)  # a cut meant to last (off_ms 0) ...
    b.ok("power_off", ms=2000)  # ... armed while a power_off would restore at t=2000
    b.pulse_status(1)
    eq(len(only(b.lines(), "cut")), 1, "the cut fired")
    eq(b.advance(10 ** 6), [], "nothing restores a cut with off_ms 0")
    b.expect_closed("cut for good", vin=False, vbus=False)


def case_cut_reports_only_the_rails_it_opened(mk):
    b = mk()
    b.ok("switch", vbus=False)
    b.lines()
    b.ok("arm_cut", edges=1, off_ms=10)
    b.pulse_status(1)
    eq(switches_of(b.lines()), [("vin", False, "cut")], "switch events at a cut with VBUS already off")
    eq(switches_of(b.advance(10)), [("vin", True, "timer")], "the restore closes only what the cut opened")
    b.expect_closed("VBUS left open by hand", vin=True, vbus=False)


# -- bad lines -----------------------------------------------------------------------------------------
def case_unknown_cmd(mk):
    b = mk()
    reply, events = b.line('{"id": 7, "cmd": "reboot"}')
    eq((reply["ok"], reply["id"], reply["cmd"]), (False, 7, "reboot"), "unknown cmd reply (ok, id, cmd)")
    check("unknown cmd" in reply["error"] and "reboot" in reply["error"], "error: %r" % (reply["error"],))
    eq(events, [], "events")
    reply, _ = b.line('{"id": 8}')
    eq((reply["ok"], reply["id"]), (False, 8), "no cmd (ok, id)")
    check("unknown cmd" in reply["error"], "no cmd error: %r" % (reply["error"],))
    reply, _ = b.line('{"id": 9, "cmd": "_set"}')
    eq(reply["ok"], False, "a method name that is no command")


def case_not_json(mk):
    b = mk()
    for text in ("hello", "", '{"id": 1, "cmd": "ping"', "{'id': 1}"):
        reply, events = b.line(text)
        eq((reply["ok"], reply["id"]), (False, -1), "%r: (ok, id)" % (text,))
        check(reply["error"].startswith("not JSON"), "%r: error %r" % (text, reply["error"]))
        eq(events, [], "events")
    reply, _ = b.line('[1, 2]')
    eq(reply["ok"], False, "a JSON array")
    check("object" in reply["error"], "array error: %r" % (reply["error"],))
    b.expect_closed("after bad lines", vin=True, vbus=True, antenna=True)


def case_missing_id(mk):
    b = mk()
    for text in ('{"id": "3", "cmd": "power_off"}', '{"id": true, "cmd": "power_off"}',
                 '{"id": 1.0, "cmd": "power_off"}'):
        reply, events = b.line(text)
        eq((reply["ok"], reply["id"]), (False, -1), "%s: (ok, id)" % (text,))
        check("id" in reply["error"], "%s: the error names id: %r" % (text, reply["error"]))
        eq(events, [], "%s: events" % (text,))
    b.expect_closed("not carried out", vin=True, vbus=True)


def case_absent_id(mk):
    b = mk()
    reply, events = b.line('{"cmd": "power_off"}')
    eq((reply["ok"], reply["id"]), (False, -1), "no id: (ok, id)")
    check("id" in reply["error"], "no id: the error names id: %r" % (reply.get("error"),))
    eq(events, [], "no id: events")
    b.expect_closed("not carried out", vin=True, vbus=True)


def case_too_long_line(mk):
    b = mk()
    reply, events = b.line('{"id": 5, "cmd": "power_off"}', True)
    eq((reply["ok"], reply["id"]), (False, -1), "too long: (ok, id)")
    check("too long" in reply["error"] and "511" in reply["error"], "too long error: %r" % (reply["error"],))
    eq(events, [], "events")
    b.expect_closed("not carried out", vin=True, vbus=True)


# -- the main loop ------------------------------------------------------------------------------------
class _Stop(Exception):
    pass


class _Stdin:
    def __init__(self, text):
        self.text = text

    def read(self, n):
        out = self.text[:n]
        self.text = self.text[n:]
        return out


class _Stdout:
    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s
        return len(s)


class _Poller:
    """Input ready while there is some; then the loop is stopped (a board would idle on)."""

    def __init__(self, stdin):
        self.stdin = stdin

    def poll(self, timeout=-1):
        if self.stdin.text:
            return [(self.stdin, 1)]
        raise _Stop()


def case_serve_frames_lines(mk):
    b = mk()
    max_line = b.prog.MAX_LINE
    stdin = _Stdin('{"id": 1, "cmd": "ping"}\r\n' + "\n" + "x" * (max_line - 1) + "\n" + "x" * max_line + "\n"
                   + '{"id": 2, "cmd": "wake", "ms": 5}\r' + '{"id": 3, "cmd": "disarm"}\n')
    stdout = _Stdout()
    try:
        b.prog.serve(b.c, stdin, stdout, _Poller(stdin))
    except _Stop:
        pass
    check(stdout.text.endswith("\n"), "output ends with a newline: %r" % (stdout.text[-80:],))
    msgs = [json.loads(line) for line in stdout.text.split("\n")[:-1]]
    eq([m["ev"] for m in msgs], ["reply", "reply", "reply", "wkp", "reply", "reply"],
       "lines out (the hello was read at start; the empty line gets no reply)")
    eq((msgs[0]["cmd"], msgs[0]["ok"]), ("ping", True), "ping over CRLF")
    check(msgs[1]["error"].startswith("not JSON"), "a line of MAX_LINE - 1 bytes is read: %r" % (msgs[1],))
    check("too long" in msgs[2]["error"], "a line of MAX_LINE bytes is too long: %r" % (msgs[2],))
    eq((msgs[4]["id"], msgs[4]["ok"]), (2, True), "the next line after a too-long one (ended by a lone CR)")
    eq((msgs[5]["id"], msgs[5]["ok"]), (3, True), "the line after a lone CR")
    eq(b.level("wkp"), 1, "wake carried out")


# -- running ------------------------------------------------------------------------------------------
def all_cases():
    """[(name, function)] of every case_*, by name."""
    out = []
    for name, fn in globals().items():
        if name.startswith("case_"):
            out.append((name[5:], fn))
    out.sort(key=lambda item: item[0])
    return out


def run_all(pins, mk=None, cases=None):
    """Run every case (or `cases`, [(name, fn)]): one line per failure, then `N passed, M failed`
    (`, K skipped` added for EXPECTED_FAILURES that failed as expected; one that passes is a
    failure: remove it from the list). Without `mk`, builds companions the MicroPython way
    (micropython_maker). Returns M."""
    if mk is None:
        mk = micropython_maker(pins)
    passed = 0
    failed = 0
    xfailed = 0
    for name, fn in all_cases() if cases is None else cases:
        try:
            fn(mk)
        except Exception as exc:  # one line per failure, whatever it was
            if name in EXPECTED_FAILURES:
                xfailed += 1
                print("XFAIL %s: %s" % (name, EXPECTED_FAILURES[name]))
            else:
                failed += 1
                print("FAIL %s: %s: %s" % (name, type(exc).__name__, exc))
            continue
        if name in EXPECTED_FAILURES:
            failed += 1
            print("FAIL %s: passed, but is listed in EXPECTED_FAILURES: remove it there" % (name,))
        else:
            passed += 1
    print("%d passed, %d failed" % (passed, failed) + (", %d skipped" % xfailed if xfailed else ""))
    return failed
