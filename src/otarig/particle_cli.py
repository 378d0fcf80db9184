"""The real ``particle`` command (particle-cli 3.51.0) run as a subprocess.

The rig drives the CLI exactly as a lab engineer would (docs/design.md principle 1, "real channels"),
pointed at a cloud (the real one, or the simulated cloud on loopback) through its profile file.
Facts this module relies on come from ``docs/reference/particle-cloud-api.md`` (cited as §N):

* no env var sets the API URL or token; they live in ``$HOME/.particle/particle.config.json``, and
  the CLI writes back to that file (it nulls the token on a 401), so it is rewritten before every
  run and one HOME is never shared between parallel CLIs (§2, Risks 5);
* output carries ANSI codes even without a TTY and errors mostly go to stdout, so success is the
  exit code and text is matched loosely (§1, Risks 8);
* proxies would capture loopback traffic, so they are removed (§2 item 3);
* ``subscribe`` without ``--max`` never exits, so it is always bounded (Risks 7).
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import resources

PINNED_VERSION = "3.51.0"
#: the pinned install: a checkout's tools/particle-cli, else `otarig tools install`'s cache folder
TOOLS_DIR = resources.tool_dir("particle-cli")
DEFAULT_CLI_JS = TOOLS_DIR / "node_modules" / "particle-cli" / "src" / "index.js"
ENV_CLI = "OTARIG_PARTICLE_CLI"
ENV_NODE = "OTARIG_NODE"
REDACTED = "<redacted>"

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[@-Z\\-_]")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
_AUTH_PATTERNS = re.compile(
    r"not logged in|access token is invalid|invalid[_ ]token|unauthori[sz]ed|HTTP error 401|"
    r"\b401\b|particle login",
    re.IGNORECASE,
)
_NO_DEVICES = re.compile(r"No devices found", re.IGNORECASE)
_DEVICE_LINE = re.compile(r"^(?P<name>.*?) \[(?P<id>[0-9a-fA-F]{24})\] \((?P<type>.*)\)$")
_SERIAL_LINE = re.compile(r"^(?P<port>\S+) - (?P<type>.+?) - (?P<id>[0-9a-fA-F]{24})$")

TokenSource = str | Callable[[], str]


def strip_ansi(text: str) -> str:
    """Remove colour codes and the spinner's erase-line/cursor codes (§1)."""
    text = _ANSI.sub("", text)
    # The spinner redraws with carriage returns; keep only what a terminal would finally show.
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.replace("\r\n", "\n").split("\n"))


class ParticleCliError(Exception):
    """Base of every error this module raises; messages never contain the token."""


class CliNotFound(ParticleCliError):
    """The CLI or the Node.js it needs is not installed (run `otarig tools install`). ``path`` is
    where it was looked for, when one path was."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class CliTimeout(ParticleCliError):
    """The CLI did not exit in time; it was killed. ``output`` is what it printed until then."""

    def __init__(self, command: Sequence[str], timeout: float, output: str) -> None:
        self.command = list(command)
        self.timeout = timeout
        self.output = output
        super().__init__(f"`{' '.join(self.command)}` timed out after {timeout:g}s")


class CliFailed(ParticleCliError):
    """The CLI exited non-zero. ``output`` is its cleaned stdout+stderr."""

    def __init__(self, command: Sequence[str], rc: int, output: str) -> None:
        self.command = list(command)
        self.rc = rc
        self.output = output
        last = next((ln.strip() for ln in reversed(output.splitlines()) if ln.strip()), "no output")
        super().__init__(f"`{' '.join(self.command)}` failed (rc {rc}): {last}")


class AuthError(CliFailed):
    """The cloud refused the token (401) or the CLI says it is not logged in."""


class NoDevices(CliFailed):
    """A USB command found no device ("No devices found"): expected on a simulated bench."""


@dataclass(frozen=True)
class CliResult:
    """One finished CLI run (also one transcript entry). Token already redacted."""

    command: list[str]
    rc: int
    output: str
    duration: float
    started_at: float

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.output.splitlines() if ln.strip()]


def _pinned_node(install: Path) -> Path:
    """The Node.js the pinned install (install.sh) puts beside the CLI in ``install``."""
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    return install / "node_modules" / f"node-linux-{arch}" / "bin" / "node"


def _find_node(explicit: str | os.PathLike[str] | None) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_NODE):
        return Path(os.environ[ENV_NODE])
    return _pinned_node(TOOLS_DIR)


#: `[particle_cli] path` when the bench file does not say otherwise: the pinned install
DEFAULT_CONFIG_PATH = "tools/particle-cli"


@dataclass(frozen=True)
class CliLocation:
    """Where the CLI the bench file names is: its executable (an ``index.js`` or a ``particle``
    binary), the Node.js to run an ``index.js`` with (None: ``_find_node``'s choice), and why."""

    executable: Path
    node: Path | None
    source: str


def locate(config_path: str | None, *, base: Path | None = None) -> CliLocation:
    """The CLI ``[particle_cli] path`` names: a folder holding the pinned install (as
    ``tools/particle-cli``: ``node_modules/particle-cli/src/index.js`` and its Node.js), or the
    CLI's executable (or ``index.js``) itself. A relative path is taken from ``base`` (the bench
    file's folder). ``$OTARIG_PARTICLE_CLI`` overrides the bench file; the default
    ``tools/particle-cli``, when no install is there beside the bench file, is the pinned install
    wherever otarig keeps it (``otarig tools install``). Raises CliNotFound naming the path when
    nothing is there, so a scenario that needs the CLI says which path it looked at."""
    if os.environ.get(ENV_CLI):
        return CliLocation(Path(os.environ[ENV_CLI]), None, f"${ENV_CLI}")
    text = config_path or DEFAULT_CONFIG_PATH
    given = Path(text).expanduser()
    path = given if given.is_absolute() or base is None else base / given
    if text == DEFAULT_CONFIG_PATH and not (path / "node_modules" / "particle-cli" / "src" / "index.js").is_file():
        path = TOOLS_DIR  # the default names the pinned install, wherever `otarig tools install` put it
    if path.is_dir():
        js = path / "node_modules" / "particle-cli" / "src" / "index.js"
        if not js.is_file():
            raise CliNotFound(f"particle-cli not found in {path} ([particle_cli] path = {text!r}: no pinned "
                              f"install there, {js.relative_to(path)} is missing)", js)
        node = _pinned_node(path)
        return CliLocation(js, node if node.exists() and not os.environ.get(ENV_NODE) else None,
                           f"[particle_cli] path = {text!r}")
    if path.is_file():
        return CliLocation(path, None, f"[particle_cli] path = {text!r}")
    raise CliNotFound(f"particle-cli not found at {path} ([particle_cli] path = {text!r} in the bench file)", path)


_REPORTED: dict[tuple[str, str], str] = {}


def _key(cli: "CliLocation | ParticleCli") -> tuple[str, str]:
    """The executable and the Node.js that would run it (as ParticleCli picks them)."""
    exe = Path(cli.executable)
    node = (_find_node(cli.node) if exe.suffix == ".js" else None) if isinstance(cli, CliLocation) else cli.node
    return str(exe), str(node)


def reported_version(cli: "ParticleCli | None" = None, *, location: CliLocation | None = None,
                     timeout: float = 60.0) -> str:
    """``particle --version`` as the CLI itself prints it: run once per executable in this process
    and remembered, so a run records the version that ran, not the one a file declares. With
    ``cli``, that CLI runs it (its transcript shows it); with ``location``, a throwaway one with an
    empty HOME and no token. Raises CliNotFound / CliFailed like any run."""
    target = cli if cli is not None else location
    if target is None:
        raise ValueError("reported_version needs a cli or a location")
    key = _key(target)
    if key not in _REPORTED:
        if cli is not None:
            _REPORTED[key] = cli.version()
        else:
            import tempfile

            assert location is not None
            with tempfile.TemporaryDirectory(prefix="otarig-cli-version-") as home:
                probe = ParticleCli(Path(home), "http://127.0.0.1:9", "", executable=location.executable,
                                    node=location.node, timeout=timeout)
                _REPORTED[key] = probe.version()
    return _REPORTED[key]


def known_version(cli: "CliLocation | ParticleCli") -> str | None:
    """The version `reported_version` already measured for this CLI in this process, else None."""
    return _REPORTED.get(_key(cli))


class ParticleCli:
    """The ``particle`` CLI aimed at one cloud, with its own HOME and a transcript.

    ``token_source`` is the access token or a callable returning it (so a rotating token is read
    at each run). ``executable`` (or ``$OTARIG_PARTICLE_CLI``) may be the CLI's ``index.js`` (run
    with the pinned node, or ``node``/``$OTARIG_NODE``) or any executable ``particle``.
    ``path_prepend`` puts directories first on PATH, e.g. a fake ``udevadm`` for ``serial list``
    against a pseudo-terminal (§4).
    """

    def __init__(
        self,
        home: Path,
        api_url: str,
        token_source: TokenSource,
        executable: str | os.PathLike[str] | None = None,
        node: str | os.PathLike[str] | None = None,
        timeout: float = 60.0,
        *,
        username: str = "otarig@example.com",
        path_prepend: Sequence[os.PathLike[str] | str] = (),
    ) -> None:
        self.home = Path(home)
        self.api_url = api_url.rstrip("/")
        self._token_source = token_source
        self.timeout = timeout
        self.username = username
        self.path_prepend = [str(p) for p in path_prepend]
        self.transcript: list[CliResult] = []
        exe = executable or os.environ.get(ENV_CLI) or DEFAULT_CLI_JS
        self.executable = Path(exe)
        self.node: Path | None = _find_node(node) if self.executable.suffix == ".js" else None

    # -- plumbing ---------------------------------------------------------------------------

    def _token(self) -> str:
        tok = self._token_source() if callable(self._token_source) else self._token_source
        return str(tok)

    def _redact(self, text: str) -> str:
        tok = self._token()
        if tok:
            text = text.replace(tok, REDACTED)
        return re.sub(r"(Bearer\s+)\S+", r"\1" + REDACTED, text)

    def write_config(self) -> Path:
        """Write a fresh profile (§2 item 2): far-future expiry skips the token freshness call and
        ``flashWarningShownOn`` suppresses the first-flash notice."""
        cfg_dir = self.home / ".particle"
        cfg_dir.mkdir(parents=True, exist_ok=True)
        profile = cfg_dir / "profile.json"
        if profile.exists():
            profile.unlink()  # another profile name would make the CLI read another file
        path = cfg_dir / "particle.config.json"
        config = {
            "apiUrl": self.api_url,
            "access_token": self._token(),
            "access_token_expires_at": "9999-12-31T23:59:59.999Z",
            "username": self.username,
            "flashWarningShownOn": 1,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(path)
        return path

    def _argv(self) -> list[str]:
        if not self.executable.exists():
            raise CliNotFound(
                f"particle-cli not found at {self.executable}; run `otarig tools install` "
                f"or set {ENV_CLI}"
            )
        if self.node is None:
            return [str(self.executable)]
        if not self.node.exists():
            raise CliNotFound(
                f"Node.js for particle-cli not found at {self.node}; run "
                f"`otarig tools install` or set {ENV_NODE}"
            )
        return [str(self.node), str(self.executable)]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
        env.update(
            HOME=str(self.home),
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
            PARTICLE_DISABLE_UPDATE="1",
            NO_COLOR="1",
            FORCE_COLOR="0",
        )
        # Node 22 keeps the CLI's compiled modules between runs: each `particle` starts ~20 % sooner,
        # which a scenario running it several times, or a pool of them, feels (docs/lab.md §4)
        env.setdefault("NODE_COMPILE_CACHE", str(resources.cache_root() / "node-compile-cache"))
        path = [*self.path_prepend]
        if self.node is not None:
            path.append(str(self.node.parent))  # child `node` processes get the pinned one too
        env["PATH"] = os.pathsep.join([*path, env.get("PATH", "")])
        return env

    def run(self, *args: str, timeout: float | None = None, check: bool = True) -> CliResult:
        """Run ``particle ARGS``; record it; raise a typed error on timeout or (if check) rc != 0."""
        argv = self._argv()
        self.write_config()
        limit = self.timeout if timeout is None else timeout
        shown = ["particle", *(self._redact(a) for a in args)]
        started = time.time()
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(
                [*argv, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=str(self.home),
                start_new_session=True,  # so a timeout can end the CLI and only its children
            )
        except OSError as exc:
            raise CliNotFound(f"cannot start particle-cli ({exc.strerror}): {argv[0]}") from None
        try:
            raw, _ = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            raw, _ = proc.communicate()
            output = self._redact(strip_ansi(raw.decode("utf-8", "replace")))
            result = CliResult(shown, -9, output, time.monotonic() - t0, started)
            self.transcript.append(result)
            raise CliTimeout(shown, limit, output) from None
        except BaseException:  # Ctrl-C / SIGTERM while the CLI runs: end it and wait for it, never orphan it
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            raise
        output = self._redact(strip_ansi(raw.decode("utf-8", "replace"))).strip("\n")
        result = CliResult(shown, proc.returncode, output, time.monotonic() - t0, started)
        self.transcript.append(result)
        if check and result.rc != 0:
            raise self._failure(result)
        return result

    @staticmethod
    def _failure(result: CliResult) -> CliFailed:
        if _AUTH_PATTERNS.search(result.output):
            return AuthError(result.command, result.rc, result.output)
        if _NO_DEVICES.search(result.output):
            return NoDevices(result.command, result.rc, result.output)
        return CliFailed(result.command, result.rc, result.output)

    def transcript_records(self) -> list[dict[str, Any]]:
        """The transcript as JSON-ready dicts (command, rc, output, duration, started_at)."""
        return [asdict(r) for r in self.transcript]

    def write_transcript(self, path: Path) -> Path:
        """Save the transcript as JSON lines, e.g. into a test's artifact folder."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as fh:
            for rec in self.transcript_records():
                fh.write(json.dumps(rec) + "\n")
        return path

    # -- commands ---------------------------------------------------------------------------

    def version(self) -> str:
        """The CLI's version string (``3.51.0`` when the pinned install is used)."""
        return self.run("--version").lines[-1].strip()

    def flash_cloud(self, device: str, file: os.PathLike[str] | str) -> CliResult:
        """OTA through the cloud: multipart PUT /v1/devices/:id (§3). The CLI does not parse the
        binary (§4); a missing file would be taken as an app name like ``tinker``, so refuse it."""
        path = Path(file)
        if not path.is_file():
            raise FileNotFoundError(f"firmware file not found: {path}")
        return self.run("flash", device, str(path.resolve()))

    def flash_usb(self, file: os.PathLike[str] | str) -> CliResult:
        """``flash --usb FILE`` (DFU). Raises NoDevices when no USB device is attached."""
        return self.run("flash", "--usb", str(Path(file).resolve()))

    def flash_local(self, file: os.PathLike[str] | str) -> CliResult:
        """``flash --local FILE``. Raises NoDevices when no USB device is attached."""
        return self.run("flash", "--local", str(Path(file).resolve()))

    def flash_local_to(self, device: str, file: os.PathLike[str] | str) -> CliResult:
        """``flash --local <device> FILE --application-only``: the application over USB to the named
        device (so several boards can share a host), never touching Device OS."""
        path = Path(file)
        if not path.is_file():
            raise FileNotFoundError(f"firmware file not found: {path}")
        return self.run("flash", "--local", device, str(path.resolve()), "--application-only")

    def usb_list(self) -> list[dict[str, str]]:
        """USB devices as ``{name, id, type}``; ``[]`` when the CLI says "No devices found." (rc 0)."""
        result = self.run("usb", "list")
        devices = []
        for line in result.lines:
            m = _DEVICE_LINE.match(line.strip())
            if m:
                devices.append(m.groupdict())
        return devices

    def usb_dfu(self) -> CliResult:
        """Put the USB device into DFU mode; NoDevices without one."""
        return self.run("usb", "dfu")

    def usb_reset(self) -> CliResult:
        """Reset the USB device; NoDevices without one."""
        return self.run("usb", "reset")

    def serial_list(self) -> list[dict[str, str]]:
        """Serial devices as ``{port, type, id}``. Needs ``udevadm`` on PATH (§4)."""
        result = self.run("serial", "list")
        devices = []
        for line in result.lines:
            m = _SERIAL_LINE.match(line.strip())
            if m:
                devices.append(m.groupdict())
        return devices

    def serial_identify(self) -> dict[str, str]:
        """Device ID etc. as printed by ``serial identify`` ("Key: value" lines)."""
        result = self.run("serial", "identify")
        info: dict[str, str] = {}
        for line in result.lines:
            key, sep, value = line.partition(":")
            if sep and value.strip():
                info[key.strip().lower().replace(" ", "_")] = value.strip()
        return info

    def publish(self, name: str, data: str | None = None, product: str | int | None = None) -> CliResult:
        """POST /v1/devices/events (or /v1/products/P/events with ``product``)."""
        args = ["publish", name]
        if data is not None:
            args.append(data)
        if product is not None:
            args += ["--product", str(product)]
        return self.run(*args)

    def call(self, device: str, fn: str, arg: str = "", product: str | int | None = None) -> int | str:
        """Call a cloud function; returns its return value (an int when it is one)."""
        args = ["call", device, fn, arg]
        if product is not None:
            args += ["--product", str(product)]
        return _scalar(self.run(*args).lines)

    def get(self, device: str, var: str, product: str | int | None = None) -> int | float | str:
        """Read a cloud variable; numbers come back as int/float, the rest as text."""
        args = ["get", device, var]
        if product is not None:
            args += ["--product", str(product)]
        return _scalar(self.run(*args).lines)

    def subscribe(
        self,
        prefix: str | None = None,
        device: str | None = None,
        max_events: int = 1,
        timeout: float | None = None,
        product: str | int | None = None,
    ) -> list[dict[str, Any]]:
        """Collect ``max_events`` events (``subscribe --max N``) and return them as dicts.

        Always bounded: ``--max`` plus a timeout (Risks 7). On timeout CliTimeout carries the
        output so far.
        """
        if max_events < 1:
            raise ValueError("max_events must be >= 1 (an unbounded subscribe never exits)")
        args = ["subscribe"]
        if prefix:
            args.append(prefix)
        if device:
            args += ["--device", device]
        if product is not None:
            args += ["--product", str(product)]
        args += ["--max", str(max_events)]
        result = self.run(*args, timeout=timeout)
        return parse_events(result.output)


def parse_events(output: str) -> list[dict[str, Any]]:
    """JSON event lines from ``subscribe`` output (the CLI prints one object per event, §3)."""
    events = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and "name" in obj:
                events.append(obj)
    return events


def _scalar(lines: list[str]) -> Any:
    """The value printed by call/get: the last line, as a number when it is one."""
    text = lines[-1].strip() if lines else ""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text
