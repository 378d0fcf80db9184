"""`otarig selftest`: the good build, the shipped defects, then generated ones, with progress."""
from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from .. import __version__
from ..sim import sanitizer
from ..sim.build import companion_project
from .engine import KILLED, Candidate, MutationEngine, Outcome, Variant
from .equivalence import anchor, line_entry, listed_entry, load_equivalents
from .generate import Mutant, default_files, generate, sample
from .report import print_summary, summarize, write_reports
from .shipped import mutants_dir, shipped_defects

__all__ = ["run_selftest"]


def run_selftest(bench_path: Path, *, report_dir: Path, suite: Path, pinned: list[str], seed: int = 1,
                 project: Path | None = None, shipped: list[int] | None = None, generated: bool = True,
                 max_mutants: int | None = None, files: list[str] | None = None, jobs: int = 2,
                 equivalents: Path | None = None, select: str | None = None, only: list[str] | None = None,
                 console: Console | None = None) -> int:
    """Exit 0 when the good build passes, every shipped defect is killed and no generated mutant
    survives unlisted; 1 otherwise."""
    console = console or Console()
    t0 = time.perf_counter()
    base = (project or companion_project()).resolve()
    engine = MutationEngine(bench_path, suite, report_dir, project=project, seed=seed, jobs=jobs, pinned=pinned)

    candidates: list[Candidate] = []
    if project is None:
        defects = shipped_defects()
        for n in (shipped if shipped is not None else sorted(defects)):
            if n not in defects:
                raise ValueError(f"no shipped defect {n} (firmware/mutants/{n:02d}-*.patch); known: "
                                 f"{', '.join(map(str, defects))}")
            candidates.append(Candidate(f"shipped-{n}", defects[n].description, shipped=n))
    total = 0
    listed = anchor(load_equivalents(equivalents or (mutants_dir() / "equivalent.toml" if project is None
                                                     else base / "mutants-equivalent.toml")), base)
    if generated:
        with console.status("generating mutants with universalmutator…"):
            all_mutants = {m.id: m for m in generate(base, files or default_files(base))}
        total = len(all_mutants)
        only = list(dict.fromkeys(only)) if only else only  # an id named twice is run once
        chosen = ([all_mutants[i] for i in only if i in all_mutants] if only
                  else sample(list(all_mutants.values()), max_mutants, seed))
        if only and len(chosen) != len(set(only)):
            raise ValueError(f"--only: no generated mutant {', '.join(sorted(set(only) - set(all_mutants)))} "
                             f"(ids as selftest.json lists them, e.g. OtaGuard:101:1ab69378){_moved(only, all_mutants)}")
        for m in chosen:
            candidates.append(Candidate(m.id, f"{m.file}:{m.line}", mutant=m))

    outcomes: dict[str, Outcome] = {}
    to_run = []
    for c in candidates:
        entry = listed_entry(c.mutant, listed) if c.mutant is not None else None
        if entry is not None:
            outcomes[c.key] = Outcome(entry.kind, detail=entry.reason)
        else:
            to_run.append(c)

    with console.status("collecting scenarios…"):
        engine.collect(select)
    tally: dict[str, int] = {}
    second_looks: list[dict[str, object]] = []
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[tally]}"), console=console) as progress:
        good_task = progress.add_task("good build: whole suite", total=1, tally="")
        good = engine.good_run()
        progress.advance(good_task)
        if good.failed:  # such a scenario would "kill" every defect: leave it out, and fail the selftest
            progress.console.print(f"[red]the good build fails {', '.join(good.failed)}: left out of the defect "
                                   "runs; the selftest fails until the good build passes[/red]")
            engine.nodeids = [n for n in engine.nodeids if n not in good.failed]
        if engine.nodeids:
            task = progress.add_task("defects", total=len(to_run), tally="")

            def done(c: Candidate, o: Outcome) -> None:
                entry = line_entry(c.mutant, listed) if c.mutant is not None and o.status == "survived" else None
                if entry is not None:  # a survivor of a line listed whole: it takes the line's reason
                    o.status, o.detail = entry.kind, f"{entry.reason} (survived the suite; listed for its whole line)"
                key = "killed" if o.status in KILLED else o.status
                tally[key] = tally.get(key, 0) + 1
                progress.update(task, advance=1, tally=" ".join(f"{k} {v}" for k, v in sorted(tally.items())))
                if o.status == "survived":
                    progress.console.print(f"[red]survived[/red] {c.label} {c.key}")

            outcomes.update(engine.run_all(to_run, done))
            second_looks = _second_look(engine, [c for c in to_run if outcomes[c.key].status == "survived"],
                                        outcomes, progress)

    summary = summarize(candidates, outcomes, generated_total=total, base=base, extra={
        "firmware": str(base), "seed": seed, "jobs": jobs, "report_dir": str(report_dir),
        "good": {"failed": good.failed, "ran": good.ran, "wall_s": round(good.wall_s, 1)},
        "good_failed": good.failed, "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "otarig": __version__,
        "scenario_kills": dict(engine.kills.most_common()), "scenarios": len(engine.nodeids), "select": select,
        "second_look": second_looks,
    })
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    write_reports(summary, report_dir)
    print_summary(summary, console)
    shipped_ok = all(s["status"] in KILLED for s in summary["shipped"])
    return 0 if not good.failed and shipped_ok and not summary["survivors"] else 1




def _moved(only: list[str], known: dict[str, Mutant]) -> str:
    """An id names its line, which moves when lines are added above it: find the mutant that had
    that id at its old line (same file stem, original and mutated text) and name its id now, so an
    id copied from an older report still leads somewhere."""
    said = []
    for old in only:
        if old in known or old.count(":") != 2:
            continue
        stem, line, _ = old.split(":")
        if not line.isdigit():
            continue
        now = [m.id for i, m in known.items() if i.startswith(stem + ":") and replace(m, line=int(line)).id == old]
        said += [f"{old} is now {now[0]}"] if now else []
    return f"; its line moved: {'; '.join(said)}" if said else ""


def variants(engine: MutationEngine) -> list[Variant]:
    """The second looks this firmware and machine allow: its build in the other threading model, when
    it can be built either way; its sanitized build, when the compiler has the AddressSanitizer
    runtime (otarig.sim.sanitizer)."""
    looks = []
    other = engine.other_threading()
    if other is not None:
        looks.append(Variant(other, "the firmware's other threading model (OTARIG_THREADED), where Device OS "
                                    "runs the app differently: a stall of loop(), events in another order",
                             args=(f"--threading={other}",)))
    if sanitizer.runtime() is not None:
        looks.append(Variant("sanitized", "a memory error (out-of-bounds, use after free) that changes nothing "
                                          "a scenario sees on the host", env=tuple(sanitizer.environment({}).items())))
    return looks


def _second_look(engine: MutationEngine, survivors: list[Candidate], outcomes: dict[str, Outcome],
                 progress: Progress) -> list[dict[str, object]]:
    """Each survivor of the plain build, run again under each variant whose good build passes: one it
    kills counts as killed, with the variant named (docs/selftest.md "A second look at survivors")."""
    looks: list[dict[str, object]] = []
    if not survivors:
        return looks
    for variant in variants(engine):
        if not survivors:
            break
        good_task = progress.add_task(f"good build, {variant.name}: whole suite", total=1, tally="")
        good = engine.good_run(variant)
        progress.advance(good_task)
        look: dict[str, object] = {"variant": variant.name, "why": variant.why, "good_failed": good.failed,
                                   "good_wall_s": round(good.wall_s, 1), "killed": []}
        looks.append(look)
        if good.failed or not good.ran:
            progress.console.print(f"[yellow]second look, {variant.name}: the good build fails "
                                   f"{', '.join(good.failed) or 'to run'}; this look is left out[/yellow]")
            continue
        task = progress.add_task(f"survivors, {variant.name}", total=len(survivors), tally="")

        def done(c: Candidate, o: Outcome, task=task, variant=variant, look=look) -> None:
            progress.update(task, advance=1)
            if o.status in KILLED:
                outcomes[c.key] = o
                look["killed"].append(c.key)  # type: ignore[union-attr]
                progress.console.print(f"[green]killed by the {variant.name} build[/green] {c.label} {c.key}: "
                                       f"{o.detail}")

        engine.run_all(survivors, done, variant)
        survivors = [c for c in survivors if outcomes[c.key].status == "survived"]
    return looks
