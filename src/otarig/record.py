"""The JSON certification record (issue #5 item 6): what was tested, on which firmware, with which result.

Schema `otarig.certification/1` (stable; add keys freely, never rename or remove):

```
{
  "schema": "otarig.certification/1",
  "created_utc": "2024-05-01T12:00:00Z",
  "passed": true,                      # ≥ 1 scenario ran, none failed or errored
  "seed": 42,
  "firmware": [{"version", "path", "sha256"}],
  "boards":   [{"id", "platform", "versions_seen": [...]}],
  "bench":    {...},                   # free-form description of the bench
  "tools":    {"otarig", "python", "device_os", "particle_cli",   # particle_cli: as the CLI reports it
               "particle_cli_path", "particle_cli_declared"},   # where it ran; what the bench file says
  "summary":  {"total", "passed", "failed", "skipped", "error",
               "device_time_s", "data_bytes", "duration_wall_s"},
  "results":  [{"name", "nodeid", "outcome", "duration_wall_s", "device_time_s", "data_bytes",
                "verdicts": [{"name", "passed", "message"}],
                "reason"?, "interrupted"?}],   # a skip's or an interruption's reason; what interrupted it
  # written by `otarig run`:
  "not_passed_because": [...], "skips_allowed": false,
  "interrupted": false,                # stopped before its end: never passed
  "interrupted_by": null,              # "SIGINT", "SIGTERM", "KeyboardInterrupt", "pytest.exit: …", "crash: …"
  "not_run": [nodeid, ...]             # collected scenarios that never started
}
```

An interrupted run's record holds every scenario that finished, the one in progress as an `error`
(with `interrupted`), and lists the rest in `not_run`; junit.xml is made to agree with it.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

SCHEMA = "otarig.certification/1"
OUTCOMES = ("passed", "failed", "skipped", "error")
TOOL_KEYS = ("otarig", "python", "device_os", "particle_cli")

__all__ = ["SCHEMA", "OUTCOMES", "build_record", "write_record", "load_record", "validate_record",
           "sha256_file", "default_tools", "utc_iso"]


def sha256_file(path: Path | str, *, chunk: int = 1 << 16) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def utc_iso(when: datetime | None = None) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` in UTC (naive datetimes are taken as UTC)."""
    when = when or datetime.now(timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_tools(*, device_os: str | None = None, particle_cli: str | None = None) -> dict[str, str | None]:
    """The `tools` block for this process: otarig and Python versions plus what the caller knows."""
    try:
        from importlib.metadata import version
        ours = version("otarig")
    except Exception:  # not installed as a distribution (e.g. a source checkout on sys.path)
        ours = "unknown"
    return {"otarig": ours, "python": platform.python_version(), "device_os": device_os,
            "particle_cli": particle_cli}


def _field(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _number(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return 0.0
    return f if f == f else 0.0  # NaN → 0


def _verdicts(raw: Iterable[Any]) -> list[dict]:
    return [{"name": str(_field(v, "name", "")), "passed": bool(_field(v, "passed", False)),
             "message": str(_field(v, "message", "") or "")} for v in raw or []]


def _result(r: Mapping[str, Any]) -> dict:
    outcome = r.get("outcome")
    if outcome not in OUTCOMES:
        raise ValueError(f"result {r.get('name')!r}: outcome {outcome!r}, expected one of {', '.join(OUTCOMES)}")
    name = str(r.get("name") or r.get("nodeid") or "")
    if not name:
        raise ValueError(f"result without a name or nodeid: {dict(r)!r}")
    return {
        "name": name,
        "nodeid": str(r.get("nodeid") or name),
        "outcome": outcome,
        "duration_wall_s": round(_number(r.get("duration_wall_s")), 3),
        "device_time_s": round(_number(r.get("device_time_s")), 3),
        "data_bytes": int(_number(r.get("data_bytes"))),
        "verdicts": _verdicts(r.get("verdicts") or []),
        **({"reason": str(r["reason"])} if r.get("reason") else {}),
        **({"interrupted": str(r["interrupted"])} if r.get("interrupted") else {}),
        **({"pool_worker": str(r["pool_worker"])} if r.get("pool_worker") else {}),  # otarig.pool
    }


def _require(kind: str, items: Iterable[Mapping[str, Any]], keys: tuple[str, ...]) -> list[dict]:
    out = []
    for i, item in enumerate(items):
        missing = [k for k in keys if k not in item]
        if missing:
            raise ValueError(f"{kind}[{i}] lacks {', '.join(missing)} (got keys {sorted(item)})")
        out.append(dict(item))
    return out


def _board(b: Mapping[str, Any]) -> dict:
    d = dict(b)
    seen = d.pop("versions_seen", d.pop("versions seen", d.pop("versions", [])))
    d["versions_seen"] = sorted(set(seen), key=lambda v: (str(type(v)), v)) if seen else []
    return d


def build_record(results: Iterable[Mapping[str, Any]], *, firmware: list[dict], boards: list[dict],
                 bench: dict, tools: dict, seed: int | None, created: datetime | None = None) -> dict:
    """The certification record from per-scenario results (the plugin's meta.json dicts)."""
    scen = [_result(r) for r in results]
    fw = _require("firmware", firmware, ("version", "path", "sha256"))
    for i, f in enumerate(fw):
        if not (isinstance(f["sha256"], str) and len(f["sha256"]) == 64):
            raise ValueError(f"firmware[{i}].sha256 {f['sha256']!r}: expected 64 hex digits")
    bd = [_board(b) for b in _require("boards", boards, ("id", "platform"))]
    counts = {o: sum(1 for r in scen if r["outcome"] == o) for o in OUTCOMES}
    return {
        "schema": SCHEMA,
        "created_utc": utc_iso(created),
        "passed": bool(scen) and counts["failed"] == 0 and counts["error"] == 0 and counts["passed"] > 0,
        "seed": seed,
        "firmware": fw,
        "boards": bd,
        "bench": dict(bench),
        "tools": {**{k: None for k in TOOL_KEYS}, **dict(tools)},
        "summary": {
            "total": len(scen), **counts,
            "device_time_s": round(sum(r["device_time_s"] for r in scen), 3),
            "data_bytes": sum(r["data_bytes"] for r in scen),
            "duration_wall_s": round(sum(r["duration_wall_s"] for r in scen), 3),
        },
        "results": scen,
    }


def validate_record(record: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first key that does not fit the schema."""
    if record.get("schema") != SCHEMA:
        raise ValueError(f"schema {record.get('schema')!r}, expected {SCHEMA!r}")
    for key, typ in (("created_utc", str), ("passed", bool), ("firmware", list), ("boards", list),
                     ("bench", dict), ("tools", dict), ("summary", dict), ("results", list)):
        if not isinstance(record.get(key), typ):
            raise ValueError(f"{key} {record.get(key)!r}: expected {typ.__name__}")
    for i, r in enumerate(record["results"]):
        for key in ("name", "nodeid", "outcome", "duration_wall_s", "device_time_s", "data_bytes", "verdicts"):
            if key not in r:
                raise ValueError(f"results[{i}] lacks {key}")
        if r["outcome"] not in OUTCOMES:
            raise ValueError(f"results[{i}].outcome {r['outcome']!r}: expected one of {', '.join(OUTCOMES)}")


def write_record(path: Path | str, record: Mapping[str, Any]) -> Path:
    """Validate and write the record as indented JSON (atomically: temp file, then rename)."""
    validate_record(record)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_record(path: Path | str) -> dict:
    """Read a record written by `write_record` (validated)."""
    rec = json.loads(Path(path).read_text(encoding="utf-8"))
    validate_record(rec)
    return rec
