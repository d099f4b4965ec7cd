"""L5's choice of 16-bit convolutions from measured errors: a linear error model and a knapsack.

Pure numpy, no model types. The measurement (``pipeline.l5.refine_l5``) hands over, for every
measured output ``o``, ``errors[o]``: a ``[n_convs, m]`` array whose row ``k`` is the error that conv
``k`` alone at 8 bit causes at that output (every other op exact; the samples concatenated), and
``signal[o]``, the output's float energy. The model: errors add as vectors (to first order the
network is linear in small perturbations), so with the convs ``x`` (bool per conv) at 8 bit

    nsr[o](x) = || sum_k x[k] * errors[o][k] ||**2 / signal[o] = x @ G[o] @ x / signal[o],

``G[o]`` the Gram matrix of the rows. Unlike a sum of powers this sees errors that build up
coherently over many convs (the same sign at the output) and errors that cancel. L5 minimises the
worst output's ``nsr`` with the 16-bit convs' multiply-accumulates within a budget.

* :func:`gram` -- the ``G[o]`` from the error rows; :func:`diagonal` -- without the cross terms (the
  errors' powers add: robust when the cross terms, measured on few samples, are noise);
* :func:`sensitivity` -- the relative drop of the worst-output noise when one conv alone is made
  16-bit (what ``-sth`` is compared with);
* :func:`knapsack` -- exact 0/1 knapsack on integer costs (dynamic programming over the capacity);
* :func:`leave_one_out` -- per sample, the per-channel extremes of all the other samples (the ranges
  the calibration would give without that sample: what L5 quantizes a measured sample with, so that
  the clipping of data the ranges were not made from shows in the measurement);
* :func:`choose_upgrades` -- the 16-bit set: the better (by the model) of a knapsack on each conv's
  noise removed, re-linearised around its own choice a few times, and a greedy that removes the conv
  with the largest drop of the worst output's noise per MAC, re-evaluating after each one.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

#: capacity units the MAC budget is divided into for the knapsack (costs rounded up: always feasible)
KNAPSACK_UNITS = 4096
#: re-weighting rounds of choose_upgrades (each one knapsack)
ROUNDS = 8


def gram(errors: Sequence[np.ndarray]) -> np.ndarray:
    """``[n_outputs, n_convs, n_convs]``: per output, the inner products of the convs' error rows."""
    return np.stack([np.asarray(e, np.float64) @ np.asarray(e, np.float64).T for e in errors])


def leave_one_out(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sample ``n``: the minimum of ``lo`` and the maximum of ``hi`` over every other sample.

    ``lo``, ``hi``: ``[n_samples, ...]`` per-sample (per-channel) minima and maxima; min/max merge, so
    all-but-one is the merge of the samples before ``n`` with those after it (prefix and suffix
    extremes, O(n_samples) per channel). A single sample has no other: +inf / -inf.
    """
    lo = np.asarray(lo, np.float64)
    hi = np.asarray(hi, np.float64)
    if lo.shape != hi.shape or lo.ndim < 1:
        raise ValueError(f"leave_one_out: lo {lo.shape} and hi {hi.shape} must be the same [n_samples, ...]")
    def others(v: np.ndarray, merge, identity: float) -> np.ndarray:
        none = np.full((1,) + v.shape[1:], identity)
        before = np.concatenate([none, merge.accumulate(v, axis=0)[:-1]])
        after = np.concatenate([merge.accumulate(v[::-1], axis=0)[::-1][1:], none])
        return merge(before, after)

    return others(lo, np.minimum, np.inf), others(hi, np.maximum, -np.inf)


def independent(power: np.ndarray) -> np.ndarray:
    """``[n_outputs, n, n]`` diagonal ``G[o]`` from ``power[k, o]`` (conv k's error energy at output o):
    the convs' errors taken as independent, their powers adding."""
    power = np.asarray(power, np.float64)
    n, n_out = power.shape
    g = np.zeros((n_out, n, n))
    k = np.arange(n)
    g[:, k, k] = power.T
    return g


def diagonal(g: np.ndarray) -> np.ndarray:
    """``g`` without its cross terms: the convs' errors taken as independent (their powers add)."""
    g = np.asarray(g, np.float64)
    out = np.zeros_like(g)
    k = np.arange(g.shape[1])
    out[:, k, k] = g[:, k, k]
    return out


def predicted_nsr(g: np.ndarray, signal: np.ndarray, eight: np.ndarray) -> np.ndarray:
    """Per output ``o``: ``x @ g[o] @ x / signal[o]`` with ``x = eight`` (bool per conv, True = 8-bit)."""
    x = np.asarray(eight, bool).astype(np.float64)
    q = np.einsum("k,okl,l->o", x, np.asarray(g, np.float64), x)
    return np.maximum(q, 0.0) / np.maximum(np.asarray(signal, np.float64), 1e-30)


def _flip(g: np.ndarray, signal: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``[n_convs, n_outputs]``: each output's nsr when conv k alone changes side (``x``: 1 = 8-bit)."""
    gx = np.einsum("okl,l->ok", g, x)
    q = np.einsum("k,ok->o", x, gx)
    diag = np.einsum("okk->ok", g)
    sign = np.where(x > 0, -1.0, 1.0)  # leaving the 8-bit set removes its row, joining adds it
    after = q[None, :] + (sign[None, :] * 2 * gx + diag).T
    return np.maximum(after, 0.0) / np.maximum(signal, 1e-30)[None, :]


def sensitivity(g: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Per conv: ``(max_o nsr_all[o] - max_o nsr_without_k[o]) / max_o nsr_all[o]``, all convs 8-bit.

    The relative drop of the worst output's noise-to-signal ratio when conv ``k`` alone is 16-bit
    (negative when its error cancels others'; 0 when there is no noise).
    """
    g = np.asarray(g, np.float64)
    signal = np.asarray(signal, np.float64)
    n = g.shape[1]
    x = np.ones(n)
    worst = float(predicted_nsr(g, signal, x.astype(bool)).max()) if n else 0.0
    if worst <= 0 or n == 0:
        return np.zeros(n)
    return (worst - _flip(g, signal, x).max(axis=1)) / worst


def output_sensitivity(g: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Per conv: ``max_o (nsr_all[o] - nsr_without_k[o]) / nsr_all[o]``, all convs 8-bit (outputs
    without noise skipped).

    The largest relative drop of any one output's noise-to-signal ratio when conv ``k`` alone is 16-bit:
    a conv that matters to an output other than the noisiest one (which the first upgrades may change)
    counts too.
    """
    g = np.asarray(g, np.float64)
    signal = np.asarray(signal, np.float64)
    n = g.shape[1]
    if n == 0:
        return np.zeros(0)
    x = np.ones(n)
    nsr = predicted_nsr(g, signal, x.astype(bool))
    noisy = nsr > 0
    if not noisy.any():
        return np.zeros(n)
    drop = (nsr[None, noisy] - _flip(g, signal, x)[:, noisy]) / nsr[None, noisy]
    return drop.max(axis=1)


def knapsack(values: Sequence[float], costs: Sequence[int], capacity: int) -> frozenset[int]:
    """The indices maximising ``sum(values)`` with ``sum(costs) <= capacity`` (0/1, exact).

    ``costs`` and ``capacity`` are non-negative integers; items of value <= 0 are never taken; among
    equal-value choices the one found first (lower indices, then lower cost) wins. O(n * capacity).
    """
    values = np.asarray(values, np.float64)
    costs = np.asarray(costs, np.int64)
    capacity = int(capacity)
    if values.shape != costs.shape:
        raise ValueError(f"knapsack: {values.size} values but {costs.size} costs")
    if capacity < 0 or np.any(costs < 0):
        raise ValueError("knapsack: costs and capacity must be non-negative")
    n = values.size
    best = np.zeros(capacity + 1)  # best[c]: the best value within capacity c using the items so far
    take = np.zeros((n, capacity + 1), bool)
    for k in range(n):
        v, w = values[k], int(costs[k])
        if v <= 0 or w > capacity:
            continue
        cand = np.full(capacity + 1, -np.inf)
        cand[w:] = best[: capacity + 1 - w] + v
        better = cand > best
        take[k] = better
        best = np.where(better, cand, best)
    chosen, c = [], capacity
    for k in range(n - 1, -1, -1):
        if take[k, c]:
            chosen.append(k)
            c -= int(costs[k])
    return frozenset(chosen)


def scaled_costs(costs: Sequence[int], budget: float, units: int = KNAPSACK_UNITS) -> tuple[np.ndarray, int]:
    """``costs`` on a grid of ``units`` steps per ``budget``, rounded up (a feasible choice stays
    feasible); returns (integer costs, integer capacity)."""
    costs = np.asarray(costs, np.float64)
    if budget <= 0:
        return np.where(costs > 0, units + 1, 0).astype(np.int64), 0
    with np.errstate(over="ignore"):
        scaled = np.ceil(np.minimum(costs * (units / budget), units + 1.0))  # > budget: never fits
    return scaled.astype(np.int64), units


def choose_upgrades(g: np.ndarray, signal: np.ndarray, costs: Sequence[float], budget: float,
                    eligible: np.ndarray | None = None, rounds: int = ROUNDS) -> frozenset[int]:
    """The convs to make 16-bit (indices into ``g``'s rows) within ``sum(costs) <= budget``.

    Two searches, the one with the smaller predicted worst-output ``nsr`` wins (ties: the first):

    * knapsack: conv ``k``'s value is the drop of ``sum_o w[o] * nsr[o]`` when it alone leaves the
      current 8-bit set; ``w`` starts at the worst output and then follows each output's predicted
      ``nsr`` (``(nsr[o] / max nsr) ** 4``), and the set is re-linearised around each round's choice;
    * greedy: repeatedly the affordable conv with the largest drop of the worst output's ``nsr`` per
      cost, the model re-evaluated after each one, until none lowers it.

    ``eligible``: bool per conv (the others stay 8-bit).
    """
    g = np.asarray(g, np.float64)
    signal = np.asarray(signal, np.float64)
    n = g.shape[1] if g.ndim == 3 else 0
    if n == 0:
        return frozenset()
    costs = np.asarray(costs, np.float64)
    eligible = np.ones(n, bool) if eligible is None else np.asarray(eligible, bool)
    icost, cap = scaled_costs(costs, budget)

    def worst(chosen) -> float:
        x = np.ones(n, bool)
        x[list(chosen)] = False
        return float(predicted_nsr(g, signal, x).max())

    best = (worst(()), frozenset())
    # knapsack, re-linearised around each round's choice
    x = np.ones(n)
    nsr = predicted_nsr(g, signal, x.astype(bool))
    w = (nsr >= nsr.max()).astype(np.float64)
    seen = set()
    for _ in range(max(1, rounds)):
        delta = (_flip(g, signal, x) - nsr[None, :]) @ w  # the weighted change when k alone flips
        gain = np.where(x > 0, -delta, delta)  # what making k 16-bit is worth around x
        chosen = knapsack(np.where(eligible, gain, 0.0), icost, cap)
        if chosen in seen:
            break
        seen.add(chosen)
        score = worst(chosen)
        if score < best[0]:
            best = (score, chosen)
        x = np.ones(n)
        x[list(chosen)] = 0
        nsr = predicted_nsr(g, signal, x.astype(bool))
        top = float(nsr.max())
        if top <= 0:
            break
        w = (nsr / top) ** 4
    # greedy with re-evaluation
    x = np.ones(n)
    left = float(budget)
    chosen: set[int] = set()
    current = worst(())
    while True:
        after = _flip(g, signal, x).max(axis=1)
        ok = eligible & (x > 0) & (costs <= left + 1e-9) & (after < current)
        if not ok.any():
            break
        ratio = np.where(ok, (current - after) / np.maximum(costs, 1.0), -np.inf)
        k = int(np.argmax(ratio))
        chosen.add(k)
        x[k] = 0
        left -= costs[k]
        current = float(after[k])
    if chosen and current < best[0]:
        best = (current, frozenset(chosen))
    return best[1]
