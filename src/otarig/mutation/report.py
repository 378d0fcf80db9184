"""The selftest's outcome: counts, the kill rate, each survivor's diff and file:line, as a rich
table on the terminal and selftest.json / selftest.html in the report folder."""
from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from .engine import KILLED, Candidate, Outcome

__all__ = ["print_summary", "summarize", "write_reports"]


def summarize(candidates: list[Candidate], outcomes: dict[str, Outcome], *, generated_total: int,
              base: Path, extra: dict[str, Any]) -> dict[str, Any]:
    """The selftest record (selftest.json)."""
    gen = [c for c in candidates if c.mutant is not None]
    shipped = [c for c in candidates if c.shipped]
    counts = Counter(outcomes[c.key].status for c in gen if c.key in outcomes)
    killed = sum(counts[s] for s in KILLED)
    counted = killed + counts["survived"]
    rows = []
    for c in gen:
        o = outcomes.get(c.key)
        if o is None:
            continue
        m = c.mutant
        assert m is not None
        rows.append({"id": c.key, "file": m.file, "line": m.line, "original": m.original, "mutated": m.mutated,
                     **asdict(o), "diff": m.diff(base) if o.status == "survived" else None})
    return {
        **extra,
        "generated": {"total": generated_total, "sampled": len(gen), "invalid": counts["invalid"],
                      "tce_equivalent": counts["tce"], "listed_equivalent": counts["equivalent"],
                      "listed_allowed": counts["allowed"],
                      "killed": killed, "killed_by_timeout": counts["timeout"], "crashed": counts["crashed"],
                      "survived": counts["survived"],
                      "kill_rate": round(killed / counted, 4) if counted else None,
                      # the listed-allowed counted as survivors: the rate without taking a listing on trust
                      "kill_rate_allowed_as_survivors": (round(killed / (counted + counts["allowed"]), 4)
                                                         if counted + counts["allowed"] else None)},
        "mutants": {str(c.shipped): outcomes[c.key].killed_by or ([outcomes[c.key].status]
                                                                  if outcomes[c.key].status in KILLED else [])
                    for c in shipped if c.key in outcomes},
        "shipped": [{"number": c.shipped, "defect": c.label, **asdict(outcomes[c.key])} for c in shipped
                    if c.key in outcomes],
        "survivors": [c.key for c in candidates if c.key in outcomes and outcomes[c.key].status == "survived"],
        "results": rows,
    }


def print_summary(summary: dict[str, Any], console: Console) -> None:
    good = summary["good"]
    console.print(f"good build: {good['ran']} scenarios, "
                  + ("[green]all passed[/green]" if not good["failed"] else
                     f"[red]{len(good['failed'])} failed: {', '.join(good['failed'])}[/red]")
                  + f" in {good['wall_s']:.0f} s")
    if summary["shipped"]:
        t = Table(title="shipped defects (firmware/mutants/)")
        for col in ("#", "defect", "result", "caught by"):
            t.add_column(col)
        for s in summary["shipped"]:
            ok = s["status"] in KILLED
            t.add_row(str(s["number"]), s["defect"], "[green]killed[/green]" if ok else f"[red]{s['status']}[/red]",
                      ", ".join(s["killed_by"]) or s["detail"])
        console.print(t)
    g = summary["generated"]
    if g["sampled"]:
        console.print(f"generated (universalmutator): {g['total']} made, {g['sampled']} taken · "
                      f"invalid {g['invalid']} · TCE-equivalent {g['tce_equivalent']} · listed equivalent "
                      f"{g['listed_equivalent']} · listed allowed {g['listed_allowed']} · killed {g['killed']} "
                      f"(timeout {g['killed_by_timeout']}, crashed {g['crashed']}) · "
                      f"[bold]survived {g['survived']}[/bold] · kill rate {_rate(g)}")
        for r in summary["results"]:
            if r["status"] == "survived":
                console.print(f"[red]SURVIVED[/red] {escape(r['file'])}:{r['line']}  [dim]{escape(r['id'])}[/dim]")
                console.print(Syntax(r["diff"], "diff", background_color="default"))
    for line in _second_look_lines(summary):
        console.print(escape(line))
    console.print(f"wall time {summary['wall_s']:.0f} s · report in {summary['report_dir']}")


def _second_look_lines(summary: dict[str, Any]) -> list[str]:
    """One line per second look at the survivors (otarig.mutation.session): what it killed."""
    lines = []
    for look in summary.get("second_look") or []:
        if look["good_failed"]:
            lines.append(f"second look, {look['variant']} build: left out, the good build fails "
                         f"{', '.join(look['good_failed'])}")
        else:
            lines.append(f"second look, {look['variant']} build ({look['why']}): good build passed in "
                         f"{look['good_wall_s']:.0f} s; killed {len(look['killed'])}"
                         + (f": {', '.join(look['killed'])}" if look["killed"] else ""))
    return lines


def _rate(g: dict[str, Any]) -> str:
    """The kill rate, and beside it the rate with the listed-allowed counted as survivors."""
    if g["kill_rate"] is None:
        return "—"
    text = f"{100 * g['kill_rate']:.1f} %"
    if g["listed_allowed"]:
        text += f" ({100 * g['kill_rate_allowed_as_survivors']:.1f} % counting the allowed as survivors)"
    return text


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}pre{background:#f6f6f6;padding:.5em}"
        ".killed,.timeout,.crashed{color:#070}.survived{color:#b00;font-weight:bold}")


def write_reports(summary: dict[str, Any], folder: Path) -> None:
    (folder / "selftest.json").write_text(json.dumps(summary, indent=2))
    e = html.escape
    g = summary["generated"]
    parts = [f"<!doctype html><meta charset=utf-8><title>otarig selftest</title><style>{_CSS}</style>",
             "<h1>otarig selftest</h1>",
             f"<p>firmware {e(summary['firmware'])} · seed {summary['seed']} · {summary['jobs']} workers · wall time "
             f"{summary['wall_s']:.0f} s · load {e(summary['load'])}</p>",
             f"<p>good build: {summary['good']['ran']} scenarios, failed: "
             f"{e(', '.join(summary['good']['failed']) or 'none')}</p>"]
    if summary["shipped"]:
        parts.append("<h2>Shipped defects</h2><table><tr><th>#</th><th>defect</th><th>result</th><th>caught by</th></tr>")
        parts += [f"<tr><td>{s['number']}</td><td>{e(s['defect'])}</td><td class={s['status']}>{s['status']}</td>"
                  f"<td>{e(', '.join(s['killed_by']) or s['detail'])}</td></tr>" for s in summary["shipped"]]
        parts.append("</table>")
    if g["sampled"]:
        parts.append("<h2>Generated defects (universalmutator)</h2><table>" + "".join(
            f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in g.items()) +
            f"<tr><th>kill rate (killed / (killed + survived))</th><td>{e(_rate(g))}</td></tr></table>")
        parts += [f"<p>{e(line)}</p>" for line in _second_look_lines(summary)]
        parts.append("<h3>Survivors</h3>")
        for r in summary["results"]:
            if r["status"] == "survived":
                parts.append(f"<p class=survived>{e(r['file'])}:{r['line']} <code>{e(r['id'])}</code></p>"
                             f"<pre>{e(r['diff'] or '')}</pre>")
        parts.append("<h3>All</h3><table><tr><th>id</th><th>file:line</th><th>mutated line</th><th>result</th>"
                     "<th>caught by / why</th></tr>")
        parts += [f"<tr><td>{e(r['id'])}</td><td>{e(r['file'])}:{r['line']}</td><td><code>{e(r['mutated'])}</code>"
                  f"</td><td class={r['status']}>{r['status']}</td><td>{e(', '.join(r['killed_by']) or r['detail'])}"
                  "</td></tr>" for r in summary["results"]]
        parts.append("</table>")
    (folder / "selftest.html").write_text("\n".join(parts))

