# The tester board's program: MicroPython on the RP2040 beside the Electron (docs/protocol.md,
# "The tester board").
#
# Why a board of its own: an Electron is cellular (no cable to pull), is also fed by USB VBUS, and a
# LAN-commanded PSU cuts power tens of milliseconds late (docs/reference/instruments-and-faults.md B.1,
# recommendation 6). This program switches the Electron's VIN, USB VBUS and antenna through GPIOs,
# pulses its WKP pin, and times faults *locally*: a cut "at the K-th rising edge of the download
# status line" happens in the pin's interrupt handler, with no host round trip. An optional `mode`
# line (open drain, active low, on the Electron's MODE button) presses the button for given times.
#
# Runs unchanged on MicroPython (RP2040) and, inside the simulated bench, on CPython with a
# `machine` module wired to the simulated Electron. Keep it to what both have: no f-strings, no
# typing imports, no dataclasses.
import json
import time

from machine import Pin, Timer

try:
    from micropython import schedule
except ImportError:  # CPython (the simulated bench, the tests): callbacks are not hard interrupts

    def schedule(fn, arg):  # type: ignore[misc]
        fn(arg)

try:
    from micropython import alloc_emergency_exception_buf

    alloc_emergency_exception_buf(100)  # a traceback from the hard IRQ can still be printed
except ImportError:
    pass


PROTO = 1
AGENT = "otarig-bench"
VERSION = "1.0.0"
MAX_LINE = 512
#: ticks_ms() wraps; a delay longer than this is refused (MicroPython: TICKS_PERIOD / 2 is safe).
MAX_MS = 24 * 3600 * 1000
SWITCHES = ("vin", "vbus", "antenna")
#: press_mode: at most 5 presses (Device OS counts up to 5 clicks, system/src/main.cpp ~299-305)
MAX_PRESSES = 5


class BadCommand(Exception):
    """A command the board cannot carry out; the text goes back in the reply's `error`."""


class Switch:
    """A GPIO-driven switch (MOSFET, USB power switch, RF switch). `closed` = conducting."""

    def __init__(self, name, cfg, closed=True):
        self.name = name
        self.active_high = bool(cfg.get("active_high", True))
        self.closed = closed
        self.pin = Pin(cfg["pin"], Pin.OUT, value=self._level(closed))

    def _level(self, closed):
        return 1 if closed == self.active_high else 0

    def set(self, closed):
        """Safe in a hard interrupt: no allocation."""
        self.closed = closed
        self.pin.value(self._level(closed))


class BenchCompanion:
    """Switches, the status-line edge counter, local fault timers, and the line protocol."""

    def __init__(self, pins, platform="rp2"):
        self.platform = platform
        self.pin_map = {}
        for name in SWITCHES + ("wkp", "status"):
            if name not in pins or "pin" not in pins[name]:
                raise ValueError("pin map: missing '%s' (with a 'pin' number)" % name)
            self.pin_map[name] = pins[name]["pin"]
        self.switches = {}
        for name in SWITCHES:
            self.switches[name] = Switch(name, pins[name])
        self.wkp = Pin(pins["wkp"]["pin"], Pin.OUT, value=0)
        # Optional (older pin maps lack it): open drain on the Electron's MODE button, which has its
        # own pull-up; 1 = released (the line floats high), 0 = pressed (pulled to GND).
        self.mode = None
        if "mode" in pins and "pin" in pins["mode"]:
            self.pin_map["mode"] = pins["mode"]["pin"]
            self.mode = Pin(pins["mode"]["pin"], Pin.OPEN_DRAIN, value=1)
        self.mode_pressed = False
        self.status = Pin(pins["status"]["pin"], Pin.IN, Pin.PULL_DOWN)
        self.edges = 0  # rising edges of the status line since start or the last arm_cut
        self.cut_at = 0  # 0: no cut armed; else cut at this many edges
        self.cut_off_ms = 0
        self.cut_t = 0
        self.cut_vin = False  # which rails the cut opened (plain bools: set in a hard IRQ)
        self.cut_vbus = False
        self.events = []  # lines waiting for the main loop (callbacks never print themselves)
        self.timers = {}  # what -> Timer, so a new command cancels the old timer
        self._after_cut_ref = self._after_cut  # bound once: a hard IRQ must not allocate
        self.status.irq(handler=self._on_status, trigger=Pin.IRQ_RISING, hard=True)
        self.emit("hello", self.hello())

    # -- events ---------------------------------------------------------------------------------
    def emit(self, name, fields, t=None):
        ev = {"ev": name, "t": time.ticks_ms() if t is None else t}
        ev.update(fields)
        self.events.append(json.dumps(ev))

    def take_lines(self):
        lines, self.events = self.events, []
        return lines

    def hello(self):
        return {"proto": PROTO, "agent": AGENT, "version": VERSION, "platform": self.platform,
                "pins": self.pin_map, "switches": self.switch_states()}

    def switch_states(self):
        out = {}
        for name in SWITCHES:
            out[name] = self.switches[name].closed
        return out

    def _set(self, name, closed, by, t=None):
        sw = self.switches[name]
        if sw.closed != closed:
            sw.set(closed)
            self.emit("switch", {"name": name, "closed": closed, "by": by}, t)

    # -- timers ---------------------------------------------------------------------------------
    def _cancel(self, what):
        tim = self.timers.pop(what, None)
        if tim is not None:
            tim.deinit()

    def _after(self, what, ms, fn):
        self._cancel(what)

        def fire(_tim):
            self.timers.pop(what, None)
            fn()

        self.timers[what] = Timer(-1, mode=Timer.ONE_SHOT, period=ms, callback=fire)

    def _close_later(self, names, ms, what):
        def restore():
            for n in names:
                self._set(n, True, "timer")

        self._after(what, ms, restore)

    # -- the status line (hard interrupt) ---------------------------------------------------------
    def _on_status(self, _pin):
        self.edges += 1
        if self.cut_at and self.edges >= self.cut_at:
            self.cut_vin = self.switches["vin"].closed
            self.cut_vbus = self.switches["vbus"].closed
            self.switches["vin"].set(False)
            self.switches["vbus"].set(False)
            self.cut_at = 0
            self.cut_t = time.ticks_ms()
            schedule(self._after_cut_ref, self.edges)

    def _after_cut(self, edges):
        t = self.cut_t
        self.emit("cut", {"edges": edges, "off_ms": self.cut_off_ms}, t)
        if self.cut_vin:
            self.emit("switch", {"name": "vin", "closed": False, "by": "cut"}, t)
        if self.cut_vbus:
            self.emit("switch", {"name": "vbus", "closed": False, "by": "cut"}, t)
        if self.cut_off_ms:
            # the cut takes over a pending power_off restore; a rail opened by `switch` stays open
            pending = "power" in self.timers
            opened = [n for n, was in (("vin", self.cut_vin), ("vbus", self.cut_vbus)) if was or pending]
            self._close_later(opened, self.cut_off_ms, "power")
        else:
            self._cancel("power")  # an older power_off timer must not undo a cut meant to last

    # -- commands -------------------------------------------------------------------------------
    def handle(self, line, too_long=False):
        """One command line → its reply (queued after any events it caused)."""
        cmd_id = -1
        name = "?"
        try:
            if too_long:
                raise BadCommand("line too long (max %d bytes)" % (MAX_LINE - 1))
            try:
                cmd = json.loads(line)
            except ValueError:
                raise BadCommand("not JSON: %s" % line[:60])
            if not isinstance(cmd, dict):
                raise BadCommand("not a JSON object")
            cmd_id = cmd.get("id")
            if not isinstance(cmd_id, int) or isinstance(cmd_id, bool):
                cmd_id = -1
                raise BadCommand("missing key id (an integer)")
            name = cmd.get("cmd")
            fn = getattr(self, "cmd_" + name, None) if isinstance(name, str) else None
            if fn is None:
                raise BadCommand("unknown cmd: %s" % name)
            reply = fn(cmd)
            reply["ok"] = True
        except BadCommand as exc:
            reply = {"ok": False, "error": exc.args[0]}
        reply["id"] = cmd_id
        reply["cmd"] = name
        self.emit("reply", reply)

    def cmd_ping(self, cmd):
        return self.hello()

    def cmd_status(self, cmd):
        out = {"switches": self.switch_states(), "status_line": self.status.value(), "edges": self.edges,
               "armed": self.cut_at, "wkp": self.wkp.value(), "timers": sorted(self.timers)}
        if self.mode is not None:
            out["mode_pressed"] = self.mode_pressed
        return out

    def cmd_switch(self, cmd):
        """Set any of vin / vbus / antenna now; cancels a timer that would undo it."""
        given = [n for n in SWITCHES if n in cmd]
        if not given:
            raise BadCommand("switch: give at least one of vin, vbus, antenna (true = on)")
        for n in given:
            if not isinstance(cmd[n], bool):
                raise BadCommand("bad key %s: expected true or false" % n)
        for n in given:
            self._cancel("antenna" if n == "antenna" else "power")
            self._set(n, cmd[n], "cmd")
        return {"switches": self.switch_states()}

    def cmd_power_off(self, cmd):
        """VIN and VBUS off now; on again after `ms` (0: stay off until `switch`)."""
        ms = _ms(cmd, "ms")
        self._cancel("power")
        self._set("vin", False, "cmd")
        self._set("vbus", False, "cmd")
        if ms:
            self._close_later(("vin", "vbus"), ms, "power")
        return {"ms": ms}

    def cmd_antenna_off(self, cmd):
        """Antenna disconnected now; connected again after `ms` (0: until `switch`)."""
        ms = _ms(cmd, "ms")
        self._set("antenna", False, "cmd")
        if ms:
            self._close_later(("antenna",), ms, "antenna")
        else:
            self._cancel("antenna")
        return {"ms": ms}

    def cmd_arm_cut(self, cmd):
        """Cut VIN and VBUS at the `edges`-th rising edge of the status line from now, for `off_ms`."""
        edges = cmd.get("edges")
        if not isinstance(edges, int) or isinstance(edges, bool) or edges < 1:
            raise BadCommand("bad key edges: expected an integer >= 1")
        off_ms = _ms(cmd, "off_ms")
        self.cut_at = 0  # disarm while the counter restarts (the IRQ may fire meanwhile)
        self.edges = 0
        self.cut_off_ms = off_ms
        self.cut_at = edges
        return {"armed": edges, "off_ms": off_ms}

    def cmd_disarm(self, cmd):
        was = self.cut_at
        self.cut_at = 0
        return {"was_armed": was, "edges": self.edges}

    def cmd_wake(self, cmd):
        """A rising edge on the Electron's WKP pin: high for `ms` (default 10), then low."""
        ms = _ms(cmd, "ms", 10)
        if ms < 1:
            raise BadCommand("bad key ms: the pulse needs at least 1 ms")
        self.wkp.value(1)
        self.emit("wkp", {"level": 1})

        def release():
            self.wkp.value(0)
            self.emit("wkp", {"level": 0})

        self._after("wkp", ms, release)
        return {"ms": ms}

    def _press(self, pressed):
        mode = self.mode
        if mode is None:
            return
        self.mode_pressed = pressed
        mode.value(0 if pressed else 1)
        self.emit("mode", {"pressed": pressed})

    def cmd_press_mode(self, cmd):
        """Press the Electron's MODE button `count` times (default 1), each for `ms` (default 100),
        released `gap_ms` (default 250) between presses. A double click (count 2, presses of 30-500 ms,
        gaps under 1 s) powers an Electron off (docs/protocol.md, "The tester board"). A new
        press_mode cancels a sequence still running (the button is released first)."""
        if self.mode is None:
            raise BadCommand("press_mode: no 'mode' pin in the pin map (bench_pins.json): this tester "
                             "has no line to the MODE button")
        ms = _ms(cmd, "ms", 100)
        gap_ms = _ms(cmd, "gap_ms", 250)
        count = cmd.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1 or count > MAX_PRESSES:
            raise BadCommand("bad key count: expected an integer 1..%d" % MAX_PRESSES)
        if ms < 1 or gap_ms < 1:
            raise BadCommand("bad key ms / gap_ms: a press and a gap need at least 1 ms")
        self._cancel("mode")
        if self.mode_pressed:
            self._press(False)
        left = [count]

        def release():
            self._press(False)
            left[0] -= 1
            if left[0]:
                self._after("mode", gap_ms, press)

        def press():
            self._press(True)
            self._after("mode", ms, release)

        press()
        return {"ms": ms, "count": count, "gap_ms": gap_ms}


def _ms(cmd, key, default=0):
    v = cmd.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v > MAX_MS:
        raise BadCommand("bad key %s: expected milliseconds, an integer 0..%d" % (key, MAX_MS))
    return v


def serve(companion, stdin, stdout, poller, idle_ms=10):
    """The main loop: read command lines from USB serial, print queued events and replies.

    A line ends at LF or CR, so a terminal's Enter works too; an empty line is ignored.

    Callbacks only queue lines; this loop prints them, so a line is never cut in two by an
    interrupt. `poller` is a `select.poll()` with `stdin` registered for input.
    """
    buf = []
    size = 0
    while True:
        for line in companion.take_lines():
            stdout.write(line + "\n")
        if not poller.poll(idle_ms):
            continue
        ch = stdin.read(1)
        if not ch:
            continue
        if ch == "\n" or ch == "\r":  # LF, CR (a terminal's Enter) or CRLF; empty lines are skipped
            if size:
                companion.handle("".join(buf), size >= MAX_LINE)
            buf = []
            size = 0
        else:
            size += 1
            if size < MAX_LINE:
                buf.append(ch)
