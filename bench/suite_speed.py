"""Benchmark: wall time of the full certification suite and the simulated device time it covers.

Issue target: ≥ 7 device-days in under 60 s on this machine. Run:
    .venv/bin/python bench/suite_speed.py [--seed N]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        code = pytest.main([str(REPO / "hil"), f"--bench={REPO / 'bench_config.toml'}", f"--seed={args.seed}",
                            f"--otarig-artifacts={out}", "-q", "-p", "no:cacheprovider", f"--rootdir={REPO}"])
        wall = time.perf_counter() - t0
        metas = [json.loads(p.read_text()) for p in out.glob("*/meta.json")]
    device_s = sum(m.get("device_time_s") or 0 for m in metas)
    data = sum(m.get("data_bytes") or 0 for m in metas)
    print()
    print(f"{'scenarios':<28}{len(metas)}")
    print(f"{'wall time':<28}{wall:.1f} s")
    print(f"{'device time covered':<28}{device_s / 86400:.2f} device-days ({device_s:,.0f} s)")
    print(f"{'device-s per wall-s':<28}{device_s / wall:,.0f}x")
    print(f"{'cellular data simulated':<28}{data / 1024:,.0f} KB")
    print(f"{'target':<28}>= 7 device-days in < 60 s: {'met' if device_s >= 7 * 86400 and wall < 60 else 'NOT met'}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
