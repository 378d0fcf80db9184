"""`otarig.sim.cloud_rules` decisions applied to whole arrays of devices.

The rules are pure functions of booleans; for arrays, each rule is evaluated once per
combination of its inputs (a truth table built by calling the rule itself) and looked up per
device — so the vectorised model takes its decisions from the very same code, not a re-typed copy.
Lookups go through small typed tables (bool, or one bool table per wanted value): no Python
objects per device.
"""
from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Callable

import numpy as np


@lru_cache(maxsize=None)
def _table(fn: Callable, names: tuple[str, ...], fixed: tuple[tuple[str, bool], ...]) -> tuple:
    """fn's value for every combination of `names` (first name = most significant bit)."""
    return tuple(fn(**dict(fixed), **dict(zip(names, bits)))
                 for bits in itertools.product((False, True), repeat=len(names)))


@lru_cache(maxsize=None)
def _bool_table(fn: Callable, names: tuple[str, ...], fixed: tuple[tuple[str, bool], ...], value: object) -> np.ndarray:
    """Truth table of fn(...) (value is ...) or of fn(...) == value."""
    out = _table(fn, names, fixed)
    return np.array([bool(v) if value is ... else v == value for v in out], dtype=bool)


def _split(kw: dict) -> tuple[tuple[str, ...], tuple[tuple[str, bool], ...]]:
    names = tuple(k for k, v in kw.items() if isinstance(v, np.ndarray))
    fixed = tuple(sorted((k, bool(v)) for k, v in kw.items() if not isinstance(v, np.ndarray)))
    return names, fixed


def _index(kw: dict, names: tuple[str, ...]) -> np.ndarray:
    dtype = np.uint8 if len(names) <= 8 else np.int64
    index = np.zeros(np.shape(kw[names[0]]), dtype=dtype)
    for n in names:
        index <<= 1
        index |= np.asarray(kw[n], dtype=bool)
    return index


def vrule(fn: Callable, **kw) -> np.ndarray:
    """fn(**kw) for every element of the array-valued keyword arguments (the others are fixed)."""
    names, fixed = _split(kw)
    out = _table(fn, names, fixed)
    table = np.empty(len(out), dtype=object)
    table[:] = out
    if not names:
        return table[0]
    return table[_index(kw, names)]


def vbool(fn: Callable, **kw) -> np.ndarray | bool:
    """bool(fn(**kw)) per element (a plain bool when no argument is an array)."""
    names, fixed = _split(kw)
    table = _bool_table(fn, names, fixed, ...)
    if not names:
        return bool(table[0])
    return table.take(_index(kw, names))


def vcases(fn: Callable, values: tuple, **kw) -> list[np.ndarray]:
    """[fn(**kw) == v per element, for v in values]: one index computation for several outcomes."""
    names, fixed = _split(kw)
    if not names:
        out = fn(**dict(fixed))
        return [np.bool_(out == v) for v in values]
    index = _index(kw, names)
    return [_bool_table(fn, names, fixed, v).take(index) for v in values]
