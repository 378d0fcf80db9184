"""One timeline of everything observed on a bench (docs/design.md principle 5).

Board serial events, cloud stream events, PSU samples, CLI calls and injected faults go into
one list ordered by bench time, each with the device time when it has one. Verdicts
(`otarig.verdicts`) are plain functions over it, so they work the same on real and simulated
benches; a failure shows the slice that broke it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator


@dataclass(frozen=True)
class Entry:
    """An observation. `source` is e.g. `board:<id>`, `cloud`, `psu`, `rig`, `fault`."""

    t: float                      # bench time, seconds
    source: str
    kind: str                     # serial `ev`, cloud event name, `sample`, fault name, …
    data: dict = field(default_factory=dict)
    device_t: int | None = None   # device millis() when the board stamped it

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def is_sys(self, event: str, param: str | None = None) -> bool:
        return self.kind == "sys" and self.data.get("event") == event and \
            (param is None or self.data.get("param") == param)

    def is_guard(self, action: str) -> bool:
        return self.kind == "guard" and self.data.get("action") == action

    def line(self) -> str:
        dev = f" dev={self.device_t}" if self.device_t is not None else ""
        payload = json.dumps(self.data, sort_keys=True, separators=(",", ":"))
        return f"[{self.t:12.3f}] {self.source:<32} {self.kind:<28}{dev} {payload}"


def _plain(value: Any) -> Any:
    """JSON for what json cannot write itself: a dataclass in an entry's data, as `asdict` gives it."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"{type(value).__name__} in a timeline entry is not JSON serializable")


class Timeline:
    """Append-only, ordered by bench time (stable for equal times)."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.listeners: list[Callable[[Entry], None]] = []

    def add(self, t: float, source: str, kind: str, data: dict | None = None, device_t: int | None = None) -> Entry:
        e = Entry(round(t, 3), source, kind, dict(data or {}), device_t)
        if self.entries and e.t < self.entries[-1].t:
            # keep order when sources report slightly late (real bench): insert in place
            i = len(self.entries)
            while i > 0 and self.entries[i - 1].t > e.t:
                i -= 1
            self.entries.insert(i, e)
        else:
            self.entries.append(e)
        for fn in self.listeners:
            fn(e)
        return e

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def select(self, *, source: str | None = None, kind: str | None = None,
               where: Callable[[Entry], bool] | None = None, start: float | None = None,
               end: float | None = None) -> list[Entry]:
        out = []
        for e in self.entries:
            if source is not None and not (e.source == source or e.source.startswith(source + ":")):
                continue
            if kind is not None and e.kind != kind:
                continue
            if start is not None and e.t < start:
                continue
            if end is not None and e.t > end:
                continue
            if where is not None and not where(e):
                continue
            out.append(e)
        return out

    def window(self, start: float, end: float, *, margin: float = 0.0) -> list[Entry]:
        return [e for e in self.entries if start - margin <= e.t <= end + margin]

    def span(self) -> float:
        return (self.entries[-1].t - self.entries[0].t) if self.entries else 0.0

    def write_jsonl(self, path: Path) -> None:
        # the fields by hand: `asdict` deep-copies every entry's data first, which was most of the
        # cost of writing a long timeline; a dataclass inside data still becomes a dict (`_plain`)
        dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_plain).encode
        with open(path, "w") as fh:
            for e in self.entries:
                fh.write(dumps({"data": e.data, "device_t": e.device_t, "kind": e.kind, "source": e.source,
                                "t": e.t}) + "\n")

    @classmethod
    def read_jsonl(cls, path: Path) -> "Timeline":
        tl = cls()
        # one JSON array of the lines, parsed in one call: a parse per line was a third of the cost
        # of reading a timeline back, which the picture worker does for every scenario (docs/lab.md §4)
        rows = json.loads("[" + ",".join(Path(path).read_text().splitlines()) + "]")
        tl.entries = [Entry(d["t"], d["source"], d["kind"], d.get("data", {}), d.get("device_t")) for d in rows]
        return tl

    @staticmethod
    def render(entries: Iterable[Entry]) -> str:
        return "\n".join(e.line() for e in entries)
