"""The array roundings are their definitions bit for bit (signed zeros, halves, NaN, infinities), as floats of
the input's precision, and the scalar forms agree with them; the per-channel weight codes (ChannelCodes)
equal the dense rounding."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from calibrator_custom.rounding import round_half_away, round_half_away_int, round_half_up, round_half_up_int

SPECIALS = [0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994, -0.49999999999999994, 0.2, -0.2,
            1e300, -1e300, np.inf, -np.inf, np.nan, 5e-324, -5e-324]


def _values(dtype):
    rng = np.random.default_rng(3)
    with np.errstate(over="ignore"):
        return np.concatenate([SPECIALS, rng.normal(0, 100, 5000), np.round(rng.normal(0, 50, 2000)) + 0.5,
                               rng.normal(0, 1, 1000)]).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_half_away_is_sign_times_floor_of_magnitude_plus_half(dtype):
    x = _values(dtype)
    got = round_half_away(x)
    want = np.sign(x) * np.floor(np.abs(x) + 0.5)
    assert got.dtype == want.dtype == dtype
    assert got.tobytes() == want.tobytes()
    assert x.tobytes() == _values(dtype).tobytes(), "the input is left as it was"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_half_up_is_floor_of_value_plus_half(dtype):
    x = _values(dtype)
    got = round_half_up(x)
    assert got.dtype == dtype and got.tobytes() == np.floor(x + 0.5).tobytes()


def test_integer_arrays_and_scalars():
    xi = np.arange(-5, 6).reshape(1, 11)
    assert round_half_away(xi).dtype == np.float64 and round_half_away(xi).tolist() == [list(range(-5, 6))]
    assert round_half_up(xi).tolist() == [list(range(-5, 6))]
    for v in (2.5, -2.5, -0.5, 0.5, 0.49999999999999994, 7.0):
        assert round_half_away(v) == round_half_away_int(v) and isinstance(round_half_away(v), np.floating)
        assert round_half_up(v) == round_half_up_int(v)
    assert np.signbit(round_half_away(-0.2)) and not np.signbit(round_half_away(-0.0))
    assert round_half_away(np.array(-1.5)) == -2.0 and round_half_up(np.float32(-1.5)) == -1.0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), density=st.sampled_from([0.0, 0.03, 0.2, 0.6, 1.0]),
       axis=st.integers(0, 3), qmax=st.sampled_from([127, 32767]))
def test_channel_codes_equal_the_dense_rounding_sparse_or_not(seed, density, axis, qmax):
    """channel_codes (computed on the non-zero weights when they are few) equals clip(round_half_away(w / s_c))
    over the whole array, per channel along ``axis``, signed zeros and clipped codes included."""
    from calibrator_custom.rounding import channel_codes, round_half_away

    r = np.random.default_rng(seed)
    shape = tuple(int(v) for v in r.integers(1, 8, 4))
    w = r.normal(0, 1, shape) * (r.random(shape) < density)
    w[r.random(shape) < 0.05] = -0.0
    s = r.uniform(0.0005, 0.05, shape[axis])
    want = np.moveaxis(np.clip(round_half_away(np.moveaxis(w, axis, -1) / s), -qmax, qmax), -1, axis)
    got = channel_codes(w, axis, s, qmax)
    assert got.shape == w.shape and got.dtype == np.float64
    np.testing.assert_array_equal(got, want)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), density=st.sampled_from([0.0, 0.03, 0.2, 1.0]), axis=st.sampled_from([0, 3]))
def test_channel_code_sums_equal_the_codes_summed(seed, density, axis):
    """ChannelCodes.channel_sums: per channel along ``axis`` the sum of ``codes`` (an int64 sum as reference),
    for several scale vectors of the same weights."""
    from calibrator_custom.rounding import ChannelCodes

    r = np.random.default_rng(seed)
    shape = tuple(int(v) for v in r.integers(1, 8, 4))
    w = r.normal(0, 1, shape) * (r.random(shape) < density)
    cc = ChannelCodes(w, axis, 127)
    for _ in range(3):
        s = r.uniform(0.001, 0.05, shape[axis])
        q = cc.codes(s).astype(np.int64)
        want = np.moveaxis(q, axis, -1).reshape(-1, shape[axis]).sum(0)
        got = cc.channel_sums(s)
        assert got.shape == (shape[axis],) and got.dtype == np.float64
        np.testing.assert_array_equal(got, want)
