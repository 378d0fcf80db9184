"""The baseline transition: bring the bench to a known state before every scenario.

In labgrid's words a *strategy*: whatever the previous scenario left behind (a candidate version
installed, updates forced, the device locked, the group released to a candidate, the app busy or
holding resets, the tester with a cut armed), the next scenario starts from the same place:
the baseline version running, the cloud state clean, the app idle, the cloud connected. It uses
only what every bench has, so it runs the same on hardware, a stand-in and the simulated bench.
"""
from __future__ import annotations

from typing import Any

from .board import BoardError, ExpectTimeout, NotSupported
from .interfaces import FirmwareBuild

#: bench seconds to wait for the test agent to answer (a board may be booting or asleep)
AGENT_WAIT_S = 180.0
#: bench seconds for the baseline to be flashed and boot
FLASH_WAIT_S = 900.0
#: bench seconds for the cloud connection
CONNECT_WAIT_S = 600.0


#: bench seconds of silence before each remedy (wake on WKP, then a power cycle)
REMEDY_AFTER_S = 30.0


def _remedies(rig: Any) -> list[tuple[str, Any]]:
    """What the tester board can do for a silent DUT, gentlest first."""
    tester, caps = rig.bench_companion, rig.cfg.capabilities
    out: list[tuple[str, Any]] = []
    if tester is None:
        return out
    if caps.wake_pin:
        out.append(("wake", lambda: tester.wake(10)))
    if caps.power_switch and caps.vbus_switch:
        out.append(("power_cycle", lambda: tester.power_off(2000)))
    return out


class TransitionFailed(RuntimeError):
    """The bench could not be brought to the baseline; the scenario errors with this message."""


class NoTestAgent(TransitionFailed):
    """The board never spoke the test agent's protocol: its firmware does not run TestAgent, so
    no scenario can run; the run stops at bench start with what to add."""


def _agent_seen(board: Any) -> bool:
    """Whether the board ever sent a `hello` or a `reply` (docs/protocol.md "Versioning")."""
    return any(getattr(e, "name", None) in ("hello", "reply") for _, e in board.history_since(0))


class BaselineStrategy:
    """`transition(rig)`: baseline version, clean cloud state, app idle, cloud connected."""

    def __init__(self, baseline: int) -> None:
        self.baseline = baseline

    def transition(self, rig: Any) -> None:
        rig.timeline.add(rig.now(), "rig", "baseline", {"version": self.baseline})
        if rig.bench_companion is not None:
            rig.bench_companion.release()  # nothing armed, rails on, antenna connected
        status = self._status(rig, AGENT_WAIT_S)
        build = rig.parts.firmware.get(self.baseline, threaded=rig.parts.threaded)
        rig.cloud.reset_device(rig.dut_id)
        if rig.parts.board_threaded is None or rig.parts.board_threaded != rig.parts.threaded:
            rig.parts.board_threaded = bool(rig.command("ping").get("threaded"))  # the variant it runs
        if status.get("product_version") != self.baseline or rig.parts.board_threaded != rig.parts.threaded:
            self._flash_baseline(rig, build, status.get("product_version"))
            rig.parts.board_threaded = rig.parts.threaded
            status = self._status(rig, AGENT_WAIT_S)
        rig.cloud.reset_group(self.baseline, build.image)
        if status.get("workload") != "idle":
            rig.command("workload", state="idle")
        try:
            rig.command("reset_hold", hold=False)  # the test agent's hold; idempotent (the status cannot tell it)
        except NotSupported:
            pass  # the firmware has no reset hold to release (docs/your-firmware.md "Hooks")
        self.wait_connected(rig, CONNECT_WAIT_S)
        rig.collect()

    def _flash_baseline(self, rig: Any, build: Any, running: Any) -> None:
        """The baseline binary, as this run names it in the cloud (its product version in the
        suffix), onto the board: over USB, or as a cloud OTA."""
        flasher = rig.parts.flasher
        if flasher is None:
            raise TransitionFailed(f"board {rig.dut_id} runs version {running}, not the baseline {self.baseline}, "
                                   "and the bench has no flasher")
        rig.timeline.add(rig.now(), "rig", "baseline_flash", {"from": running, "to": self.baseline,
                                                               "method": flasher.method})
        rig.cloud.upload(self.baseline, build.image, build.label)
        if flasher.method == "cloud":
            self.wait_connected(rig, CONNECT_WAIT_S)
        flasher.flash(rig.dut_id, FirmwareBuild(self.baseline, rig.cloud.prepare(build.image, self.baseline),
                                                build.label))
        rig.expect_version(self.baseline, FLASH_WAIT_S)

    @staticmethod
    def _status(rig: Any, timeout: float) -> dict:
        """The agent's status, retried through reboots until `timeout` bench seconds. A board that
        stays silent is woken on WKP, then power-cycled, when the tester board can (a scenario may
        have left it asleep in HIBERNATE, or hung)."""
        start = rig.now()
        deadline = start + timeout
        last: Exception | None = None
        remedies = _remedies(rig)
        applied = 0  # remedy k is tried after (k + 1) × REMEDY_AFTER_S of silence
        while rig.now() < deadline:
            try:
                return rig.command("status", timeout=min(10.0, max(deadline - rig.now(), 0.1)))
            except BoardError as exc:
                last = exc
                if applied < len(remedies) and rig.now() - start >= REMEDY_AFTER_S * (applied + 1):
                    name, remedy = remedies[applied]
                    applied += 1
                    rig.timeline.add(rig.now(), "rig", "baseline_remedy", {"action": name})
                    remedy()
                rig.wait(1.0)
        if not _agent_seen(rig.board):
            raise NoTestAgent(
                f"board {rig.dut_id}: no otarig test agent on its serial port within {timeout:g} bench seconds "
                "(no `hello`, no reply to `status`, even after a wake and a power cycle where the bench can): "
                "the firmware does not run TestAgent. Add it: copy the library into the project's lib/ "
                "(`otarig firmware add-agent DIR`), #include \"TestAgent.h\", call agent.begin() in setup(), "
                "agent.loop() in loop() and agent.sysEvent(event, param) from a System.on(all_events, ...) "
                "handler (docs/your-firmware.md)")
        raise TransitionFailed(f"board {rig.dut_id}: its test agent did not answer `status` within {timeout:g} s "
                               f"(last: {last}); is the companion firmware (TestAgent) running on it?")

    @staticmethod
    def wait_connected(rig: Any, timeout: float) -> None:
        """Until the agent reports the cloud connected (a state, not an event: on a real bench the
        board may have connected long before the scenario started)."""
        deadline = rig.now() + timeout
        while True:
            try:
                status = rig.command("status")
            except ExpectTimeout:
                # a non-threaded app gets no loop() while its cloud connection is being made
                # (docs/reference/particle-ota.md §3.1): its agent answers once connected
                if not rig.app_held() or rig.now() >= deadline:
                    raise
                status = {}
            if status.get("cloud_connected"):
                return
            left = deadline - rig.now()
            if left <= 0:
                raise TransitionFailed(f"board {rig.dut_id}: not connected to the cloud within {timeout:g} s")
            try:
                rig.expect_sys("cloud_status", "connected", min(left, 30.0))
            except BoardError:
                pass
