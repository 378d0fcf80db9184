"""The simulated Particle Cloud over HTTP on loopback: REST API + server-sent events.

docs/design.md principle 1: the rig, `otarig.cloud` and the real `particle` CLI reach the simulated cloud
over the same channel as the real one (HTTP, `Authorization: Bearer`). Routes and response shapes
follow docs/reference/particle-cloud-api.md §3 (what the CLI sends and needs) and §5 (product OTA
calls of particle-api-js); docs/reference/particle-ota.md §1.6 gives the device fields.

Why aiohttp: REST and long-lived SSE streams with keep-alives in one well-kept library, on one
event loop, so hundreds of idle streams cost no threads. The server runs its loop in its own
thread. Threading rule (otarig.sim.bench): this thread never advances virtual time; every handler
that reads or changes simulator state holds `bench.lock`, in a worker thread so the event loop
keeps streaming while the world thread holds the lock.

Never log or print the token: the request log redacts `Authorization`, `access_token` and
`password`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import math
import re
import secrets
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .cloud import CloudError, SimCloud

if TYPE_CHECKING:
    from .bench import SimBench

log = logging.getLogger("otarig.sim.cloud_http")

REDACTED = "<redacted>"
#: docs/reference/particle-cloud-api.md §3: particle-cli drops a stream after 15 s of silence; keep well under.
KEEPALIVE_S = 5.0
#: Seen in this project's tests: particle-cli 3.51.0 loses events sent in the packet that carries
#: the response headers, so a stream opens with `:ok` and events follow later.
STREAM_OPEN_DELAY_S = 0.3
#: the rig's own event stream (`otarig.cloud.STREAM_AGENT`) reads those events: no delay for it,
#: which would otherwise hold up the start of every scenario (its bench waits for its stream)
PROMPT_STREAM_AGENTS = ("otarig-event-stream/",)
#: product firmware versions are PRODUCT_VERSION, a uint16 (docs/reference/particle-ota.md §1.6); 0 is not a version
VERSION_MIN, VERSION_MAX = 1, 65535
#: longest value quoted back in a 400 (a hostile body must not come back at full length)
_QUOTE_MAX = 40
_JSON_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})")
_JSON_INT_DIGITS = 32
_JSON_FLOAT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")
#: event keys that are bookkeeping of the simulator, not part of the wire format
_INTERNAL_KEYS = {"name", "t_ms", "seq"}
#: requests kept in `request_log` (a long `otarig sim` session must not grow forever; as psu_server)
REQUESTS_KEPT = 10_000
#: why `POST /oauth/token` is refused, whatever username and password it carries
OAUTH_REFUSED = ("the simulated cloud has no passwords: log in with the access token `otarig sim` printed "
                 "(particle login --token <token>)")


@dataclass
class HttpFaults:
    """HTTP-level faults (issue #3 item 3); cloud-side transfer faults live in `SimCloud.faults`."""

    #: answer every second API request with 503 (a client must retry idempotent calls)
    fail_every_second: bool = False
    #: the token is expired: every request gets 401 invalid_token
    token_expired: bool = False
    #: event streams are down (an idle stream closed by the Cloud, a lab network hiccup): setting it
    #: closes every open stream, and new ones get 503 until it is cleared; what is published
    #: meanwhile reaches no stream and is never replayed (docs/reference/particle-cloud-api.md §3 "Gaps")
    streams_down: bool = False
    _count: int = field(default=0, repr=False)

    def take_5xx(self) -> bool:
        if not self.fail_every_second:
            return False
        self._count += 1
        return self._count % 2 == 0


@dataclass(eq=False)
class _Stream:
    """One open event stream: its filter and the queue its events wait in."""

    queue: asyncio.Queue
    prefix: str
    device_id: str | None
    product_id: int | None

    def wants(self, ev: dict) -> bool:
        if not ev["name"].startswith(self.prefix):
            return False  # docs/reference/particle-cloud-api.md §3: the server filters by prefix, the CLI does not
        if self.device_id is not None and ev.get("coreid") != self.device_id:
            return False
        if self.product_id is not None and ev.get("productID") != self.product_id:
            return False
        return True


def _json(status: int, obj: Any) -> web.Response:
    return web.json_response(obj, status=status)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    """The real API's error shape: `{"ok": false, "error": ...}`."""
    return _json(status, {"ok": False, "error": message, **extra})


def _quote(value: Any) -> str:
    """A request value for an error message: short, on one line, whatever the client sent."""
    text = repr(value)
    return text if len(text) <= _QUOTE_MAX else text[:_QUOTE_MAX] + "..."


def _bad(key: str, expected: str, value: Any) -> CloudError:
    """A 400 naming the field, what was expected and what came (why: the client can fix its call)."""
    return CloudError(400, f"{key} must be {expected}, got {_quote(value)}")


def _bool(value: Any, key: str = "value") -> bool:
    """A JSON bool or a form's text for one; anything else is a 400, not a silent False."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    if value is None or isinstance(value, bool) or (type(value) is int and value in (0, 1)):
        return bool(value)
    raise _bad(key, "true or false", value)


def _version(value: Any, key: str = "version") -> int:
    """A firmware version (1..65535) from JSON or form text; bools, floats and floods are 400s."""
    text = value.decode("ascii", errors="replace") if isinstance(value, bytes) else value
    if isinstance(text, str) and text.strip().isdecimal() and text.strip().isascii() and len(text.strip()) <= 5:
        text = int(text.strip())
    if type(text) is int and VERSION_MIN <= text <= VERSION_MAX:
        return text
    raise _bad(key, f"an integer from {VERSION_MIN} to {VERSION_MAX}", value)


def _groups(value: Any) -> list[str]:
    """Device groups: a list of names or one comma-separated string (docs/reference/particle-cloud-api.md §5)."""
    if isinstance(value, str):
        return [g.strip() for g in value.split(",") if g.strip()]
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(g, str) for g in value):
        return [g for g in value if g]
    raise _bad("groups", "a list of group names or a comma-separated string", value)


def _text(body: dict[str, Any], key: str) -> str:
    """An optional text field (title, description, name): a string, or UTF-8 bytes of a file part."""
    value = body.get(key)
    if value is None:
        return ""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(key, "UTF-8 text", value) from None
    if isinstance(value, str):
        return value
    raise _bad(key, "a string", value)


def _reject_constant(name: str) -> Any:
    """`NaN`/`Infinity` are not JSON (RFC 8259) though Python's parser takes them."""
    raise CloudError(400, f"Invalid JSON body: {name} is not a JSON number")


def _finite(text: str) -> float:
    """A JSON number that overflows a double (`1e999`) would become infinity: refuse it here."""
    value = float(text)
    if not math.isfinite(value):
        raise CloudError(400, f"Invalid JSON body: number {_quote(text)} is out of range")
    return value


def _bounded_int(text: str) -> int:
    """A JSON integer of a sane length (Python refuses past 4300 digits with an unhelpful message)."""
    if len(text.lstrip("-")) > _JSON_INT_DIGITS:
        raise CloudError(400, f"Invalid JSON body: integer of {len(text)} digits is out of range")
    return int(text)


def _json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from the raw body; every way it can be bad is a 400 that says which."""
    try:
        text = raw.decode("utf-8")  # RFC 8259: JSON between systems is UTF-8, whatever charset= says
    except UnicodeDecodeError as exc:
        raise CloudError(400, f"Invalid JSON body: not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite,
                          parse_int=_bounded_int) if text.strip() else {}
    except RecursionError:
        raise CloudError(400, "Invalid JSON body: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError: the parser says where
        raise CloudError(400, f"Invalid JSON body: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise CloudError(400, "Invalid JSON body: expected an object")
    return data


def _scalar(text: str) -> Any:
    """A variable's text as the JSON type the API returns (`result`).

    Only text that is a JSON number becomes one (not `nan`, `1_000`, ` 5` or `1e999`, which
    Python's `int`/`float` take and `json.dumps` would turn into invalid JSON).
    """
    if _JSON_INT.fullmatch(text):
        return int(text)
    if _JSON_FLOAT.fullmatch(text) and math.isfinite(float(text)):
        return float(text)
    if text in ("true", "false"):
        return text == "true"
    return text


def redact_headers(headers: Any) -> dict[str, str]:
    """Request headers with credentials removed, for the log."""
    out = {}
    for k, v in headers.items():
        out[k] = REDACTED if k.lower() in ("authorization", "cookie") else v
    return out


def redact_query(query: Any) -> str:
    parts = []
    for k, v in query.items():
        parts.append(f"{k}={REDACTED if k.lower() in ('access_token', 'password') else v}")
    return "&".join(parts)


def _weakly(method: Callable[..., Awaitable[web.StreamResponse]]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A server's handler or middleware as aiohttp keeps it, through a weak reference: aiohttp
    caches the middleware chain per (handler, app) for the life of the process, so a bound method
    there would keep its server, and the server's whole simulated world, alive after `stop` (every
    scenario's world, until the run ends)."""
    ref = weakref.WeakMethod(method)

    async def call(*args: Any, **kwargs: Any) -> web.StreamResponse:
        bound = ref()
        if bound is None:
            raise web.HTTPServiceUnavailable(text="the simulated cloud has stopped")
        return await bound(*args, **kwargs)

    call.__name__ = call.__qualname__ = method.__name__
    if getattr(method, "__middleware_version__", None) is not None:
        call.__middleware_version__ = method.__middleware_version__  # type: ignore[attr-defined]
    return call


class _WeakRoutes:
    """`app.router` registering every handler through `_weakly`."""

    def __init__(self, router: web.UrlDispatcher) -> None:
        self._router = router

    def __getattr__(self, name: str) -> Callable[..., Any]:
        add = getattr(self._router, name)
        return lambda path, handler, **kwargs: add(path, _weakly(handler), **kwargs)


class CloudHttpServer:
    """The REST API and event streams of a `SimBench`'s cloud on `http://127.0.0.1:PORT`.

    `token` defaults to a fresh random one; read it from `.token` (it is never logged or printed
    by this module). `request_log` keeps `{method, path, status}` of the last `REQUESTS_KEPT`
    requests, redacted.
    """

    def __init__(self, bench: "SimBench", *, token: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 username: str = "otarig@example.com", keepalive_s: float = KEEPALIVE_S,
                 stream_open_delay_s: float = STREAM_OPEN_DELAY_S) -> None:
        self.bench = bench
        self.cloud: SimCloud = bench.cloud
        self.token = token or secrets.token_hex(20)
        self.username = username
        self.host = host
        self._port = port
        self.keepalive_s = keepalive_s
        self.stream_open_delay_s = stream_open_delay_s
        self.faults = HttpFaults()
        self.request_log: deque[dict[str, Any]] = deque(maxlen=REQUESTS_KEPT)
        self._streams: set[_Stream] = set()
        self._streams_lock = threading.Lock()
        self._streams_changed = threading.Condition(self._streams_lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="sim-cloud-api")
        self._stopping: asyncio.Event | None = None
        self.cloud.subscribers.append(self._on_cloud_event)

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    def start(self) -> str:
        """Start serving in a thread with its own event loop; return the API URL."""
        if self._thread is not None:
            return self.url
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="sim-cloud-http", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise RuntimeError(f"simulated cloud HTTP server did not start: {failure[0]}")
        return self.url

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[_weakly(self._middleware)], client_max_size=16 * 1024 * 1024)
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
        self._port = sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        assert self._stopping is not None
        self._stopping.set()
        with self._streams_lock:
            streams = list(self._streams)
        for s in streams:
            s.queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        """Close every stream and the listener (idempotent)."""
        if self._thread is None or self._loop is None:
            return
        try:
            self.cloud.subscribers.remove(self._on_cloud_event)
        except ValueError:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._thread = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "CloudHttpServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- event fan-out (called in the world thread, under bench.lock) ------------------------------
    def _on_cloud_event(self, ev: dict) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._streams_lock:
            targets = [s for s in self._streams if s.wants(ev)]
        pid = ev.get("productID")
        if isinstance(pid, int) and any(s.product_id == pid for s in targets):
            # what a product stream was sent: the bench waits for its rig-side stream to read only
            # this (an event published while no stream listened is lost to it, as on the real Cloud)
            self.bench.streamed_seq_by_product[pid] = ev["seq"]
        for s in targets:
            try:
                loop.call_soon_threadsafe(s.queue.put_nowait, ev)
            except RuntimeError:
                return  # loop closed during shutdown

    @property
    def stream_count(self) -> int:
        with self._streams_lock:
            return len(self._streams)

    def drop_streams(self) -> int:
        """Close every open event stream (after what it was already sent); returns how many."""
        loop = self._loop
        with self._streams_changed:
            dropped = list(self._streams)
            self._streams.clear()
            self._streams_changed.notify_all()
        if loop is not None and not loop.is_closed():
            for s in dropped:
                loop.call_soon_threadsafe(s.queue.put_nowait, None)
        return len(dropped)

    def wait_for_streams(self, count: int, timeout: float = 10.0) -> bool:
        """Block (wall time) until `count` event streams are open, e.g. before publishing to a
        subscriber that was just started. Event-driven, bounded by `timeout`."""
        with self._streams_changed:
            return self._streams_changed.wait_for(lambda: len(self._streams) >= count, timeout)

    # -- plumbing ------------------------------------------------------------------------------
    async def _locked(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` holding bench.lock, off the event loop (the world thread may hold the lock)."""
        def call() -> Any:
            with self.bench.lock:
                return fn()
        assert self._loop is not None
        return await self._loop.run_in_executor(self._pool, call)

    def _record(self, request: web.Request, status: int, note: str = "") -> None:
        query = redact_query(request.query)
        entry = {"method": request.method, "path": request.path + (f"?{query}" if query else ""), "status": status}
        if note:
            entry["note"] = note
        self.request_log.append(entry)
        if note:
            log.warning("%s %s -> %d (%s)", request.method, entry["path"], status, note)
        else:
            log.debug("%s %s -> %d", request.method, entry["path"], status)

    def _auth_error(self, request: web.Request) -> web.Response | None:
        """Bearer token (or `access_token` query/form) as the real API; its 401 shapes."""
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else request.query.get("access_token")
        if not token:
            return _json(401, {"error": "invalid_request", "error_description": "The access token was not found"})
        if not secrets.compare_digest(token.encode(), self.token.encode()):
            return _json(401, {"error": "invalid_token", "error_description": "The access token provided is invalid."})
        if self.faults.token_expired and not request.path.startswith("/otarig/"):
            return _json(401, {"error": "invalid_token", "error_description": "The access token provided has expired."})
        return None

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        open_route = request.path == "/oauth/token"
        if not open_route:
            refused = self._auth_error(request)
            if refused is not None:
                self._record(request, refused.status)
                return refused
        if request.path.startswith("/v1/") and self.faults.take_5xx():
            self._record(request, 503, "fault: 5xx on every second request")
            return _error(503, "Service Unavailable")
        try:
            resp = await handler(request)
        except web.HTTPNotFound:
            self._record(request, 404, "unknown route")
            return _error(404, "Not found")
        except web.HTTPMethodNotAllowed:
            self._record(request, 405, "method not allowed")
            return _error(405, "Method not allowed")
        except CloudError as exc:
            self._record(request, exc.status)
            return _error(exc.status, str(exc))
        except (ValueError, KeyError, json.JSONDecodeError) as exc:
            self._record(request, 400)
            return _error(400, f"Bad request: {exc}")
        except web.HTTPException:
            raise
        except Exception:  # noqa: BLE001 - a simulator bug must show as a 500, logged, not a hang
            log.exception("%s %s failed", request.method, request.path)
            self._record(request, 500, "internal error")
            return _error(500, "Internal server error")
        self._record(request, resp.status)
        return resp

    async def _body(self, request: web.Request) -> dict[str, Any]:
        """JSON, form or multipart body as a dict; file parts become bytes (docs/reference/particle-ota.md §1.6: either works).

        The body is untrusted: whatever is wrong with it (syntax, nesting, encoding, a broken
        multipart) is a 400 `{"ok": false, "error": ...}` naming the problem, never a 500.
        """
        if not request.can_read_body:
            return {}
        try:
            if request.content_type == "application/json":
                return _json_object(await request.read())
            form = await request.post()
            return {k: v.file.read() if isinstance(v, web.FileField) else v for k, v in form.items()}
        except CloudError:
            raise
        except web.HTTPRequestEntityTooLarge as exc:
            raise CloudError(413, f"Request body larger than allowed: {exc.text}") from None
        except web.HTTPException:
            raise
        except Exception as exc:  # noqa: BLE001 - aiohttp's multipart/form decoders raise many types
            raise CloudError(400, f"Malformed {request.content_type} body: {str(exc)[:120] or type(exc).__name__}") \
                from None

    @staticmethod
    def _pid(request: web.Request) -> int:
        text = request.match_info["product"]
        if not text.isdigit():
            raise CloudError(404, f"Product {text} not found")
        return int(text)

    # -- routes --------------------------------------------------------------------------------
    def _routes(self, app: web.Application) -> None:
        r = _WeakRoutes(app.router)
        # event streams first: `/v1/devices/events` must not match `/v1/devices/{id}`
        r.add_get("/v1/events", self.stream)
        r.add_get("/v1/events/{prefix:.+}", self.stream)
        r.add_get("/v1/devices/events", self.stream)
        r.add_get("/v1/devices/events/{prefix:.+}", self.stream)
        r.add_post("/v1/devices/events", self.publish)
        r.add_get("/v1/devices/{device}/events", self.stream)
        r.add_get("/v1/devices/{device}/events/{prefix:.+}", self.stream)
        r.add_get("/v1/products/{product}/events", self.stream)
        r.add_get("/v1/products/{product}/events/{prefix:.+}", self.stream)
        r.add_post("/v1/products/{product}/events", self.publish)
        r.add_get("/v1/products/{product}/devices/{device}/events", self.stream)
        r.add_get("/v1/products/{product}/devices/{device}/events/{prefix:.+}", self.stream)

        r.add_get("/v1/user", self.user)
        r.add_get("/v1/access_tokens/current", self.token_info)
        r.add_delete("/v1/access_tokens/current", self.token_delete)
        r.add_post("/oauth/token", self.oauth_token)

        r.add_get("/v1/devices", self.devices_list)
        r.add_get("/v1/devices/{device}", self.device_get)
        r.add_put("/v1/devices/{device}", self.device_put)
        r.add_get("/v1/devices/{device}/{name}", self.variable)
        r.add_post("/v1/devices/{device}/{name}", self.function)

        r.add_get("/v1/products/{product}/devices", self.devices_list)
        r.add_get("/v1/products/{product}/devices/{device}", self.device_get)
        r.add_put("/v1/products/{product}/devices/{device}", self.device_put)
        r.add_get("/v1/products/{product}/devices/{device}/{name}", self.variable)
        r.add_post("/v1/products/{product}/devices/{device}/{name}", self.function)

        r.add_get("/v1/products/{product}/firmware", self.firmware_list)
        r.add_post("/v1/products/{product}/firmware", self.firmware_upload)
        r.add_put("/v1/products/{product}/firmware/release", self.firmware_release)
        r.add_get("/v1/products/{product}/firmware/{version:\\d+}", self.firmware_get)
        r.add_put("/v1/products/{product}/firmware/{version:\\d+}", self.firmware_edit)
        r.add_delete("/v1/products/{product}/firmware/{version:\\d+}", self.firmware_delete)
        r.add_get("/v1/products/{product}/firmware/{version:\\d+}/binary", self.firmware_binary)

        # not part of the Particle API: fault injection for rigs and `otarig sim` users
        r.add_put("/otarig/v1/faults", self.faults_put)
        r.add_get("/otarig/v1/faults", self.faults_get)

    # account ---------------------------------------------------------------------------------
    async def user(self, request: web.Request) -> web.Response:
        return _json(200, {"username": self.username, "subscription_ids": [], "account_info": {}})

    async def token_info(self, request: web.Request) -> web.Response:
        return _json(200, {"expires_at": "2099-12-31T23:59:59.999Z", "client": "particle-cli", "scopes": []})

    async def token_delete(self, request: web.Request) -> web.Response:
        return _json(200, {"ok": True})

    async def oauth_token(self, request: web.Request) -> web.Response:
        """`particle login -u U -p P` (docs/reference/particle-cloud-api.md §2) is always refused.

        The simulated cloud has no accounts and no passwords: handing its token to whoever asks
        would make the token worth nothing (a stand-in serves on a port any local user can reach).
        The documented way in is the token `otarig sim` prints: `particle login --token <token>`
        (`GET /v1/user`, `GET /v1/access_tokens/current`), which keeps working."""
        return _json(401, {"error": "invalid_grant", "error_description": OAUTH_REFUSED})

    # devices ---------------------------------------------------------------------------------
    async def devices_list(self, request: web.Request) -> web.Response:
        pid = self._pid(request) if "product" in request.match_info else None
        devices = await self._locked(lambda: self.cloud.list_devices(pid))
        if pid is None:
            return _json(200, devices)
        return _json(200, {"devices": devices, "customers": [], "meta": {"total_pages": 1}})

    def _device_in(self, request: web.Request) -> tuple[int | None, str]:
        pid = self._pid(request) if "product" in request.match_info else None
        device_id = request.match_info["device"]
        rec = self.cloud.device(device_id) if device_id in self.cloud.devices else self._by_name(device_id)
        if pid is not None and rec.product_id != pid:
            raise CloudError(404, f"Device {device_id} is not in product {pid}")
        return pid, rec.device_id

    def _by_name(self, name: str) -> Any:
        for rec in self.cloud.devices.values():
            if rec.name == name:
                return rec
        raise CloudError(404, f"Device {name} not found")

    async def device_get(self, request: web.Request) -> web.Response:
        def get() -> dict:
            _, device_id = self._device_in(request)
            return self.cloud.device_json(self.cloud.device(device_id))
        return _json(200, await self._locked(get))

    async def device_put(self, request: web.Request) -> web.Response:
        """Rename, flash a .bin (multipart `file`), lock (+flash), development, forced, groups."""
        body = await self._body(request)

        def put() -> dict:
            pid, device_id = self._device_in(request)
            binary = body.get("file", body.get("binary"))
            if isinstance(binary, (bytes, bytearray)):
                return self.cloud.flash_device(device_id, bytes(binary), pid)
            fields = self._device_fields(body)
            if not fields:
                raise CloudError(400, "Nothing to update")
            out = self.cloud.update_device(pid, device_id, **fields)
            out["updated_at"] = self.cloud.published_at()
            return out
        return _json(200, await self._locked(put))

    @staticmethod
    def _device_fields(body: dict[str, Any]) -> dict[str, Any]:
        """The device PUT fields present in `body`, each checked (a 400 names the first bad one)."""
        fields: dict[str, Any] = {}
        for key in ("development", "firmware_updates_forced", "flash"):
            if key in body:
                fields[key] = _bool(body[key], key)
        if "desired_firmware_version" in body:
            v = body["desired_firmware_version"]
            unset = v is None or (isinstance(v, str) and v.strip() in ("", "null"))
            fields["desired_firmware_version"] = None if unset else _version(v, "desired_firmware_version")
        if "groups" in body:
            fields["groups"] = _groups(body["groups"])
        if "name" in body:
            if not isinstance(body["name"], str) or not body["name"].strip():
                raise _bad("name", "a non-empty string", body["name"])
            fields["name"] = body["name"]
        return fields

    async def variable(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]

        def get() -> dict:
            _, device_id = self._device_in(request)
            value = self.cloud.get_variable(device_id, name)
            return {"name": name, "result": _scalar(value),
                    "coreInfo": {"deviceID": device_id, "connected": True, "last_app": ""}}
        return _json(200, await self._locked(get))

    async def function(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await self._body(request)
        arg = str(body.get("args", body.get("arg", "")) or "")

        def call() -> dict:
            _, device_id = self._device_in(request)
            rv = self.cloud.call_function(device_id, name, arg)
            return {"id": device_id, "name": self.cloud.device(device_id).name, "connected": True, "return_value": rv}
        return _json(200, await self._locked(call))

    # events ------------------------------------------------------------------------------------
    async def publish(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        name = str(body.get("name") or "")
        if not name:
            raise CloudError(400, "Event name is required")
        data = body.get("data")
        pid = self._pid(request) if "product" in request.match_info else None
        if pid is not None:
            await self._locked(lambda: self.cloud.product(pid))
        await self._locked(lambda: self.cloud.publish_to_devices(name, "" if data is None else str(data), pid))
        return _json(200, {"ok": True})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """SSE (docs/reference/particle-cloud-api.md §3 subscribe): `:ok` first, events later, keep-alives."""
        pid = self._pid(request) if "product" in request.match_info else None
        device_id = request.match_info.get("device")
        if pid is not None:
            await self._locked(lambda: self.cloud.product(pid))
        if device_id is not None:
            device_id = (await self._locked(lambda: self._device_in(request)))[1]
        product_stream = pid is not None
        if self.faults.streams_down:
            return _error(503, "Service Unavailable")
        s = _Stream(asyncio.Queue(), request.match_info.get("prefix", ""), device_id, pid)
        # Registered before the headers go out, so nothing published from now on is missed.
        with self._streams_changed:
            self._streams.add(s)
            self._streams_changed.notify_all()
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream",
                                                       "Cache-Control": "no-cache", "Connection": "keep-alive"})
        try:
            await resp.prepare(request)
            await resp.write(b":ok\n\n")
            if not request.headers.get("User-Agent", "").startswith(PROMPT_STREAM_AGENTS):
                await asyncio.sleep(self.stream_open_delay_s)
            while self._stopping is not None and not self._stopping.is_set():
                try:
                    ev = await asyncio.wait_for(s.queue.get(), timeout=self.keepalive_s)
                except asyncio.TimeoutError:
                    await resp.write(b":ok\n\n")
                    continue
                if ev is None:
                    break
                await resp.write(self._frame(ev, product_stream))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            with self._streams_changed:
                self._streams.discard(s)
                self._streams_changed.notify_all()
        return resp

    def _frame(self, ev: dict, product_stream: bool) -> bytes:
        payload = {k: v for k, v in ev.items() if k not in _INTERNAL_KEYS}
        if product_stream:
            payload.setdefault("public", False)
            payload.setdefault("userid", "otarig")
        else:
            payload.pop("productID", None)
        # `id:` is the cloud's event sequence number (SSE allows it; clients that do not use it
        # ignore it): the simulated bench's clock uses it to keep a rig-side stream in step.
        return f"id: {ev['seq']}\nevent: {ev['name']}\ndata: {json.dumps(payload)}\n\n".encode()

    # product firmware ----------------------------------------------------------------------------
    async def firmware_list(self, request: web.Request) -> web.Response:
        pid = self._pid(request)
        return _json(200, await self._locked(lambda: self.cloud.list_firmware(pid)))

    async def firmware_upload(self, request: web.Request) -> web.Response:
        """multipart `file` (or `binary`), `version`, `title`, `description` (docs/reference/particle-ota.md §1.6)."""
        pid = self._pid(request)
        body = await self._body(request)
        binary = body.get("file", body.get("binary"))
        if not isinstance(binary, (bytes, bytearray)):
            raise CloudError(400, "A firmware binary is required (multipart field 'file')")
        if "version" not in body:
            raise CloudError(400, "version is required")
        version = _version(body["version"])
        title, description = _text(body, "title"), _text(body, "description")

        def upload() -> dict:
            fw = self.cloud.upload_firmware(pid, version, bytes(binary), title, description)
            return self.cloud.firmware_json(pid, fw)
        return _json(200, await self._locked(upload))

    async def firmware_get(self, request: web.Request) -> web.Response:
        pid, version = self._pid(request), int(request.match_info["version"])
        return _json(200, await self._locked(
            lambda: self.cloud.firmware_json(pid, self.cloud.get_firmware(pid, version))))

    async def firmware_edit(self, request: web.Request) -> web.Response:
        pid, version = self._pid(request), int(request.match_info["version"])
        body = await self._body(request)
        return _json(200, await self._locked(lambda: self.cloud.firmware_json(pid, self.cloud.edit_firmware(
            pid, version, title=body.get("title"), description=body.get("description")))))

    async def firmware_delete(self, request: web.Request) -> web.Response:
        pid, version = self._pid(request), int(request.match_info["version"])
        await self._locked(lambda: self.cloud.delete_firmware(pid, version))
        return _json(200, {"ok": True})

    async def firmware_binary(self, request: web.Request) -> web.Response:
        pid, version = self._pid(request), int(request.match_info["version"])
        binary = await self._locked(lambda: self.cloud.get_firmware(pid, version).binary)
        return web.Response(body=binary, content_type="application/octet-stream",
                            headers={"Content-Disposition": f'attachment; filename="firmware-v{version}.bin"'})

    async def firmware_release(self, request: web.Request) -> web.Response:
        """`{version, product_default?, groups?, intelligent?}` (docs/reference/particle-cloud-api.md §5)."""
        pid = self._pid(request)
        body = await self._body(request)
        if "version" not in body:
            raise CloudError(400, "version is required")
        version = _version(body["version"])
        groups = _groups(body.get("groups"))
        product_default = _bool(body.get("product_default", False), "product_default")
        intelligent = _bool(body.get("intelligent", False), "intelligent")

        def release() -> dict:
            self.cloud.release(pid, version, product_default=product_default, groups=groups,
                               intelligent=intelligent)
            return self.cloud.firmware_json(pid, self.cloud.get_firmware(pid, version))
        return _json(200, await self._locked(release))

    # faults ----------------------------------------------------------------------------------------
    async def faults_get(self, request: web.Request) -> web.Response:
        return _json(200, await self._locked(self._faults_json))

    def _faults_json(self) -> dict:
        f = self.cloud.faults
        return {"blackhole_after_chunks": f.blackhole_after_chunks, "blackhole_transfers": f.blackhole_transfers,
                "corrupt_chunks": sorted(f.corrupt_chunks), "fail_every_second": self.faults.fail_every_second,
                "token_expired": self.faults.token_expired, "streams_down": self.faults.streams_down}

    async def faults_put(self, request: web.Request) -> web.Response:
        body = await self._body(request)

        def put() -> dict:
            f = self.cloud.faults
            if "blackhole_after_chunks" in body:
                v = body["blackhole_after_chunks"]
                f.blackhole_after_chunks = None if v is None else int(v)
            if "blackhole_transfers" in body:
                v = body["blackhole_transfers"]
                f.blackhole_transfers = None if v is None else int(v)
            if "corrupt_chunks" in body:
                f.corrupt_chunks = {int(i) for i in body["corrupt_chunks"] or []}
            if "fail_every_second" in body:
                self.faults.fail_every_second = _bool(body["fail_every_second"])
            if "token_expired" in body:
                self.faults.token_expired = _bool(body["token_expired"])
            if "streams_down" in body:
                self.faults.streams_down = _bool(body["streams_down"], "streams_down")
                if self.faults.streams_down:
                    self.drop_streams()
            return self._faults_json()
        return _json(200, await self._locked(put))
