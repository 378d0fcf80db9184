"""Rollout results as numbers, a table, an adoption-curve PNG and JSON."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from otarig.sim.link import FULL_HANDSHAKE_BYTES, RESUME_BYTES
from otarig.sim.params import DAY_MS

from .common import RolloutResult

PERCENTS = (50, 90, 99, 100)
HOUR = 3_600_000.0


def _targeted(r: RolloutResult) -> np.ndarray:
    """docs/reference/particle-ota.md §1.4: development devices are never targeted; they are reported apart."""
    dev = np.array([c.development for c in r.fleet.cohort])
    return ~dev[r.cohort]


def time_to(r: RolloutResult, percent: float, mask: np.ndarray | None = None) -> float | None:
    """ms after the release by which `percent` % of the (targeted) devices run the new version."""
    m = _targeted(r) if mask is None else mask
    u = np.sort(r.updated_at[m])
    if u.size == 0:
        return None
    k = max(int(math.ceil(percent / 100 * u.size)) - 1, 0)
    return float(u[k]) if np.isfinite(u[k]) else None


def _h(ms: float | None) -> float | None:
    return None if ms is None else round(ms / HOUR, 3)


def summary(r: RolloutResult) -> dict:
    """Everything the report shows, as plain data (the `--json` output per strategy)."""
    tg = _targeted(r)
    n = int(tg.sum())
    hs = r.full_handshakes * FULL_HANDSHAKE_BYTES + r.resumes * RESUME_BYTES
    total = hs + r.ota_bytes + r.retry_bytes
    reached = np.isfinite(r.updated_at) & tg
    u = r.updated_at[reached] / HOUR
    dist = {f"p{q}": round(float(np.percentile(u, q)), 3) for q in (0, 10, 25, 50, 75, 90, 100)} if u.size else {}
    cohorts = []
    for i, c in enumerate(r.fleet.cohort):
        m = r.cohort == i
        cohorts.append({"name": c.name, "devices": int(m.sum()), "targeted": not c.development,
                        **{f"hours_to_{q}": _h(time_to(r, q, m & tg)) for q in (50, 90, 100)},
                        "not_reached": int((~np.isfinite(r.updated_at) & m & tg).sum()),
                        "began_outside_idle": int((r.began_outside & m).sum()),
                        "mean_bytes_per_device": round(float(total[m].mean()), 1) if m.any() else 0.0})
    return {
        "strategy": r.strategy.value, "label": r.strategy.label, "model": r.model,
        "devices": r.n, "targeted": n, "not_targeted": int(r.n - n),
        "horizon_days": r.fleet.horizon_days,
        "hours_to": {str(q): _h(time_to(r, q)) for q in PERCENTS},
        "reached": int(reached.sum()), "not_reached": int(n - reached.sum()),
        "distribution_hours": dist,
        "began_outside_idle": int((r.began_outside & tg).sum()),
        "ended_in_same_idle_window": int((r.ended_in_window & reached).sum()),
        "data_bytes": {
            "handshakes": int(hs.sum()), "full_handshakes": int(r.full_handshakes.sum()),
            "resumes": int(r.resumes.sum()), "ota": int(r.ota_bytes.sum()),
            "retries": int(r.retry_bytes.sum()), "retry_count": int(r.retries.sum()),
            "fleet_total": int(total.sum()),
            "per_device_mean": round(float(total.mean()), 1),
            "per_device_p50": float(np.percentile(total, 50)), "per_device_max": int(total.max()),
        },
        "cohorts": cohorts,
        "wall_s": round(r.wall_s, 3),
    }


def _fmt_h(h: float | None) -> str:
    if h is None:
        return "[red]not reached[/red]"
    if h < 1:
        return f"{h * 60:.1f} min"
    if h < 48:
        return f"{h:.1f} h"
    return f"{h / 24:.1f} d"


def print_table(results: Sequence[RolloutResult], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=170)  # files and pipes: one row per strategy, no wrapping
    fl = results[0].fleet
    t = Table(title=f"{fl.name}: {fl.size} devices, release v{fl.release.running_version} → v{fl.release.version} "
                    f"({fl.release.size_bytes} B), horizon {fl.horizon_days:g} d", title_justify="left")
    for col in ("strategy", *(f"{q} %" for q in PERCENTS), "not reached", "began outside idle",
                "data/device", "fleet data", "full hs", "retries"):
        t.add_column(col, justify="left" if col == "strategy" else "right", no_wrap=col == "strategy")
    for r in results:
        s = summary(r)
        d = s["data_bytes"]
        outside = s["began_outside_idle"]
        t.add_row(s["label"], *(_fmt_h(s["hours_to"][str(q)]) for q in PERCENTS), str(s["not_reached"]),
                  f"[red]{outside}[/red]" if outside else "0", f"{d['per_device_mean'] / 1024:.1f} KB",
                  f"{d['fleet_total'] / 1e6:.2f} MB", str(d["full_handshakes"]),
                  f"{d['retry_count']} ({d['retries'] / 1024:.0f} KB)")
    console.print(t)
    if len(fl.cohort) > 1:
        ct = Table(title="per cohort (time to 50 / 90 / 100 %)", title_justify="left")
        ct.add_column("strategy", no_wrap=True)
        for c in fl.cohort:
            ct.add_column(f"{c.name} ({c.count})", justify="right")
        for r in results:
            s = summary(r)
            ct.add_row(s["label"], *(" / ".join(_fmt_h(c[f"hours_to_{q}"]) for q in (50, 90, 100))
                                     if c["targeted"] else "not targeted (development)" for c in s["cohorts"]))
        console.print(ct)


def plot_adoption(results: Sequence[RolloutResult], path: str | Path) -> Path:
    """Adoption curves of several strategies on one chart (Agg canvas: no window, thread-safe)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    horizon = results[0].fleet.horizon_days
    for r in results:
        tg = _targeted(r)
        u = np.sort(r.updated_at[tg]) / DAY_MS
        u = u[np.isfinite(u)]
        n = max(int(tg.sum()), 1)
        x = np.concatenate([[0.0], u, [horizon]])
        y = np.concatenate([[0.0], np.arange(1, u.size + 1) / n * 100, [u.size / n * 100]])
        ax.step(x, y, where="post", label=f"{r.strategy.label} (100 %: {_fmt_h(_h(time_to(r, 100))).replace('[red]', '').replace('[/red]', '')})")
    for q in (50, 90, 99):
        ax.axhline(q, color="0.85", lw=0.8, zorder=0)
    last = max((float(np.nanmax(np.where(np.isfinite(r.updated_at), r.updated_at, np.nan))) / DAY_MS
                for r in results if np.isfinite(r.updated_at).any()), default=horizon)
    unreached = any((~np.isfinite(r.updated_at) & _targeted(r)).any() for r in results)
    ax.set_xlim(0, horizon if unreached else min(horizon, max(last * 1.1, 0.05)))
    ax.set_ylim(0, 101)
    ax.set_xlabel("days since release")
    ax.set_ylabel("% of targeted devices on the new version")
    fl = results[0].fleet
    ax.set_title(f"{fl.name}: {fl.size} devices", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    return p
