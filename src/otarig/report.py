"""The report folder's human side (issue #5 item 6): the HTML report and the console summary.

`load_results` reads the per-test `meta.json` files the plugin writes; `write_html` turns them and
the certification record (`otarig.record`) into one self-contained page (inline CSS, each
scenario's `timeline.png` embedded); `print_summary` prints the rich table `otarig run` ends with.
"""
from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["load_results", "write_html", "print_summary", "human_duration", "kb", "condense_samples"]

RESULT_DEFAULTS: dict[str, Any] = {
    "nodeid": "", "name": "", "outcome": "error", "duration_wall_s": 0.0, "device_time_s": 0.0,
    "data_bytes": 0, "verdicts": [], "artifacts_dir": "", "longrepr": "",
}
BADGE = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP", "error": "ERROR"}
RICH_STYLE = {"passed": "bold green", "failed": "bold red", "skipped": "yellow", "error": "bold magenta"}


# ---------------------------------------------------------------- helpers


def human_duration(seconds: float | None) -> str:
    """Device time for people: `12.5s`, `3m 20s`, `5h 12m`, `7d 3h`."""
    if seconds is None or not isinstance(seconds, (int, float)) or math.isnan(seconds):
        return "—"
    s = float(seconds)
    if s < 60:
        return f"{s:.3g}s" if s else "0s"
    if s < 3600:
        m, r = divmod(int(round(s)), 60)
        return f"{m}m {r}s"
    if s < 86400:
        h, r = divmod(int(round(s)), 3600)
        return f"{h}h {r // 60}m"
    d, r = divmod(int(round(s)), 86400)
    return f"{d}d {r // 3600}h"


def kb(n: float | None) -> float:
    """Bytes → KB (1024)."""
    return float(n or 0) / 1024.0


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return 0.0
    return f if math.isfinite(f) else 0.0


# ---------------------------------------------------------------- results


def load_results(tests_dir: Path | str) -> list[dict]:
    """Every `<tests_dir>/*/meta.json`, in run order (`index` key, then folder name).

    Missing keys get defaults; a relative `artifacts_dir` is resolved against `tests_dir`
    (defaulting to the meta file's folder); an unreadable meta.json becomes an `error` result
    that names the file, so the report still shows it.
    """
    root = Path(tests_dir)
    if not root.is_dir():
        return []
    out: list[tuple[tuple, dict]] = []
    for meta in sorted(root.glob("*/meta.json")):
        try:
            raw = json.loads(meta.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raw = {"name": meta.parent.name, "outcome": "error",
                   "longrepr": f"unreadable {meta}: {exc}"}
        r = {**RESULT_DEFAULTS, **raw}
        r["name"] = r["name"] or r["nodeid"] or meta.parent.name
        r["nodeid"] = r["nodeid"] or r["name"]
        adir = Path(r["artifacts_dir"]) if r["artifacts_dir"] else meta.parent
        r["artifacts_dir"] = str(adir if adir.is_absolute() else (root / adir).resolve())
        idx = raw.get("index")
        out.append(((0 if isinstance(idx, (int, float)) else 1, idx if isinstance(idx, (int, float)) else 0,
                     meta.parent.name), r))
    return [r for _, r in sorted(out, key=lambda p: p[0])]


def _totals(results: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    rs = list(results)
    return {"device_time_s": sum(_num(r.get("device_time_s")) for r in rs),
            "data_bytes": sum(_num(r.get("data_bytes")) for r in rs),
            "duration_wall_s": sum(_num(r.get("duration_wall_s")) for r in rs)}


def _counts(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    c = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
    for r in results:
        o = r.get("outcome", "error")
        c[o if o in c else "error"] += 1
    return c


# ---------------------------------------------------------------- console


#: below this terminal width the figures leave too little room for names: one block per scenario
NARROW_SUMMARY = 72


def print_summary(results: list[Mapping[str, Any]], console: Console) -> dict[str, int]:
    """Print the summary table (scenario, verdict, device time, data, wall time) and totals.

    Returns the outcome counts."""
    if console.width < NARROW_SUMMARY:
        return _print_summary_narrow(results, console)
    table = Table(title="otarig certification", show_footer=True, header_style="bold",
                  title_style="bold", footer_style="bold")
    counts = _counts(results)
    tot = _totals(results)
    # a narrow terminal folds a long scenario name over lines, never cuts it (the name is the ID a
    # reader greps the report for); the figures stay on one line
    table.add_column("scenario", footer="total", overflow="fold")
    table.add_column("verdict", footer=f"{counts['passed']}/{len(results)} pass", no_wrap=True)
    table.add_column("device time", justify="right", footer=human_duration(tot["device_time_s"]), no_wrap=True)
    table.add_column("data (KB)", justify="right", footer=f"{kb(tot['data_bytes']):.1f}", no_wrap=True)
    table.add_column("wall (s)", justify="right", footer=f"{tot['duration_wall_s']:.1f}", no_wrap=True)
    for r in results:
        o = r.get("outcome", "error")
        table.add_row(Text(str(r.get("name") or r.get("nodeid"))),   # Text: "[param]" is not markup
                      Text(BADGE.get(o, o.upper()), style=RICH_STYLE.get(o, "")),
                      human_duration(_num(r.get("device_time_s"))),
                      f"{kb(r.get('data_bytes')):.1f}",
                      f"{_num(r.get('duration_wall_s')):.2f}")
    console.print(table)
    return _print_counts(counts, console)


def _print_summary_narrow(results: list[Mapping[str, Any]], console: Console) -> dict[str, int]:
    """The summary for a narrow terminal: each whole name on its line(s), its verdict and figures below."""
    counts = _counts(results)
    tot = _totals(results)
    console.print(Text("otarig certification", style="bold"))
    for r in results:
        o = r.get("outcome", "error")
        console.print(Text(str(r.get("name") or r.get("nodeid"))), overflow="fold")
        line = Text("  ")
        line.append(BADGE.get(o, o.upper()), style=RICH_STYLE.get(o, ""))
        line.append(f" · {human_duration(_num(r.get('device_time_s')))} · {kb(r.get('data_bytes')):.1f} KB"
                    f" · {_num(r.get('duration_wall_s')):.2f} s")
        console.print(line)
    console.print(Text(f"total {counts['passed']}/{len(results)} pass · {human_duration(tot['device_time_s'])} · "
                       f"{kb(tot['data_bytes']):.1f} KB · {tot['duration_wall_s']:.1f} s", style="bold"))
    return _print_counts(counts, console)


def _print_counts(counts: dict[str, int], console: Console) -> dict[str, int]:
    parts = [f"{counts['passed']} passed", f"{counts['failed']} failed", f"{counts['skipped']} skipped"]
    if counts["error"]:
        parts.append(f"{counts['error']} error")
    bad = counts["failed"] or counts["error"]
    console.print(Text(", ".join(parts), style="bold red" if bad else "bold green"))
    return counts


def _verdict_head(explanation: str) -> str:
    """A verdict's explanation without its timeline slice: what happened, and what to change."""
    return "\n".join(line for line in explanation.splitlines() if not line.startswith("["))


def print_failures(results: list[Mapping[str, Any]], console: Console) -> None:
    """Each distinct failed verdict once, with what to change and the scenarios it failed in, so
    the engineer reads the cause in the terminal (the timeline slices are in report.html)."""
    by_cause: dict[str, list[str]] = {}
    for r in results:
        if r.get("outcome") not in ("failed", "error"):
            continue
        name = str(r.get("name") or r.get("nodeid"))
        heads = [_verdict_head(str(v.get("explanation") or "")) for v in r.get("verdicts") or []
                 if not v.get("passed")]
        if not heads:  # failed outside a verdict: the assertion's or error's last line
            lines = [x for x in str(r.get("longrepr") or "").splitlines() if x.startswith("E ")]
            heads = [lines[0][1:].strip() if lines else "(no verdict; see report.html)"]
        for head in heads:
            by_cause.setdefault(head, []).append(name)
    for head, names in by_cause.items():
        console.print(Text(head, style="red"), overflow="fold")
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        console.print(Text(f"  in {len(names)} scenario(s): {shown}", style="dim"), overflow="fold")


# ---------------------------------------------------------------- HTML

CSS = """
:root { --ok:#2e7d32; --bad:#c62828; --skip:#b26a00; --err:#6a1b9a; --fg:#1f2328; --mute:#656d76;
        --line:#d0d7de; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1560px; padding: 24px 32px 64px; }
h1 { font-size: 24px; margin: 0 0 4px; display: flex; gap: 12px; align-items: center; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.mute { color: var(--mute); }
.badge { display: inline-block; padding: 1px 9px; border-radius: 11px; color: #fff; font-weight: 600;
         font-size: 12px; letter-spacing: .03em; }
h1 .badge { font-size: 15px; padding: 3px 12px; }
.passed { background: var(--ok); } .failed { background: var(--bad); }
.skipped { background: var(--skip); } .error { background: var(--err); }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tfoot td { font-weight: 600; background: var(--bg); }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 4px 28px; }
.grid h3 { font-size: 14px; margin: 12px 0 2px; }
details.scenario { border: 1px solid var(--line); border-radius: 6px; margin: 10px 0; }
details.scenario > summary { cursor: pointer; padding: 8px 12px; background: var(--bg); font-weight: 600;
                             border-radius: 6px; list-style-position: inside; }
details.scenario[open] > summary { border-bottom: 1px solid var(--line); border-radius: 6px 6px 0 0; }
details.scenario .body { padding: 8px 14px 14px; }
ul.verdicts { list-style: none; padding: 0; margin: 6px 0; }
ul.verdicts li { margin: 2px 0; }
.ok { color: var(--ok); font-weight: 700; } .ko { color: var(--bad); font-weight: 700; }
pre { background: #fff8f8; border: 1px solid #f0c6c6; border-left: 4px solid var(--bad); padding: 8px 10px;
      overflow-x: auto; white-space: pre; margin: 6px 0 10px; }
pre.info { background: var(--bg); border-color: var(--line); border-left-color: var(--mute); }
img.timeline { width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; margin-top: 8px; }
a { color: #0969da; text-decoration: none; } a:hover { text-decoration: underline; }
.files { font-size: 12px; }
"""


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def _kv_table(d: Mapping[str, Any]) -> str:
    if not d:
        return '<p class="mute">—</p>'
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in d.items())
    return f"<table>{rows}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    return "—" if v is None else str(v)


_PSU_LINE = re.compile(r"^\[\s*(?P<t>[-\d.]+)\]\s+psu\s+sample\s+(?P<data>\{.*\})\s*$")


def condense_samples(text: str, *, keep: int = 1) -> str:
    """Fold runs of more than `keep` PSU sample lines of a timeline slice into one summary line,
    so the board and cloud events that explain a failure stay readable."""
    out: list[str] = []
    run: list[tuple[str, float | None]] = []

    def flush() -> None:
        if len(run) <= keep:
            out.extend(line for line, _ in run)
        else:
            t0 = _PSU_LINE.match(run[0][0]).group("t")  # type: ignore[union-attr]
            t1 = _PSU_LINE.match(run[-1][0]).group("t")  # type: ignore[union-attr]
            amps = [a for _, a in run if a is not None]
            rng = f", {min(amps) * 1000:.1f}–{max(amps) * 1000:.1f} mA" if amps else ""
            out.append(f"[{t0:>12} … {t1}] psu sample ×{len(run)}{rng}")
        run.clear()

    for line in text.splitlines():
        m = _PSU_LINE.match(line)
        if m:
            try:
                a = json.loads(m.group("data")).get("amps")
            except ValueError:
                a = None
            run.append((line, float(a) if isinstance(a, (int, float)) else None))
            continue
        flush()
        out.append(line)
    flush()
    return "\n".join(out)


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in s).strip("-").lower() or "scenario"


def _header(record: Mapping[str, Any], results: list[Mapping[str, Any]]) -> str:
    counts = _counts(results)
    passed = record.get("passed")
    if passed is None:
        passed = counts["failed"] == 0 and counts["error"] == 0 and counts["passed"] > 0
    cls, word = ("passed", "CERTIFIED") if passed else ("failed", "NOT CERTIFIED")
    fw_rows = "".join(
        f"<tr><td>{_e(f.get('version'))}</td><td class='mono'>{_e(f.get('sha256'))}</td>"
        f"<td class='mono'>{_e(f.get('path'))}</td></tr>" for f in record.get("firmware", []))
    fw = (f"<table><tr><th>version</th><th>SHA-256</th><th>path</th></tr>{fw_rows}</table>"
          if fw_rows else '<p class="mute">—</p>')
    bd_rows = "".join(
        f"<tr><td class='mono'>{_e(b.get('id'))}</td><td>{_e(b.get('platform'))}</td>"
        f"<td>{_e(_fmt(b.get('versions_seen', b.get('versions', []))))}</td></tr>"
        for b in record.get("boards", []))
    bd = (f"<table><tr><th>id</th><th>platform</th><th>versions seen</th></tr>{bd_rows}</table>"
          if bd_rows else '<p class="mute">—</p>')
    meta = {"created (UTC)": record.get("created_utc"), "seed": record.get("seed"),
            "schema": record.get("schema")}
    return f"""
<h1>otarig certification report <span class="badge {cls}">{word}</span></h1>
<p class="mute">{counts['passed']} passed · {counts['failed']} failed · {counts['skipped']} skipped
{f"· {counts['error']} error" if counts['error'] else ""} · created {_e(record.get('created_utc'))} · seed
<span class="mono">{_e(record.get('seed'))}</span></p>
<div class="grid">
  <div><h3>Firmware</h3>{fw}</div>
  <div><h3>Boards</h3>{bd}</div>
  <div><h3>Bench</h3>{_kv_table(record.get('bench', {}))}</div>
  <div><h3>Tools</h3>{_kv_table(record.get('tools', {}))}</div>
  <div><h3>Run</h3>{_kv_table(meta)}</div>
</div>"""


def _summary_table(results: list[Mapping[str, Any]]) -> str:
    rows = []
    for r in results:
        o = r.get("outcome", "error")
        name = str(r.get("name") or r.get("nodeid"))
        rows.append(
            f"<tr><td><a href='#{_slug(name)}'>{_e(name)}</a></td>"
            f"<td><span class='badge {_e(o)}'>{BADGE.get(o, _e(o).upper())}</span></td>"
            f"<td class='num'>{_e(human_duration(_num(r.get('device_time_s'))))}</td>"
            f"<td class='num'>{kb(r.get('data_bytes')):.1f} KB</td>"
            f"<td class='num'>{_num(r.get('duration_wall_s')):.2f} s</td></tr>")
    tot = _totals(results)
    c = _counts(results)
    return f"""
<h2>Summary</h2>
<table>
<thead><tr><th>scenario</th><th>verdict</th><th>device time covered</th><th>cellular data spent</th>
<th>wall time</th></tr></thead>
<tbody>{''.join(rows)}</tbody>
<tfoot><tr><td>total ({len(results)})</td><td>{c['passed']} pass / {c['failed'] + c['error']} fail</td>
<td class='num'>{_e(human_duration(tot['device_time_s']))}</td>
<td class='num'>{kb(tot['data_bytes']):.1f} KB</td><td class='num'>{tot['duration_wall_s']:.2f} s</td></tr></tfoot>
</table>"""


def _image(adir: Path) -> str:
    png = adir / "timeline.png"
    if not png.is_file():
        return '<p class="mute">no timeline.png for this scenario</p>'
    b64 = base64.b64encode(png.read_bytes()).decode("ascii")
    return f'<img class="timeline" alt="timeline" src="data:image/png;base64,{b64}">'


def _files(adir: Path, report_dir: Path) -> str:
    if not adir.is_dir():
        return ""
    links = []
    for f in sorted(p for p in adir.iterdir() if p.is_file() and p.name != "meta.json"):
        try:
            href = Path(f).resolve().relative_to(report_dir.resolve()).as_posix()
        except ValueError:
            href = f.resolve().as_uri()
        links.append(f"<a href='{_e(href)}'>{_e(f.name)}</a>")
    return f"<p class='files mute'>artifacts: {' · '.join(links)}</p>" if links else ""


def _scenario(r: Mapping[str, Any], report_dir: Path) -> str:
    o = r.get("outcome", "error")
    name = str(r.get("name") or r.get("nodeid"))
    verdicts = r.get("verdicts") or []
    items = []
    pres = []
    for v in verdicts:
        ok = bool(v.get("passed"))
        mark = "<span class='ok'>✔</span>" if ok else "<span class='ko'>✘</span>"
        items.append(f"<li>{mark} <b>{_e(v.get('name'))}</b> — {_e(v.get('message'))}</li>")
        if not ok:
            pres.append(f"<pre>{_e(condense_samples(str(v.get('explanation') or v.get('message'))))}</pre>")
    longrepr = str(r.get("longrepr") or "").strip()
    if longrepr:
        cls = "" if o in ("failed", "error") else " class='info'"
        pres.append(f"<pre{cls}>{_e(longrepr)}</pre>")
    adir = Path(str(r.get("artifacts_dir") or ""))
    is_open = " open" if o in ("failed", "error") else ""
    return f"""
<details class="scenario" id="{_slug(name)}"{is_open}>
<summary><span class="badge {_e(o)}">{BADGE.get(o, _e(o).upper())}</span> {_e(name)}
<span class="mute"> · {_e(human_duration(_num(r.get('device_time_s'))))} device time ·
{kb(r.get('data_bytes')):.1f} KB · {_num(r.get('duration_wall_s')):.2f} s</span></summary>
<div class="body">
<p class="mono mute">{_e(r.get('nodeid'))}</p>
{f"<ul class='verdicts'>{''.join(items)}</ul>" if items else "<p class='mute'>no verdicts recorded</p>"}
{''.join(pres)}
{_image(adir) if str(r.get('artifacts_dir') or '') else ''}
{_files(adir, report_dir) if str(r.get('artifacts_dir') or '') else ''}
</div>
</details>"""


def write_html(report_dir: Path | str, results: list[Mapping[str, Any]], record: Mapping[str, Any]) -> Path:
    """Write `<report_dir>/report.html`, self-contained (inline CSS, timelines as base64 PNGs)."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    # failed scenarios first in the detail section, in run order otherwise
    order = sorted(results, key=lambda r: 0 if r.get("outcome") in ("failed", "error") else 1)
    body = _header(record, results) + _summary_table(results) + "<h2>Scenarios</h2>" + \
        "".join(_scenario(r, report_dir) for r in order)
    title = "otarig certification — " + ("PASS" if record.get("passed") else "FAIL")
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{CSS}</style></head>
<body>{body}
<p class="mute" style="margin-top:32px">Generated by otarig · record schema {_e(record.get('schema'))}</p>
</body></html>
"""
    out = report_dir / "report.html"
    out.write_text(doc, encoding="utf-8")
    return out
