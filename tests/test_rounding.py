"""The array roundings are their definitions bit for bit (signed zeros, halves, NaN, infinities), as floats of
the input's precision, and the scalar forms agree with them."""
from __future__ import annotations

import numpy as np
import pytest

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
