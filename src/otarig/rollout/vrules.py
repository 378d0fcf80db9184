"""`otarig.sim.cloud_rules` decisions applied to whole arrays of devices.

The rules are pure functions of booleans; for arrays, each rule is evaluated once per
combination of its inputs (a truth table built by calling the rule itself) and looked up per
device — so the vectorised model takes its decisions from the very same code, not a re-typed copy.
"""
from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Callable

import numpy as np


@lru_cache(maxsize=None)
def _table(fn: Callable, names: tuple[str, ...], fixed: tuple[tuple[str, bool], ...]) -> np.ndarray:
    out = []
    for bits in itertools.product((False, True), repeat=len(names)):
        out.append(fn(**dict(fixed), **dict(zip(names, bits))))
    table = np.empty(len(out), dtype=object)
    table[:] = out
    return table


def vrule(fn: Callable, **kw) -> np.ndarray:
    """fn(**kw) for every element of the array-valued keyword arguments (the others are fixed)."""
    names = tuple(k for k, v in kw.items() if isinstance(v, np.ndarray))
    fixed = tuple(sorted((k, bool(v)) for k, v in kw.items() if not isinstance(v, np.ndarray)))
    table = _table(fn, names, fixed)
    if not names:
        return table[0]
    index = np.zeros(np.shape(kw[names[0]]), dtype=np.int64)
    for n in names:
        index = (index << 1) | kw[n].astype(np.int64)
    return table[index]


def vbool(fn: Callable, **kw) -> np.ndarray:
    return vrule(fn, **kw).astype(bool)
