# A stand-in for the RP2040 board's `machine` module with a manual clock, for the bench companion's
# protocol cases (protocol_cases.py).
#
# It runs on CPython (tests/test_bench_companion_protocol.py loads it with
# otarig.sim.micropython_host.load_module) and on real MicroPython (tools/micropython/run.mjs writes
# it as /lib/machine.py), so it is MicroPython-compatible: no f-strings, typing or dataclasses.
#
# Besides `Pin` and `Timer` it has what the program takes from `time` (ticks_ms, ...) and from
# `micropython` (schedule, alloc_emergency_exception_buf), so that it can stand in for those too:
# then event times are on the manual clock, and a scheduled callback runs after the hard IRQ
# handler that scheduled it returned, as on the board. On MicroPython `schedule` is the VM's own,
# and a hard IRQ handler runs with the heap locked (as `mp_irq_dispatch` does on the board), so an
# allocation in it fails there as it would on the RP2040 (see _hard_irq).
#
# Test helpers: reset() (fresh state), advance(ms) (fires due timers in order), drive(pin, level)
# (an input edge), level(pin) (an output's level), now() (the clock).

try:
    import micropython as _mp  # the VM's own module, even if the caller later stands us in for it
except ImportError:  # CPython
    _mp = None

# MicroPython's ticks_ms() wraps at 2**30 (extmod/modtime.c). Masks, not `% (1 << 30)`: 2**30 is no
# small int on a 32-bit port, and arithmetic on it allocates (fatal in a hard IRQ).
TICKS_MAX = 0x3FFFFFFF
TICKS_HALF = 0x20000000
SCHEDULE_DEPTH = 4  # MICROPY_SCHEDULER_DEPTH: a fuller queue raises RuntimeError

_now = 0
_seq = 0  # orders timers armed for the same instant
_pins = {}  # pin id -> _PinState (Pin objects for one id share it, as the hardware does)
_timers = []  # armed Timer objects
_pending = []  # CPython only: (fn, arg) queued by schedule()
_emergency_buf = 0


def reset():
    """Fresh state: clock at 0, no pins, no timers, nothing scheduled."""
    global _now, _seq, _pins, _timers, _pending, _emergency_buf
    _now = 0
    _seq = 0
    _pins = {}
    _timers = []
    _pending = []
    _emergency_buf = 0


# -- time ----------------------------------------------------------------------------------------
def now():
    """The manual clock in ms (does not wrap)."""
    return _now


def ticks_ms():
    return _now & TICKS_MAX


def ticks_add(ticks, delta):
    return (ticks + delta) & TICKS_MAX


def ticks_diff(ticks1, ticks2):
    return ((ticks1 - ticks2 + TICKS_HALF) & TICKS_MAX) - TICKS_HALF


def sleep_ms(ms):
    """Blocking sleep on the manual clock: timers due meanwhile fire."""
    advance(ms)


def advance(ms):
    """Move the clock on by `ms`, firing each timer at its due time, earliest (then first armed)
    first. A callback may arm or cancel timers; those due within the window fire too."""
    global _now
    if ms < 0:
        raise ValueError("advance: negative ms")
    end = _now + ms
    while True:
        due = None
        for tim in _timers:
            if tim._due <= end and (due is None or (tim._due, tim._seq) < (due._due, due._seq)):
                due = tim
        if due is None:
            break
        _now = due._due
        if due._mode == Timer.PERIODIC:
            due._arm(due._period)
        else:
            _timers.remove(due)
        due._callback(due)
        _run_pending()
    _now = end


# -- micropython ---------------------------------------------------------------------------------
def alloc_emergency_exception_buf(size):
    """The RP2040 port has it; MicroPython's WebAssembly port does not."""
    global _emergency_buf
    _emergency_buf = size


def _schedule(fn, arg):
    if len(_pending) >= SCHEDULE_DEPTH:
        raise RuntimeError("schedule queue full")
    _pending.append((fn, arg))


schedule = _mp.schedule if _mp is not None else _schedule


def _run_pending():
    """Let scheduled callbacks run, as the board does soon after an interrupt handler returns."""
    if _mp is not None:
        for _ in range(2):  # the VM runs pending callbacks at a backward jump
            pass
        return
    while _pending:
        fn, arg = _pending.pop(0)
        fn(arg)


# -- Pin -----------------------------------------------------------------------------------------
class _PinState:
    def __init__(self):
        self.mode = -1
        self.pull = -1
        self.out = 0  # output latch
        self.inp = None  # level driven from outside; None: not driven (the pull decides)
        self.handler = None
        self.trigger = 0
        self.hard = False
        self.obj = None


def _state(pin):
    if isinstance(pin, Pin):
        pin = pin.id
    st = _pins.get(pin)
    if st is None:
        st = _PinState()
        _pins[pin] = st
    return st


def _input_level(st):
    if st.inp is not None:
        return st.inp
    return 1 if st.pull == Pin.PULL_UP else 0


class Pin:
    # rp2 port values (ports/rp2/machine_pin.c)
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        self.id = id
        _state(id)
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None):
        st = _state(self.id)
        if value is not None:
            st.out = 1 if value else 0
        if mode != -1:
            if mode not in (Pin.IN, Pin.OUT, Pin.OPEN_DRAIN):
                raise ValueError("invalid pin mode: %r" % (mode,))
            st.mode = mode
        if pull != -1:
            if pull not in (None, Pin.PULL_UP, Pin.PULL_DOWN):
                raise ValueError("invalid pull: %r" % (pull,))
            st.pull = pull

    def value(self, x=None):
        st = _state(self.id)
        if x is None:
            return st.out if st.mode == Pin.OUT else _input_level(st)
        st.out = 1 if x else 0
        return None

    def __call__(self, x=None):
        return self.value(x)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    high = on
    low = off

    def toggle(self):
        st = _state(self.id)
        st.out = 1 - st.out

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, *, priority=1, wake=None, hard=False):
        st = _state(self.id)
        st.handler = handler
        st.trigger = trigger
        st.hard = hard
        st.obj = self
        return handler

    def __repr__(self):
        return "Pin(%r)" % (self.id,)


def drive(pin, level):
    """Drive input `pin` (a number or Pin) to `level`; on a change matching the IRQ trigger, call
    the handler (with the heap locked for a hard IRQ on MicroPython), then let scheduled
    callbacks run. Driving a pin to the level it has is no edge."""
    st = _state(pin)
    if st.mode == Pin.OUT:
        raise ValueError("drive: pin %r is an output" % (pin,))
    level = 1 if level else 0
    before = _input_level(st)
    st.inp = level
    if level == before or st.handler is None:
        return
    edge = Pin.IRQ_RISING if level else Pin.IRQ_FALLING
    if not st.trigger & edge:
        return
    if st.hard and _mp is not None:
        try:
            _hard_irq(st.handler, st.obj)
        except MemoryError:
            raise AssertionError("the hard IRQ handler of pin %r allocated (the heap is locked in a hard IRQ)"
                                 % (pin,))
    else:
        st.handler(st.obj)
    _run_pending()


def _hard_irq(handler, obj):
    """Call `handler` with the heap locked, as the board calls a hard IRQ handler.

    The board also locks the scheduler; Python cannot, so keep this try/finally free of other
    branches: the VM runs pending callbacks at a jump, and one run before heap_unlock() would fail
    to allocate. (A handler that branches after calling schedule() could still trip on that here,
    though not on the board; the program schedules last.)"""
    _mp.heap_lock()
    try:
        handler(obj)
    finally:
        _mp.heap_unlock()


def level(pin):
    """The level an output pin drives (a number or Pin)."""
    st = _pins.get(pin.id if isinstance(pin, Pin) else pin)
    if st is None or st.mode not in (Pin.OUT, Pin.OPEN_DRAIN):
        raise ValueError("level: pin %r is not an output" % (pin,))
    return st.out  # OPEN_DRAIN: 0 pulls the line low, 1 lets it float (the DUT's pull-up)


# -- Timer ---------------------------------------------------------------------------------------
class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, *, mode=1, period=-1, callback=None, freq=-1, hard=False):
        self.id = id
        self._mode = mode
        self._period = 0
        self._callback = None
        self._due = 0
        self._seq = 0
        if callback is not None:
            self.init(mode=mode, period=period, callback=callback, freq=freq)

    def init(self, *, mode=1, period=-1, callback=None, freq=-1, hard=False):
        if freq != -1:
            period = 1000 // freq
        if period < 0:
            period = 0xFFFFFFFF  # MicroPython's default: never, in practice
        if mode == Timer.PERIODIC and period < 1:
            raise ValueError("periodic timer needs a period >= 1 ms")
        if callback is None:
            raise ValueError("timer without a callback")
        self.deinit()
        self._mode = mode
        self._period = period
        self._callback = callback
        self._arm(period)
        _timers.append(self)

    def _arm(self, period):
        global _seq
        _seq += 1
        self._seq = _seq
        self._due = _now + period

    def deinit(self):
        if self in _timers:
            _timers.remove(self)

    def __repr__(self):
        return "Timer(%r, period=%d)" % (self.id, self._period)


def timers():
    """The armed timers' due times (ms on the manual clock), earliest first."""
    return sorted(t._due for t in _timers)
