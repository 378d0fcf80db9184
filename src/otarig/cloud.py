"""A client of the Particle Cloud REST API and event stream, for what the rig needs.

Works against the real cloud (`https://api.particle.io`) and the simulated one (`otarig sim`,
`otarig.sim.cloud_http`) alike — docs/design.md principle 1. Routes and fields:
docs/reference/particle-cloud-api.md §3 and §5, docs/reference/particle-ota.md §1.6.

* The token comes from the caller, `$OTARIG_PARTICLE_TOKEN` / `$PARTICLE_ACCESS_TOKEN`, or the
  particle CLI's profile (`~/.particle/<profile>.config.json`, docs/reference/particle-cloud-api.md §2). It is never
  logged, printed, put in an exception or in `repr()`.
* Idempotent calls (GET, PUT, DELETE) are retried on 429/5xx and connection errors with exponential
  backoff (honouring `Retry-After`); POST (publish, call, upload) is not, because the cloud may
  already have acted.
* Errors are typed: `AuthError` (401, with a message saying what to do), `NotFound`, `ServerError`.
* `events()` opens an SSE stream read by a background thread that reconnects after a drop or
  silence (particle-cli reconnects after 15 s of silence too, docs/reference/particle-cloud-api.md §3). Events sent
  while a stream is down are lost, as on the real cloud (no replay), so the stream notes each interval it
  was not connected (`EventStream.gaps`, docs/reference/particle-cloud-api.md §3 "Gaps").
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sseclient

log = logging.getLogger("otarig.cloud")

DEFAULT_API_URL = "https://api.particle.io"
TOKEN_ENV_VARS = ("OTARIG_PARTICLE_TOKEN", "PARTICLE_ACCESS_TOKEN")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "HEAD"})


class CloudError(Exception):
    """The cloud refused or failed a call. `status` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0, error: str = "", description: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.description = description


class AuthError(CloudError):
    """401: the access token is missing, invalid or expired."""


class NotFound(CloudError):
    """404: no such device, product, firmware, function or variable."""


class ServerError(CloudError):
    """5xx/429 after the retries (or on a call that is not retried)."""


# -- token -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    api_url: str
    token: str
    source: str  # where the token came from (never the token itself)

    def __repr__(self) -> str:
        return f"Credentials(api_url={self.api_url!r}, token=<redacted>, source={self.source!r})"


def particle_profile_path(home: Path | None = None) -> Path:
    """The CLI's active profile file: `profile.json` names it, default `particle`."""
    base = (home or Path.home()) / ".particle"
    name = "particle"
    try:
        name = json.loads((base / "profile.json").read_text()).get("name") or name
    except (OSError, ValueError, AttributeError):
        pass
    return base / f"{name}.config.json"


def find_credentials(api_url: str | None = None, *, home: Path | None = None,
                     env: dict[str, str] | None = None, token_env: str | None = None) -> Credentials:
    """Token from the environment (`token_env` first: the bench file's `cloud.token_env`), else
    from the particle CLI's profile (which may also give `apiUrl`). Raises AuthError naming
    where it looked, never the token."""
    env = os.environ if env is None else env
    for var in ((token_env,) if token_env else ()) + tuple(TOKEN_ENV_VARS):
        if env.get(var):
            return Credentials(api_url or env.get("OTARIG_PARTICLE_API_URL") or DEFAULT_API_URL, env[var], f"${var}")
    path = particle_profile_path(home)
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError):
        cfg = {}
    token = cfg.get("access_token") if isinstance(cfg, dict) else None
    if token:
        return Credentials(api_url or cfg.get("apiUrl") or DEFAULT_API_URL, str(token), str(path))
    first = token_env or TOKEN_ENV_VARS[0]
    raise AuthError(f"no Particle access token: set ${first} (or ${TOKEN_ENV_VARS[1]}) "
                    f"or log in with `particle login` (looked in {path})", 401)


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One event of the stream (`event: NAME` + `data: {data, ttl, published_at, coreid, ...}`)."""

    name: str
    data: str
    published_at: str = ""
    coreid: str = ""
    product_id: int | None = None
    version: int | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @staticmethod
    def parse(name: str, data: str) -> "Event":
        try:
            obj = json.loads(data)
        except ValueError:
            obj = {"data": data}
        if not isinstance(obj, dict):
            obj = {"data": data}
        return Event(name, "" if obj.get("data") is None else str(obj.get("data")), str(obj.get("published_at", "")),
                     str(obj.get("coreid", "")), obj.get("productID"), obj.get("version"), obj)


#: how the event stream names itself: it reads events arriving with the response headers (the
#: simulated cloud holds a stream's first events back only for clients that cannot)
STREAM_AGENT = "otarig-event-stream/1"


class EventStream:
    """An SSE subscription read by a background thread, reconnecting until `close()`.

    `get()` / `wait_for()` block on a queue (wall time, event-driven, bounded by their timeout).
    The Cloud does not replay what it sent while no stream was open, so each interval between a
    drop (or silence) the thread detects and the moment its reconnected response is open goes into
    `gaps`, in `now()` time (the rig passes its bench clock); the first connect is not a gap.
    """

    def __init__(self, client: "ParticleCloud", path: str, *, read_timeout: float = 20.0,
                 reconnect_delay: float = 1.0, now: Callable[[], float] | None = None) -> None:
        self._client = client
        self.path = path
        self.read_timeout = read_timeout
        self.reconnect_delay = reconnect_delay
        self._now = now or time.monotonic
        #: (from, to) intervals in `now()` time in which the stream was not connected, after its first connect
        self.gaps: list[tuple[float, float]] = []
        self._down_since: float | None = None
        #: `now()` when the stream last heard from the cloud (opened, or read an event)
        self._heard: float | None = None
        self.events: list[Event] = []
        #: the SSE `id:` of the newest event read (0 if the server sends none)
        self.last_id = 0
        self._seen = threading.Condition()
        self.connects = 0
        self.error: CloudError | None = None
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._closed = threading.Event()
        self._open = threading.Event()
        self._response: requests.Response | None = None
        self._thread = threading.Thread(target=self._run, name=f"particle-events{path}", daemon=True)
        self._thread.start()

    def wait_open(self, timeout: float = 10.0) -> bool:
        """Block until the stream has been accepted (HTTP 200), so nothing published later is missed."""
        return self._open.wait(timeout)

    def wait_down(self, timeout: float = 10.0) -> bool:
        """Block until the stream has noticed it is no longer connected (a drop or silence), so a
        caller can tell what came after it was lost."""
        with self._seen:
            return self._seen.wait_for(lambda: self._down_since is not None or self._closed.is_set(), timeout)

    @property
    def down_since(self) -> float | None:
        """`now()` of the drop the stream has not recovered from yet, or None while connected."""
        return self._down_since

    def _went_down(self, silent: bool) -> None:
        """Note the drop: from now, or, after silence, from when it last heard anything (what the
        cloud sent since may be lost too)."""
        now = self._now()
        with self._seen:
            self._down_since = self._heard if silent and self._heard is not None else now
            self._open.clear()
            self._seen.notify_all()

    def _came_back(self) -> None:
        """The reconnected response is open: the interval since the drop is a gap."""
        now = self._now()
        with self._seen:
            if self._down_since is not None:
                self.gaps.append((self._down_since, now))
                self._down_since = None
            self._heard = now
            self._seen.notify_all()

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                resp = self._client._request("GET", self.path, stream=True, retry=False,
                                             timeout=(10, self.read_timeout),
                                             headers={"Accept": "text/event-stream", "User-Agent": STREAM_AGENT})
            except AuthError as exc:
                self.error = exc  # reconnecting cannot help
                self._queue.put(None)
                return
            except CloudError as exc:
                log.info("event stream %s: %s; reconnecting", self.path, exc)
                self._closed.wait(self.reconnect_delay)
                continue
            self._response = resp
            self.connects += 1
            self._came_back()
            self._open.set()
            silent = False
            try:
                for msg in sseclient.SSEClient(resp).events():
                    if self._closed.is_set():
                        break
                    if not msg.event or msg.event == "message" and not msg.data:
                        continue
                    self._heard = self._now()
                    ev = Event.parse(msg.event, msg.data)
                    self.events.append(ev)
                    self._queue.put(ev)
                    if msg.id and msg.id.isdigit():
                        with self._seen:
                            self.last_id = int(msg.id)
                            self._seen.notify_all()
            except (requests.RequestException, OSError, ValueError, AttributeError) as exc:
                if not self._closed.is_set():
                    silent = "timed out" in str(exc).lower() or isinstance(exc, (requests.Timeout, TimeoutError))
                    log.info("event stream %s dropped (%s); reconnecting", self.path, type(exc).__name__)
            finally:
                resp.close()
            if not self._closed.is_set():
                self._went_down(silent)
                self._closed.wait(self.reconnect_delay)

    def wait_seen(self, event_id: int, timeout: float = 10.0) -> bool:
        """Block until the event with SSE id `event_id` (or a later one) has been read; a bench
        whose server numbers its events uses this to hand the rig everything published so far."""
        with self._seen:
            return self._seen.wait_for(lambda: self.last_id >= event_id or self._closed.is_set(), timeout)

    def drain(self) -> list[Event]:
        """Every event read since the last `drain`/`get`, without waiting."""
        out: list[Event] = []
        while True:
            try:
                ev = self._queue.get_nowait()
            except queue.Empty:
                return out
            if ev is None:
                self._queue.put(None)
                assert self.error is not None
                raise self.error
            out.append(ev)

    def get(self, timeout: float = 10.0) -> Event:
        """The next event; raises TimeoutError, or the stream's AuthError."""
        try:
            ev = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no event on {self.path} within {timeout} s") from None
        if ev is None:
            self._queue.put(None)
            assert self.error is not None
            raise self.error
        return ev

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        """The first event (from now on) matching `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching event on {self.path} within {timeout} s "
                                   f"(saw {[e.name for e in self.events][-10:]})")
            ev = self.get(left)
            if predicate(ev):
                return ev

    def __iter__(self) -> Iterator[Event]:
        while not self._closed.is_set():
            yield self.get(timeout=3600)

    def close(self) -> None:
        self._closed.set()
        with self._seen:
            self._seen.notify_all()
        resp = self._response
        if resp is not None:
            try:
                resp.raw._fp.fp.raw._sock.shutdown(2)  # type: ignore[union-attr] - unblock the reader
            except Exception:  # noqa: BLE001 - best effort, then close()
                pass
            resp.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- client ------------------------------------------------------------------------------------


class ParticleCloud:
    """The Particle Cloud API for the rig. `product` is a default for product-scoped calls."""

    def __init__(self, api_url: str = DEFAULT_API_URL, token: str | None = None, *, product: int | None = None,
                 timeout: float = 30.0, retries: int = 4, backoff: float = 0.5,
                 session: requests.Session | None = None) -> None:
        if token is None:
            creds = find_credentials(api_url if api_url != DEFAULT_API_URL else None)
            token, api_url = creds.token, creds.api_url
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.product = product
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = session or requests.Session()
        self.session.trust_env = False if self.api_url.startswith(("http://127.", "http://localhost")) else True
        self.retried = 0  # how many retries this client made (a test can show a 5xx was retried)

    @classmethod
    def from_environment(cls, api_url: str | None = None, **kw: Any) -> "ParticleCloud":
        creds = find_credentials(api_url)
        return cls(creds.api_url, creds.token, **kw)

    def __repr__(self) -> str:
        return f"ParticleCloud({self.api_url!r}, token=<redacted>, product={self.product!r})"

    # -- transport ------------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, retry: bool = True, timeout: Any = None,
                 **kw: Any) -> requests.Response:
        url = self.api_url + path
        headers = {"Authorization": f"Bearer {self._token}", **kw.pop("headers", {})}
        attempts = 1 + (self.retries if retry and method in IDEMPOTENT else 0)
        for attempt in range(attempts):
            try:
                resp = self.session.request(method, url, headers=headers, timeout=timeout or self.timeout, **kw)
            except requests.RequestException as exc:
                if attempt + 1 < attempts:
                    self._pause(attempt, None)
                    continue
                raise CloudError(f"{method} {path}: no answer from {self.api_url} ({type(exc).__name__})") from None
            if resp.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                log.info("%s %s -> %d; retrying", method, path, resp.status_code)
                self._pause(attempt, resp.headers.get("Retry-After"))
                resp.close()
                continue
            if resp.status_code >= 400:
                raise self._error(method, path, resp)
            return resp
        raise AssertionError("unreachable")

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        self.retried += 1
        delay = self.backoff * (2 ** attempt)
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        time.sleep(min(delay, 30.0))

    def _error(self, method: str, path: str, resp: requests.Response) -> CloudError:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        error = str(body.get("error") or "")
        desc = str(body.get("error_description") or body.get("info") or "")
        text = f"{error}: {desc}" if desc else error or resp.reason or ""
        text = text.replace(self._token, "<redacted>")
        status = resp.status_code
        resp.close()
        if status == 401:
            return AuthError(f"Particle Cloud at {self.api_url} refused the access token ({text}); "
                             f"get a new token (`particle login`, or set ${TOKEN_ENV_VARS[0]})", status, error, desc)
        if status == 404:
            return NotFound(f"{method} {path}: 404 {text}", status, error, desc)
        if status in RETRY_STATUSES:
            return ServerError(f"{method} {path}: {status} {text}", status, error, desc)
        return CloudError(f"{method} {path}: {status} {text}", status, error, desc)

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        resp = self._request(method, path, **kw)
        try:
            return resp.json()
        finally:
            resp.close()

    def _product(self, product: int | None) -> int:
        p = product if product is not None else self.product
        if p is None:
            raise ValueError("a product ID is needed (argument or ParticleCloud(product=...))")
        return int(p)

    def _device_path(self, device: str, product: int | None) -> str:
        p = product if product is not None else self.product
        return f"/v1/products/{int(p)}/devices/{device}" if p is not None else f"/v1/devices/{device}"

    # -- account ------------------------------------------------------------------------------
    def user(self) -> dict:
        return self._json("GET", "/v1/user")

    def token_info(self) -> dict:
        return self._json("GET", "/v1/access_tokens/current")

    # -- devices ------------------------------------------------------------------------------
    def list_devices(self, product: int | None = None) -> list[dict]:
        p = product if product is not None else self.product
        if p is None:
            return self._json("GET", "/v1/devices")
        return self._json("GET", f"/v1/products/{int(p)}/devices")["devices"]

    def device(self, device: str, product: int | None = None) -> dict:
        """Device fields (docs/reference/particle-ota.md §1.6): firmware_version, development, firmware_updates_*, online, …"""
        return self._json("GET", self._device_path(device, product))

    def update_device(self, device: str, product: int | None = None, **fields: Any) -> dict:
        return self._json("PUT", self._device_path(device, product), json=fields)

    def rename(self, device: str, name: str) -> dict:
        return self._json("PUT", f"/v1/devices/{device}", json={"name": name})

    def lock(self, device: str, version: int, *, flash: bool = True, product: int | None = None) -> dict:
        """Lock to `version`; `flash` = flash now if online (docs/reference/particle-ota.md §1.4, §7.8.4)."""
        return self._json("PUT", self._device_path(device, self._product(product)),
                          json={"desired_firmware_version": int(version), "flash": flash})

    def unlock(self, device: str, product: int | None = None) -> dict:
        return self._json("PUT", self._device_path(device, self._product(product)),
                          json={"desired_firmware_version": None})

    def set_development(self, device: str, development: bool = True, product: int | None = None) -> dict:
        return self._json("PUT", self._device_path(device, self._product(product)), json={"development": development})

    def force_updates(self, device: str, forced: bool = True, product: int | None = None) -> dict:
        """`firmware_updates_forced` (docs/reference/particle-ota.md §1.6, §7.8.5)."""
        return self._json("PUT", self._device_path(device, product), json={"firmware_updates_forced": forced})

    def set_groups(self, device: str, groups: list[str], product: int | None = None) -> dict:
        return self._json("PUT", self._device_path(device, self._product(product)), json={"groups": groups})

    def flash_device(self, device: str, binary: bytes, *, product: int | None = None,
                     filename: str = "firmware.bin") -> dict:
        """Cloud OTA of one .bin to one device (multipart `file`, as `particle flash <dev> <file.bin>`)."""
        return self._json("PUT", self._device_path(device, product),
                          files={"file": (filename, binary, "application/octet-stream")},
                          data={"file_type": "binary"})

    # -- product firmware ---------------------------------------------------------------------
    def upload_firmware(self, version: int, binary: bytes, *, title: str = "", description: str = "",
                        product: int | None = None) -> dict:
        """POST …/firmware (multipart `file`, `version`, `title`, `description`); the cloud checks
        `version` against the binary's PRODUCT_VERSION (docs/reference/particle-ota.md §1.6). Not retried (POST)."""
        p = self._product(product)
        return self._json("POST", f"/v1/products/{p}/firmware",
                          files={"file": ("firmware.bin", binary, "application/octet-stream")},
                          data={"version": str(int(version)), "title": title or f"v{version}",
                                "description": description})

    def list_firmware(self, product: int | None = None) -> list[dict]:
        return self._json("GET", f"/v1/products/{self._product(product)}/firmware")

    def firmware(self, version: int, product: int | None = None) -> dict:
        return self._json("GET", f"/v1/products/{self._product(product)}/firmware/{int(version)}")

    def download_firmware(self, version: int, product: int | None = None) -> bytes:
        resp = self._request("GET", f"/v1/products/{self._product(product)}/firmware/{int(version)}/binary")
        try:
            return resp.content
        finally:
            resp.close()

    def release(self, version: int, *, product_default: bool = False, groups: list[str] | None = None,
                intelligent: bool = False, product: int | None = None) -> dict:
        """PUT …/firmware/release (docs/reference/particle-cloud-api.md §5); Standard unless `intelligent`."""
        body: dict[str, Any] = {"version": int(version), "intelligent": intelligent}
        if product_default:
            body["product_default"] = True
        if groups:
            body["groups"] = list(groups)
        return self._json("PUT", f"/v1/products/{self._product(product)}/firmware/release", json=body)

    # -- events, functions, variables ---------------------------------------------------------
    def publish(self, name: str, data: str = "", *, product: int | None = None) -> dict:
        p = product if product is not None else self.product
        path = f"/v1/products/{int(p)}/events" if p is not None else "/v1/devices/events"
        return self._json("POST", path, json={"name": name, "data": data})

    def call(self, device: str, function: str, arg: str = "", *, product: int | None = None) -> int:
        """Call a cloud function; its int return value. Not retried (the firmware may have acted)."""
        out = self._json("POST", f"{self._device_path(device, product)}/{function}", json={"args": arg})
        return int(out["return_value"])

    def get(self, device: str, variable: str, *, product: int | None = None) -> Any:
        return self._json("GET", f"{self._device_path(device, product)}/{variable}")["result"]

    def events(self, prefix: str = "", *, device: str | None = None, product: int | None = None,
               read_timeout: float = 20.0, reconnect_delay: float = 1.0,
               now: Callable[[], float] | None = None) -> EventStream:
        """Open an event stream: all my devices' events, one device's, or one product's; `now`
        stamps its gaps (default: monotonic seconds)."""
        p = product if product is not None else self.product
        if device is not None:
            base = f"{self._device_path(device, product)}/events"
        elif p is not None:
            base = f"/v1/products/{int(p)}/events"
        else:
            base = "/v1/devices/events"
        path = f"{base}/{prefix}" if prefix else base
        return EventStream(self, path, read_timeout=read_timeout, reconnect_delay=reconnect_delay, now=now)
