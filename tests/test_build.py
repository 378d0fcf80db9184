"""The host build of the companion: the build cache, the bridge ABI (docs/dev/architecture.md)
and a minimal run with callbacks bound from Python (no simulator involved)."""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from otarig.sim import build as build_mod
from otarig.sim.build import BuildError, build_companion
from otarig.sim.host_runtime import CLOUD, DELAY, GPIO, LOOP_DONE, MILLIS, SERIAL, SLEEP, SYSTEM, HostApi

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is needed for the host build")

# The bridge ABI's ctypes types are the simulator's own (one definition of otarig_host.h in Python).

SYS_DISABLE_UPDATES, SYS_DISABLE_RESET, SYS_RESET_REASON, SYS_VERSION_NUMBER = 2, 7, 11, 13
CLOUD_CONNECT, CLOUD_FUNCTION, CLOUD_VARIABLE = 1, 7, 8
GPIO_MODE, GPIO_WRITE, GPIO_READ = 0, 1, 2


class FakeDevice:
    """Just enough of a device for one boot: time advances per call, the app aborts after a few delays."""

    def __init__(self, lib: ctypes.CDLL, abort_after: int = 3) -> None:
        self.lib = lib
        self.now = 0
        self.delays: list[int] = []
        self.abort_after = abort_after
        self.out = bytearray()
        self.ops: list[tuple[str, int]] = []
        self.gpio_ops: list[tuple[int, int, int]] = []
        self.eeprom = (ctypes.c_uint8 * 2047)(*([0xFF] * 2047))
        self._callbacks = (MILLIS(self.millis), DELAY(self.delay), LOOP_DONE(self.loop_done),
                           SERIAL(self.serial), SYSTEM(self.system), CLOUD(self.cloud), SLEEP(lambda req: -1))
        self._gpio = GPIO(self.gpio)
        self.api = HostApi(*self._callbacks, ctypes.cast(self.eeprom, ctypes.POINTER(ctypes.c_uint8)), 2047,
                           self._gpio)
        lib.otarig_bind(ctypes.byref(self.api))

    def millis(self) -> int:
        self.now += 1
        return self.now

    def delay(self, ms: int) -> int:
        self.delays.append(ms)
        self.now += ms
        return 1 if len(self.delays) >= self.abort_after else 0

    def loop_done(self) -> int:
        return 1 if len(self.delays) >= self.abort_after else 0

    def serial(self, op: int, buf, length: int) -> int:
        if op == 0:
            self.out += ctypes.string_at(buf, length)
            return length
        if op == 3:
            return 1  # host connected
        return 0

    def system(self, op: int, arg: int) -> int:
        self.ops.append(("sys", op))
        if op == SYS_RESET_REASON:
            return 40  # RESET_REASON_POWER_DOWN
        if op == SYS_VERSION_NUMBER:
            return 0x02030100
        return 0

    def cloud(self, op: int, a: bytes | None, b: bytes | None, flags: int) -> int:
        self.ops.append(("cloud", op))
        return 1 if op in (6, 7, 8) else 0

    def gpio(self, op: int, pin: int, value: int) -> int:
        self.gpio_ops.append((op, pin, value))
        return 1 if op == GPIO_READ else 0

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.decode().splitlines() if line.strip()]


def load(path: Path, tmp_path: Path) -> ctypes.CDLL:
    """dlopen a private copy: one path gives one instance, and each test wants fresh statics."""
    copy = tmp_path / f"fw-{len(list(tmp_path.iterdir()))}.so"
    shutil.copy2(path, copy)
    lib = ctypes.CDLL(str(copy))
    lib.otarig_config.restype = ctypes.c_int
    lib.otarig_retained.restype = ctypes.c_void_p
    lib.otarig_retained.argtypes = [ctypes.POINTER(ctypes.c_uint32)]
    lib.otarig_call_function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
    lib.otarig_get_variable.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    lib.otarig_list.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.otarig_system_event.argtypes = [ctypes.c_uint64, ctypes.c_int]
    return lib


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("otarig-cache")


@pytest.fixture(scope="module")
def variant_so(cache: Path) -> Path:
    mp = pytest.MonkeyPatch()
    mp.setenv("OTARIG_CACHE", str(cache))
    try:
        return build_companion(7, threaded=False, mutant=3, product_id=1234)
    finally:
        mp.undo()


def test_abi_and_config_values(variant_so: Path, tmp_path: Path) -> None:
    lib = load(variant_so, tmp_path)
    assert lib.otarig_abi_version() == 4
    assert lib.otarig_config(0) == 2  # SEMI_AUTOMATIC
    assert lib.otarig_config(1) == 0  # built with threaded=False
    assert lib.otarig_config(2) == 1234
    assert lib.otarig_config(3) == 7
    assert lib.otarig_config(4) == -1  # no defect id: a defect is a patched copy (firmware/mutants/)
    n = ctypes.c_uint32()
    assert lib.otarig_retained(ctypes.byref(n)) and n.value >= 4


def test_cache_returns_same_path_without_recompiling(variant_so: Path, cache: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTARIG_CACHE", str(cache))
    before = variant_so.stat().st_mtime_ns
    real_run = subprocess.run

    def no_compile(cmd, *args, **kwargs):
        assert "-c" not in cmd and "-shared" not in cmd, "the cached build was compiled again"
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(build_mod.subprocess, "run", no_compile)
    again = build_companion(7, threaded=False, mutant=3, product_id=1234)
    assert again == variant_so and again.stat().st_mtime_ns == before


def test_run_says_hello_and_returns_on_abort(variant_so: Path, tmp_path: Path) -> None:
    lib = load(variant_so, tmp_path)
    dev = FakeDevice(lib, abort_after=3)
    lib.otarig_run()  # returns: the third delay() reports abort → AppTerminated → caught

    lines = dev.lines()
    hello, boot = lines[0], lines[1]
    assert hello["ev"] == "hello" and hello["proto"] == 1 and hello["agent"] == "otarig-companion"
    assert hello["product_version"] == 7 and hello["product_id"] == 1234 and "mutant" not in hello
    assert hello["threaded"] is False and hello["mode"] == "SEMI_AUTOMATIC" and hello["device_os"] == "2.3.1"
    assert boot["ev"] == "boot" and boot["reset_reason"] == "power_down" and boot["reset_reason_code"] == 40
    assert all(len(line.encode()) + 1 <= 512 for line in dev.out.decode().splitlines())
    # docs/reference/particle-ota.md §3.1: updates disabled before connecting; parked loop paces itself with delay(1000)
    assert dev.ops.index(("sys", SYS_DISABLE_UPDATES)) < dev.ops.index(("cloud", CLOUD_CONNECT))
    assert dev.delays == [1000, 1000, 1000]

    # Handlers registered by the app are reachable through the bridge exports.
    found = ctypes.c_int()
    assert lib.otarig_call_function(b"workload", b"busy", ctypes.byref(found)) == 0 and found.value == 1
    assert lib.otarig_call_function(b"workload", b"bogus", ctypes.byref(found)) == -1
    lib.otarig_call_function(b"nope", b"", ctypes.byref(found))
    assert found.value == 0
    buf = ctypes.create_string_buffer(256)
    assert lib.otarig_get_variable(b"version", buf, 256) == 1 and buf.value == b"7"
    assert lib.otarig_get_variable(b"windowOpen", buf, 256) > 0 and buf.value in (b"true", b"false")
    assert lib.otarig_get_variable(b"unknown", buf, 256) == -1
    lib.otarig_list(0, buf, 256)
    assert buf.value.decode().split("\n") == ["workload"]
    lib.otarig_list(1, buf, 256)
    assert buf.value.decode().split("\n") == ["version", "records", "lastSeq", "windowOpen"]
    lib.otarig_system_event(1 << 9, 0)  # firmware_update_pending reaches the agent as a `sys` line
    assert dev.lines()[-1]["event"] == "firmware_update_pending"


def test_gpio_reaches_the_bound_callback(variant_so: Path, tmp_path: Path) -> None:
    """ABI 2: pinMode/digitalWrite go through `gpio`; the download status line (D6) starts LOW and
    encodes firmware_update begin/progress as rising edges, complete as LOW (docs/protocol.md)."""
    lib = load(variant_so, tmp_path)
    dev = FakeDevice(lib, abort_after=1)
    lib.otarig_run()
    assert dev.gpio_ops[:2] == [(GPIO_MODE, 6, 1), (GPIO_WRITE, 6, 0)]  # OUTPUT, LOW in setup()
    del dev.gpio_ops[:]
    firmware_update = 1 << 8
    for param in (0, 2, 1):  # begin, progress, complete
        lib.otarig_system_event(firmware_update, param)
    assert dev.gpio_ops == [(GPIO_WRITE, 6, 0), (GPIO_WRITE, 6, 1)] * 2 + [(GPIO_WRITE, 6, 0)]


def test_unbound_gpio_is_inert(variant_so: Path, tmp_path: Path) -> None:
    """A caller that leaves `gpio` NULL (an ABI-1-shaped struct) gets the bridge's inert default."""
    lib = load(variant_so, tmp_path)
    dev = FakeDevice(lib, abort_after=1)
    dev.api.gpio = GPIO()  # NULL
    lib.otarig_bind(ctypes.byref(dev.api))
    lib.otarig_run()
    lib.otarig_system_event(1 << 8, 0)
    assert dev.gpio_ops == [] and dev.lines()[0]["ev"] == "hello"


def test_garbage_input_gets_error_replies(variant_so: Path, tmp_path: Path) -> None:
    lib = load(variant_so, tmp_path)
    dev = FakeDevice(lib, abort_after=2)
    rx = bytearray(b'{"cmd":"ping","id":5}\n' b'not json "id": 9\n' + b"x" * 700 + b"\n"
                   b'{"cmd":"warp","id":6}\n' b'{"cmd":"workload","id":7,"state":"fast"}\n')

    def serial(op: int, buf, length: int) -> int:
        if op == 1:
            n = min(length, len(rx))
            ctypes.memmove(buf, bytes(rx[:n]), n)
            del rx[:n]
            return n
        if op == 2:  # available(): what is still queued, as a real USB CDC reports it
            return len(rx)
        return dev.serial(op, buf, length)

    dev._callbacks = (*dev._callbacks[:3], SERIAL(serial), *dev._callbacks[4:])
    dev.api.serial = dev._callbacks[3]
    lib.otarig_bind(ctypes.byref(dev.api))
    lib.otarig_run()
    replies = {r["id"]: r for r in dev.lines() if r["ev"] == "reply"}
    assert replies[5]["ok"] is True and replies[5]["proto"] == 1
    assert replies[9]["ok"] is False
    assert replies[6]["ok"] is False and "unknown cmd" in replies[6]["error"]
    assert replies[7]["ok"] is False and "state" in replies[7]["error"]


def test_compile_error_names_the_cause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fw = tmp_path / "firmware"  # a tiny tree: the error path need not compile the real firmware
    (fw / "host").mkdir(parents=True)
    (fw / "companion" / "src").mkdir(parents=True)
    (fw / "companion" / "src" / "broken.cpp").write_text("int broken( {\n")
    monkeypatch.setenv("OTARIG_FIRMWARE_DIR", str(fw))
    monkeypatch.setenv("OTARIG_CACHE", str(tmp_path / "cache"))
    with pytest.raises(BuildError, match=r"broken\.cpp"):
        build_companion()


def test_missing_compiler_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXX", "no-such-g++")
    with pytest.raises(BuildError, match="no-such-g\\+\\+"):
        build_companion()


def test_dlclose_unloads_and_reload_reinitialises_statics(variant_so: Path, tmp_path: Path) -> None:
    """Architecture "Execution model": a reset reloads the library and re-runs static constructors."""
    import _ctypes

    copy = tmp_path / "reload.so"
    shutil.copy2(variant_so, copy)
    buf = ctypes.create_string_buffer(64)
    for _ in range(2):
        lib = ctypes.CDLL(str(copy))
        lib.otarig_list.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        assert lib.otarig_list(0, buf, 64) == 0  # nothing registered before setup()
        dev = FakeDevice(lib, abort_after=1)
        lib.otarig_run()
        assert lib.otarig_list(0, buf, 64) > 0
        handle = lib._handle
        del lib, dev
        _ctypes.dlclose(handle)
        assert str(copy) not in Path("/proc/self/maps").read_text()


# -- build options from the generated header (docs/building-firmware.md) ---------------------------

REPO = Path(__file__).resolve().parents[1]
BUILD_VARIANTS = REPO / "tools" / "electron" / "build-variants.sh"


def variant_tree(tmp_path: Path, *args: str) -> Path:
    """A firmware/ tree whose companion is the project copy `build-variants.sh --config-only` writes
    (with its generated otarig_build_config.h) beside the real host layer."""
    apps = tmp_path / "apps"
    proc = subprocess.run(["bash", str(BUILD_VARIANTS), "--config-only", str(apps), *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (app,) = [Path(line) for line in proc.stdout.splitlines()]
    fw = tmp_path / "firmware"
    fw.mkdir()
    shutil.copytree(REPO / "firmware" / "host", fw / "host")
    shutil.copytree(app, fw / "companion")
    return fw


def test_generated_header_configures_a_build_without_defines(tmp_path: Path) -> None:
    """Like `particle compile`: no -D at all, every option from
    src/otarig_build_config.h (through otarig_options.h); --mutant applies the shipped defect's patch."""
    fw = variant_tree(tmp_path, "--non-threaded-only", "--mutant", "3", "--product-id", "1234",
                      "--define", "OTARIG_SYSTEM_MODE=MANUAL", "7")
    header = (fw / "companion" / "src" / "otarig_build_config.h").read_text()
    assert "#define COMPANION_VERSION 7" in header and "#define OTARIG_THREADED 0" in header
    assert "COMPANION_MUTANT" not in header
    assert "System.disableReset()" not in (fw / "companion" / "lib" / "OtaGuard" / "src" / "OtaGuard.cpp").read_text()
    compiled, _, include_dirs = build_mod._sources(fw, fw / "companion")
    flags = [*build_mod.BASE_FLAGS, *(f"-I{d}" for d in include_dirs)]
    assert not any(f.startswith("-D") for f in flags)
    so = tmp_path / "header-only.so"
    build_mod._compile_and_link(build_mod._compiler(), flags,
                                [f"-Wl,--version-script={fw / 'host' / 'otarig_exports.map'}"],
                                compiled, tmp_path, so, "header only")
    lib = load(so, tmp_path)
    assert [lib.otarig_config(k) for k in range(4)] == [3, 0, 1234, 7]  # MANUAL, nt, id, version


def test_defines_win_over_the_generated_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A header left in a tree does not change what build_companion (the host build) asks for."""
    fw = variant_tree(tmp_path, "--non-threaded-only", "--mutant", "5", "9")
    monkeypatch.setenv("OTARIG_FIRMWARE_DIR", str(fw))
    monkeypatch.setenv("OTARIG_CACHE", str(tmp_path / "cache"))
    lib = load(build_companion(2, threaded=True, product_id=4242), tmp_path)
    assert [lib.otarig_config(k) for k in range(4)] == [2, 1, 4242, 2]


@pytest.mark.parametrize("args, message", [
    (["0"], "bad VERSION"),
    (["--mutant", "7", "2"], "bad --mutant"),
    (["--define", "NO VALUE", "2"], "bad --define"),
    (["--config-only"], "--config-only needs a value"),
    ([], "no VERSION"),
])
def test_build_variants_refuses_bad_arguments(args: list[str], message: str) -> None:
    proc = subprocess.run(["bash", str(BUILD_VARIANTS), *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and message in proc.stderr


def test_build_variants_prepares_folders_and_prints_cloud_compile(tmp_path: Path) -> None:
    """The default (no --config-only): one project folder per variant under build/electron-src, and
    for each the `particle compile` command (Device OS 2.3.1); nothing is compiled, no toolchain needed.
    Run from a copy of the script so the defaults land in tmp_path, not in this repository."""
    root = tmp_path / "repo"
    (root / "tools" / "electron").mkdir(parents=True)
    (root / "firmware").mkdir()
    shutil.copy2(BUILD_VARIANTS, root / "tools" / "electron" / BUILD_VARIANTS.name)
    (root / "firmware" / "companion").symlink_to(REPO / "firmware" / "companion")
    proc = subprocess.run(["bash", str(root / "tools" / "electron" / BUILD_VARIANTS.name), "2", "3"],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    apps, bins = root / "build" / "electron-src", root / "build" / "electron"
    names = ["companion-v2", "companion-v2-nt", "companion-v3", "companion-v3-nt"]
    assert proc.stdout.splitlines() == [str(apps / n) for n in names]
    for n in names:
        header = (apps / n / "src" / "otarig_build_config.h").read_text()
        assert f"#define COMPANION_VERSION {n[11]}" in header
        assert f"#define OTARIG_THREADED {0 if n.endswith('-nt') else 1}" in header
        assert (apps / n / "project.properties").is_file() and (apps / n / "lib").is_dir()
        assert f"particle compile electron {apps / n} --target 2.3.1 --saveTo {bins / n}.bin" in \
            proc.stderr.splitlines(), proc.stderr
    assert not bins.exists()  # the commands are printed, not run
    assert not (REPO / "firmware" / "companion" / "src" / "otarig_build_config.h").exists()


def test_build_variants_config_only_and_out_still_work(tmp_path: Path) -> None:
    apps, bins = tmp_path / "apps", tmp_path / "bins"
    proc = subprocess.run(["bash", str(BUILD_VARIANTS), "--config-only", str(apps), "-o", str(bins),
                           "--threaded-only", "--mutant", "4", "2"],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(apps / "companion-v2-m4")]
    assert "COMPANION_MUTANT" not in (apps / "companion-v2-m4" / "src" / "otarig_build_config.h").read_text()
    assert "defect: the power saver naps" in (apps / "companion-v2-m4" / "src" / "companion.cpp").read_text()
    assert f"--saveTo {bins / 'companion-v2-m4.bin'}" in proc.stderr
