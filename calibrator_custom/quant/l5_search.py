"""L5's choice of 16-bit convolutions from measured noise: an additive noise model and a knapsack.

Pure numpy, no model types: the measurement (``quant.convert._refine_l5``) hands over, for every
8-bit candidate conv ``k`` and every measured output ``o``, ``noise[k, o]``: the squared error that
conv ``k`` alone at 8 bit causes at output ``o`` (summed over the samples, every other op exact),
and ``signal[o]``, the output's float energy. The model: the noise-to-signal ratio of output ``o``
with the convs in ``eight`` at 8 bit is ``nsr[o] = (floor[o] + sum_{k in eight} noise[k, o]) / signal[o]``
(independent noise sources add in power); L5 minimises the worst output's ``nsr`` with the 16-bit
convs' multiply-accumulates within a budget.

* :func:`sensitivity` -- the relative drop of the worst-output noise when one conv alone is made
  16-bit (what ``-sth`` is compared with);
* :func:`knapsack` -- exact 0/1 knapsack on integer costs (dynamic programming over the capacity);
* :func:`choose_upgrades` -- the 16-bit set: knapsack on the noise removed, per output weighted by
  how close that output is to being the worst, re-weighted until the predicted worst output stops
  improving.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

#: capacity units the MAC budget is divided into for the knapsack (costs rounded up: always feasible)
KNAPSACK_UNITS = 4096
#: re-weighting rounds of choose_upgrades (each one knapsack)
ROUNDS = 8


def predicted_nsr(noise: np.ndarray, signal: np.ndarray, eight: np.ndarray,
                  floor: np.ndarray | None = None) -> np.ndarray:
    """Per-output ``nsr[o] = (floor[o] + sum_k eight[k] * noise[k, o]) / signal[o]`` (``eight``: bool per conv)."""
    noise = np.asarray(noise, np.float64)
    total = np.asarray(eight, bool).astype(np.float64) @ noise if noise.size else np.zeros(len(signal))
    if floor is not None:
        total = total + np.asarray(floor, np.float64)
    return total / np.maximum(np.asarray(signal, np.float64), 1e-30)


def sensitivity(noise: np.ndarray, signal: np.ndarray, floor: np.ndarray | None = None) -> np.ndarray:
    """Per conv: ``(max_o nsr_all[o] - max_o nsr_without_k[o]) / max_o nsr_all[o]``, all convs 8-bit.

    The relative drop of the worst output's noise-to-signal ratio when conv ``k`` alone is 16-bit,
    in the additive model (0 when there is no noise).
    """
    noise = np.asarray(noise, np.float64)
    n = noise.shape[0]
    allv = predicted_nsr(noise, signal, np.ones(n, bool), floor)
    worst = float(allv.max()) if allv.size else 0.0
    if worst <= 0 or n == 0:
        return np.zeros(n)
    without = allv[None, :] - noise / np.maximum(np.asarray(signal, np.float64), 1e-30)[None, :]
    return (worst - without.max(axis=1)) / worst


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
    return np.ceil(costs * units / budget - 1e-9).astype(np.int64), units


def choose_upgrades(noise: np.ndarray, signal: np.ndarray, costs: Sequence[int], budget: float,
                    eligible: np.ndarray | None = None, floor: np.ndarray | None = None,
                    rounds: int = ROUNDS) -> frozenset[int]:
    """The convs to make 16-bit (indices into ``noise``'s rows) within ``sum(costs) <= budget``.

    Each round solves a knapsack whose value of conv ``k`` is ``sum_o w[o] * noise[k, o] / signal[o]``,
    ``w`` starting at the worst output of the all-8-bit model and then following each output's
    predicted ``nsr`` (``w[o] = (nsr[o] / max nsr) ** 4``, the outputs near the worst count); the
    choice with the smallest predicted worst ``nsr`` over the rounds wins. ``eligible``: bool per
    conv (the others stay 8-bit).
    """
    noise = np.asarray(noise, np.float64)
    signal = np.asarray(signal, np.float64)
    n = noise.shape[0]
    if n == 0:
        return frozenset()
    eligible = np.ones(n, bool) if eligible is None else np.asarray(eligible, bool)
    icost, cap = scaled_costs(costs, budget)
    rel = noise / np.maximum(signal, 1e-30)[None, :]

    def worst(chosen: frozenset[int]) -> float:
        eight = np.ones(n, bool)
        eight[list(chosen)] = False
        return float(predicted_nsr(noise, signal, eight, floor).max())

    nsr = predicted_nsr(noise, signal, np.ones(n, bool), floor)
    w = (nsr >= nsr.max()).astype(np.float64)
    best: tuple[float, frozenset[int]] = (worst(frozenset()), frozenset())
    seen = set()
    for _ in range(max(1, rounds)):
        values = np.where(eligible, rel @ w, 0.0)
        chosen = knapsack(values, icost, cap)
        if chosen in seen:
            break
        seen.add(chosen)
        score = worst(chosen)
        if score < best[0] or (score == best[0] and not best[1]):
            best = (score, chosen)
        eight = np.ones(n, bool)
        eight[list(chosen)] = False
        nsr = predicted_nsr(noise, signal, eight, floor)
        top = float(nsr.max())
        if top <= 0:
            break
        w = (nsr / top) ** 4
    return best[1]
