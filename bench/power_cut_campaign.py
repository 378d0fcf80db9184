"""Power lost in the middle of a write: the campaign's figures (docs/reference/particle-ota.md §2.10).

Records one OTA + record-log run of the real companion on the simulated bench, then cuts power
inside every flash operation in turn (every word of every program run, each EEPROM record word at
several instants, every sector erase), at seeded random instants over the whole run and at seeded
random instants inside writes (weighted by their duration), boots each state a cut
leaves through the real boot path and firmware, and prints: cuts, where they landed, what booted,
bricked, records lost, wall time (`otarig.sim.power_cut_campaign`).

    .venv/bin/python bench/power_cut_campaign.py                       # the good build
    .venv/bin/python bench/power_cut_campaign.py --defect recordlog-one-copy   # firmware/defects/

Exit status: 0 when the good build shows bricked 0 and records lost 0 (with --defect: when the
campaign catches the defect), 1 otherwise.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from otarig.sim.power_cut_campaign import campaign_images, run_campaign


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--random", type=int, default=10_000, help="seeded random cut instants (default 10000)")
    ap.add_argument("--random-in-writes", type=int, default=10_000,
                    help="seeded random instants inside writes, weighted by their duration (default 10000)")
    ap.add_argument("--per-word", type=int, default=8,
                    help="cuts inside each EEPROM record/status word (default 8)")
    ap.add_argument("--stride", type=int, default=1,
                    help="cut one word in N of the long program runs (default 1: every word)")
    ap.add_argument("--defect", help="a patch of firmware/defects/ (without .patch) applied to the companion")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    started = time.monotonic()
    try:
        v1, v2 = campaign_images(args.defect)
    except ValueError as exc:
        print(f"power_cut_campaign: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="otarig-cuts-") as tmp:
        result = run_campaign(v1, v2, Path(tmp) / "recorded.log", random_n=args.random,
                              random_in_writes_n=args.random_in_writes,
                              every_op_stride=args.stride, per_short_word=args.per_word, seed=args.seed,
                              progress=lambda line: print(f"  ... {line}", flush=True))
    build = f"defect {args.defect}" if args.defect else "good build"
    print(f"power-cut campaign, {build}, seed {args.seed}")
    print(result.summary())
    print(f"total wall time {time.monotonic() - started:.1f} s")
    failed = bool(result.bricked or result.records_lost)
    return 0 if failed == bool(args.defect) else 1


if __name__ == "__main__":
    raise SystemExit(main())
