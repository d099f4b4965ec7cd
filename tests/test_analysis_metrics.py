"""analysis.metrics: cosine, SQNR, MSE, max |error| and the range-relative errors, against naive formulas."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from calibrator_custom.analysis.metrics import ErrorAccumulator, Metrics, compare, sqnr_db

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)
vectors = st.integers(1, 40).flatmap(lambda n: st.tuples(arrays(np.float32, n, elements=finite),
                                                          arrays(np.float32, n, elements=finite)))


def _naive(r: np.ndarray, t: np.ndarray) -> dict:
    r, t = r.astype(np.float64).ravel(), t.astype(np.float64).ravel()
    e = t - r
    span = r.max() - r.min()
    with np.errstate(divide="ignore", invalid="ignore"):  # the degenerate cases are checked apart
        return {"sqnr": 10 * np.log10(np.dot(r, r) / np.dot(e, e)), "mse": np.mean(e * e), "max_abs": np.abs(e).max(),
                "cos": np.dot(r, t) / (np.linalg.norm(r) * np.linalg.norm(t)), "span": span}


def test_hand_computed_case():
    r = np.array([1.0, -2.0, 3.0, 0.0])
    t = np.array([1.5, -2.0, 2.0, 0.0])  # e = (0.5, 0, -1, 0)
    m = compare(r, t)
    assert isinstance(m, Metrics) and m.count == 4
    assert m.sqnr_db == pytest.approx(10 * math.log10(14 / 1.25))
    assert m.mse == pytest.approx(1.25 / 4)
    assert m.max_abs == pytest.approx(1.0)
    assert m.rel_max_abs == pytest.approx(1.0 / 5.0)  # range 3 - (-2)
    assert m.rel_rmse == pytest.approx(math.sqrt(1.25 / 4) / 5.0)
    assert m.cosine == pytest.approx((1.5 + 4 + 6) / (math.sqrt(14) * math.sqrt(2.25 + 4 + 4)))
    assert (m.float_min, m.float_max) == (-2.0, 3.0)


@given(vectors)
def test_metrics_match_naive_formulas(pair):
    r, t = pair
    m = compare(r, t)
    n = _naive(r, t)
    assert m.count == r.size
    assert m.mse == pytest.approx(n["mse"], rel=1e-9, abs=1e-12)
    assert m.max_abs == pytest.approx(n["max_abs"], rel=1e-12, abs=0)
    assert -1.0 <= m.cosine <= 1.0
    r64, t64 = r.astype(np.float64), t.astype(np.float64)
    if np.dot(r64, r64) > 0 and np.dot(t64, t64) > 0:
        assert m.cosine == pytest.approx(np.clip(n["cos"], -1, 1), rel=1e-9, abs=1e-12)
    if np.dot(r64, r64) > 0 and n["max_abs"] > 0:
        assert m.sqnr_db == pytest.approx(n["sqnr"], rel=1e-9, abs=1e-9)
    if n["span"] > 0:
        assert m.rel_max_abs == pytest.approx(n["max_abs"] / n["span"], rel=1e-12, abs=0)


@given(vectors, st.floats(1e-3, 1e3))
def test_scaling_both_keeps_sqnr_cosine_and_relative_errors(pair, c):
    r, t = (x.astype(np.float64) for x in pair)
    a, b = compare(r, t), compare(c * r, c * t)
    for k in ("sqnr_db", "cosine", "rel_max_abs", "rel_rmse"):
        va, vb = getattr(a, k), getattr(b, k)
        assert va == vb or va == pytest.approx(vb, rel=1e-7, abs=1e-9), k
    assert b.mse == pytest.approx(c * c * a.mse, rel=1e-7, abs=1e-300)


@given(st.lists(vectors, min_size=1, max_size=5))
def test_pooling_samples_equals_one_concatenated_call(pairs):
    acc = ErrorAccumulator()
    for r, t in pairs:
        acc.add(r, t)
    pooled = acc.result()
    whole = compare(np.concatenate([r for r, _ in pairs]), np.concatenate([t for _, t in pairs]))
    assert pooled.count == whole.count
    for k in ("sqnr_db", "cosine", "mse", "max_abs", "rel_max_abs", "rel_rmse", "float_min", "float_max"):
        va, vb = getattr(pooled, k), getattr(whole, k)
        assert va == vb or va == pytest.approx(vb, rel=1e-9, abs=1e-12), k


@given(vectors)
def test_never_nan_and_json_round_trip(pair):
    for r, t in (pair, (np.zeros_like(pair[0]), pair[1]), (pair[0], pair[0]), (np.zeros(3), np.zeros(3))):
        m = compare(r, t)
        assert not any(isinstance(v, float) and math.isnan(v) for v in m.to_dict().values())
        text = json.dumps({k: (repr(v) if isinstance(v, float) and math.isinf(v) else v)
                           for k, v in m.to_dict().items()})
        back = Metrics.from_dict({k: (float(v) if isinstance(v, str) else v) for k, v in json.loads(text).items()})
        assert back == m


def test_exact_and_degenerate_cases():
    x = np.array([0.5, -1.0, 2.0])
    same = compare(x, x)
    assert same.sqnr_db == math.inf and same.cosine == 1.0 and same.mse == 0.0 and same.rel_max_abs == 0.0
    zero_ref = compare(np.zeros(3), x)
    assert zero_ref.sqnr_db == -math.inf and zero_ref.cosine == 0.0 and zero_ref.rel_max_abs == math.inf
    both_zero = compare(np.zeros(3), np.zeros(3))
    assert both_zero.sqnr_db == math.inf and both_zero.cosine == 1.0
    assert compare(np.zeros(0), np.zeros(0)) is None
    assert ErrorAccumulator().result() is None
    assert sqnr_db(1.0, 0.0) == math.inf and sqnr_db(0.0, 1.0) == -math.inf and sqnr_db(100.0, 1.0) == 20.0


def test_test_value_broadcasts_to_the_reference_shape():
    r = np.arange(6, dtype=np.float64).reshape(2, 3)
    m = compare(r, np.float64(1.0))
    assert m.count == 6 and m.max_abs == 4.0


def test_pooled_sqnr_db_sums_energies_over_samples():
    from calibrator_custom.analysis import pooled_sqnr_db

    refs = [np.array([3.0, 4.0]), np.array([0.0])]  # signal energy 25
    tests = [np.array([3.0, 3.0]), np.array([2.0])]  # noise energy 1 + 4 = 5
    assert pooled_sqnr_db(refs, tests) == pytest.approx(10 * np.log10(25 / 5))
    assert pooled_sqnr_db(refs, refs) == float("inf")
    with pytest.raises(ValueError, match="2 reference"):
        pooled_sqnr_db(refs, tests[:1])
