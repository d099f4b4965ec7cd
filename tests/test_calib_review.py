"""Calibration data review: a tensor without a finite range is refused, a far-off sample is warned about."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibrator_custom.calib import StatsError, StatsSet, collect_stats, collect_stats_arrays
from calibrator_custom.calib.stats import SampleLog, TensorStats
from calibrator_custom.pipeline.convert import convert
from calibrator_custom.calib.review import RANGE_LIMIT
from calibrator_custom.calib.review import OUTLIER_FACTOR, OUTLIER_MIN_VALUES, check_ranges, warn_outlier_samples
from test_pipeline_convert import MEAN, STD, _ini, _small_net

SHAPE = (1, 12, 12, 3)


def load_npy(path) -> np.ndarray:
    return np.load(path)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    d = tmp_path_factory.mktemp("review")
    model = _small_net(d / "net_float.sim")
    rng = np.random.default_rng(3)
    pixels = [rng.integers(0, 256, SHAPE).astype(np.float32) for _ in range(8)]
    return d, model, [(p - MEAN) / STD for p in pixels]


def _save(d, name, x) -> str:
    path = d / f"{name}.npy"
    np.save(path, np.asarray(x, np.float32))
    return str(path)


def _far(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "far outside" in r.getMessage()]


# ------------------------------------------------------------------------------------------ end to end
def test_all_nan_samples_are_refused_naming_tensor_and_image(net, tmp_path, caplog):
    d, model, _ = net
    paths = [_save(tmp_path, f"nan{k}", np.full(SHAPE, np.nan)) for k in range(3)]
    stats = collect_stats(model, paths, load_npy)
    assert stats.tensors["img"].num_finite == 0  # the statistics themselves only count the NaNs
    out = tmp_path / "nan_fixed.sim"
    with pytest.raises(StatsError, match=r"calibration gave tensor 'img' no finite value: all its values were NaN "
                                         r"or inf in all 3 sample\(s\) \(in image '.*nan0\.npy'\)"):
        convert(model, _ini(tmp_path / "c.ini"), stats, quant_level="L2", output_path=out)
    assert not out.exists() and list(tmp_path.glob("*.sim")) == []


def test_a_huge_sample_is_warned_about_and_its_range_refused(net, tmp_path, caplog):
    d, model, feeds = net
    paths = [_save(tmp_path, f"ok{k}", x) for k, x in enumerate(feeds)]
    paths[5] = _save(tmp_path, "huge", np.full(SHAPE, 1e30))
    stats = collect_stats(model, paths, load_npy)
    out = tmp_path / "huge_fixed.sim"
    with caplog.at_level(logging.WARNING):
        with pytest.raises(StatsError, match=r"calibration gave tensor 'img' the range \[-1, 1e\+30\] \(in image "
                                             r"'.*huge\.npy'\), beyond \+-1e\+20"):
            convert(model, _ini(tmp_path / "c.ini"), stats, quant_level="L2", output_path=out)
    far = _far(caplog)
    assert len(far) == 1 and "huge.npy" in far[0] and "tensor 'img'" in far[0], far
    assert not out.exists()


def test_a_far_off_sample_within_the_limit_warns_and_still_converts(net, tmp_path, caplog):
    d, model, feeds = net
    samples = [[f] for f in feeds]
    samples[2] = [feeds[2] * 1000]  # an input 1000 times larger than the others
    stats = collect_stats_arrays(model, samples)
    out = tmp_path / "far_fixed.sim"
    with caplog.at_level(logging.WARNING):
        convert(model, _ini(tmp_path / "c.ini"), stats, quant_level="L2", output_path=out)
    far = _far(caplog)
    assert len(far) == 1 and far[0].startswith("calibration sample #2 is far outside"), far
    assert out.exists()


def test_ordinary_calibration_data_gives_no_warning(net, tmp_path, caplog):
    d, model, feeds = net
    with caplog.at_level(logging.WARNING):
        convert(model, _ini(tmp_path / "c.ini"), collect_stats_arrays(model, feeds), quant_level="L2",
                output_path=tmp_path / "ok_fixed.sim")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_the_review_does_not_depend_on_num_process(net, tmp_path):
    d, model, feeds = net
    paths = [_save(tmp_path, f"s{k}", x * (500 if k in (1, 6) else 1)) for k, x in enumerate(feeds)]
    one = collect_stats(model, paths, load_npy, num_process=1)
    two = collect_stats(model, paths, load_npy, num_process=2)
    assert one == two
    assert one.samples.labels == two.samples.labels == tuple(f"image {p!r}" for p in paths)
    flagged = warn_outlier_samples(one)
    assert flagged == warn_outlier_samples(two) == [f"image {paths[1]!r}", f"image {paths[6]!r}"]


def test_a_sample_with_some_nan_values_is_named_and_left_out(net, tmp_path, caplog):
    d, model, feeds = net
    bad = feeds[4].copy()
    bad[0, 0, 0, 0] = np.nan
    paths = [_save(tmp_path, f"p{k}", bad if k == 4 else x) for k, x in enumerate(feeds)]
    with caplog.at_level(logging.WARNING):
        stats = collect_stats(model, paths, load_npy)
    nan = [r.getMessage() for r in caplog.records if "NaN or infinite" in r.getMessage()]
    assert nan and nan[0].startswith(f"tensor 'img' has 1 NaN or infinite values in image {paths[4]!r}"), nan
    assert stats.tensors["img"].num_nan == 1 and np.isfinite(stats.tensors["img"].max)
    check_ranges(stats)  # the finite values still give every tensor a finite range


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # numpy on inf * 0 in the run
def test_statistics_from_a_file_are_checked_without_image_names(net, tmp_path):
    d, model, _ = net
    stats = collect_stats_arrays(model, [[np.full(SHAPE, np.inf, np.float32)]] * 2)
    stats.save(tmp_path / "s.npz")
    loaded = StatsSet.load(tmp_path / "s.npz")
    assert loaded.samples is None and loaded == stats
    with pytest.raises(StatsError, match=r"tensor 'img' no finite value: all its values were NaN or inf in all "
                                         r"2 sample\(s\); its range"):
        check_ranges(loaded)


# ------------------------------------------------------------------------------------------ the definition
def _log(values) -> StatsSet:
    a = np.asarray(values, np.float64)
    return StatsSet(samples=SampleLog(tuple(f"s{k}" for k in range(a.size)), {"t": a}, {}))


@pytest.mark.parametrize("values, flagged", [
    ([1.0, 2.0, 1.5, 176.0], ["s3"]),  # median 1.75: 176 > 100 * 1.75
    ([1.0, 2.0, 1.5, 174.0], []),  # 174 < 175
    ([1.0, 1.0, 500.0, 1.0, 800.0, 1.0, 1.0], ["s2", "s4"]),  # two outliers do not move the median
    ([1.0, 300.0], []),  # too few samples to judge
    ([0.0, 0.0, 0.0, 5.0], []),  # median 0: no scale to judge by
    ([1.0, np.nan, 1.0, 1e6], ["s3"]),  # a sample without finite values is left out of the median
])
def test_far_means_more_than_100_times_the_median(values, flagged):
    assert OUTLIER_FACTOR == 100
    assert warn_outlier_samples(_log(values)) == flagged


def test_tensors_of_few_values_are_not_judged():
    """A score (one value per sample) may rightly vary by orders of magnitude between images."""
    values = np.array([0.001, 0.0015, 0.002, 0.0012, 0.9])
    score = TensorStats.from_array("t", 0, np.zeros((1, 1), np.float32))
    samples = SampleLog(tuple(f"s{k}" for k in range(5)), {"t": values}, {})
    assert warn_outlier_samples(StatsSet({"t": score}, samples=samples)) == []
    big = TensorStats.from_array("t", 0, np.zeros((1, OUTLIER_MIN_VALUES), np.float32))
    assert warn_outlier_samples(StatsSet({"t": big}, samples=samples)) == ["s4"]


@given(st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=3, max_size=30),
       st.floats(min_value=1e-6, max_value=1e6))
def test_the_outlier_test_does_not_depend_on_the_unit(values, scale):
    base = set(warn_outlier_samples(_log(values)))
    scaled = set(warn_outlier_samples(_log(np.asarray(values) * scale)))
    a = np.asarray(values)
    borderline = np.isclose(a, OUTLIER_FACTOR * np.median(a), rtol=1e-9)
    assert base ^ scaled <= {f"s{k}" for k in np.flatnonzero(borderline)}


def test_sample_logs_merge_in_order_with_shifted_indices():
    a = SampleLog(("x", None), {"t": np.array([1.0, 2.0])}, {"t": 1})
    b = SampleLog((None, "z", "w"), {"t": np.array([3.0, 4.0, 5.0]), "u": np.array([6.0, 7.0, 8.0])}, {"t": 0, "u": 2})
    m = a.merge(b)
    assert m.labels == ("x", None, None, "z", "w")
    assert [m.label(s) for s in range(5)] == ["x", "sample #1", "sample #2", "z", "w"]
    assert np.array_equal(m.abs_max["t"], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert np.array_equal(m.abs_max["u"], [np.nan, np.nan, 6.0, 7.0, 8.0], equal_nan=True)
    assert m.first_nonfinite == {"t": 1, "u": 4}


def test_the_range_limit_keeps_products_of_two_scales_finite_in_float32():
    step = 2 * RANGE_LIMIT / 255  # the coarsest scale a range within the limit can give (UINT8)
    assert np.isfinite(np.float32(step) * np.float32(step))
