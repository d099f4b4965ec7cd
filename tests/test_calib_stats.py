"""Collector, TensorStats / WeightStats / StatsSet: values vs numpy, merging, .npz round trip, min/max log."""
from __future__ import annotations

import logging
import os
import re
import zipfile

import numpy as np
import pytest
from hypothesis import given, strategies as st

from calibrator_custom import float_simulator
from calibrator_custom.calib import (Collector, CollectConfig, Histogram, StatsError, StatsSet, TensorStats,
                                     channel_min_max, format_tensor_min_max, model_sha256, weight_stats,
                                     write_tensor_min_max)
from calibrator_custom.calib.stats import FORMAT_VERSION
from calibrator_custom.interpreter import Interpreter
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import Model, load_model
from conftest import MODELS_DIR, require_shared

RNG = np.random.default_rng(7)
W_CONV = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
W_DW = RNG.standard_normal((1, 3, 3, 4)).astype(np.float32)
W_FC = RNG.standard_normal((5, 64)).astype(np.float32)
BIAS = RNG.standard_normal(4).astype(np.float32)
ADD_C = RNG.standard_normal(4).astype(np.float32)


def small_model() -> Model:
    """x -> CONV_2D -> RELU -> DEPTHWISE_CONV_2D -> ADD(const) -> RESHAPE -> FULLY_CONNECTED."""
    b = ModelBuilder()
    x = b.input("x", (1, 6, 6, 3))
    y = b.op("CONV_2D", [x, b.constant("w", W_CONV), b.constant("b", BIAS)],
             {"padding": "SAME", "stride_w": 1, "stride_h": 1}, name="conv")
    r = b.op("RELU", [y], name="relu")
    d = b.op("DEPTHWISE_CONV_2D", [r, b.constant("dw_w", W_DW), b.constant("dw_b", np.zeros(4, np.float32))],
             {"padding": "VALID", "stride_w": 1, "stride_h": 1, "depth_multiplier": 1}, name="dw")
    a = b.op("ADD", [d, b.constant("c", ADD_C)], {"fused_activation_function": "NONE"}, name="add")
    f = b.op("RESHAPE", [a, b.constant("shape", np.array([1, 64], np.int32))], {"new_shape": [1, 64]}, name="flat")
    b.output(b.op("FULLY_CONNECTED", [f, b.constant("fc_w", W_FC), b.constant("fc_b", np.zeros(5, np.float32))],
                  {}, name="fc"))
    return b.build()


@pytest.fixture(scope="module")
def model() -> Model:
    return small_model()


def feeds(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((1, 6, 6, 3)) * (k + 1)).astype(np.float32) for k in range(n)]


def collect(model: Model, xs, num_bins: int = 2048) -> Collector:
    c = Collector(num_bins)
    interp = Interpreter(model)
    for x in xs:
        interp.run([x], observers=[c.observe])
    return c


def stacked_activations(model: Model, xs) -> dict[str, np.ndarray]:
    """name -> values of every run stacked on a new axis 0 (independent of the collector)."""
    interp = Interpreter(model)
    runs = [interp.run([x], keep="all") for x in xs]
    g = model.main
    return {g.tensors[i].name: np.stack([r[i] for r in runs]) for i in runs[0]
            if i not in interp.constants and runs[0][i].dtype.kind == "f"}


# ------------------------------------------------------------------ channel_min_max
@given(st.lists(st.one_of(st.floats(width=32, allow_nan=False, allow_infinity=False),
                          st.sampled_from([np.nan, np.inf, -np.inf, -0.0])), min_size=6, max_size=6 * 9),
       st.sampled_from([1, 2, 3, 6]))
def test_channel_min_max_matches_numpy_on_finite_values(values, channels):
    n = len(values) // channels * channels
    x = np.array(values[:n], np.float32).reshape(-1, channels)
    cmin, cmax, nan, inf = channel_min_max(x)
    assert cmin.shape == (channels,) and cmin.dtype == np.float64 and cmax.dtype == np.float64
    finite = np.isfinite(x)
    assert nan == np.isnan(x).sum() and inf == np.isinf(x).sum()
    for c in range(channels):
        col = x[finite[:, c], c]
        want_min = col.min() if col.size else np.inf
        want_max = col.max() if col.size else -np.inf
        assert cmin[c] == want_min and cmax[c] == want_max
        assert not (cmin[c] == 0 and np.signbit(cmin[c]))  # -0.0 is stored as +0.0


def test_channel_min_max_blocked_reduction_matches_numpy():
    for shape in [(1, 128, 128, 3), (1, 5, 7, 3), (1, 896, 16), (2, 3), (7,), ()]:
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        cmin, cmax, _, _ = channel_min_max(x)
        rows = x.reshape(-1, shape[-1] if shape else 1)
        np.testing.assert_array_equal(cmin, rows.min(axis=0))
        np.testing.assert_array_equal(cmax, rows.max(axis=0))


# ------------------------------------------------------------------ collector vs numpy
def test_collector_matches_numpy_on_stacked_activations(model):
    xs = feeds(4)
    stats = collect(model, xs).finalize()
    ref = stacked_activations(model, xs)
    assert set(stats.tensors) == set(ref) == {"x", "conv", "relu", "dw", "add", "flat", "fc"}
    assert stats.num_samples == 4
    for name, v in ref.items():
        t = stats.tensors[name]
        assert t.shape == v.shape[1:] and t.num_samples == 4
        assert t.channel_min.shape == (v.shape[-1],) and t.channel_min.dtype == np.float64
        assert t.min == v.min() and t.max == v.max()
        np.testing.assert_array_equal(t.channel_min, v.reshape(-1, v.shape[-1]).min(axis=0))
        np.testing.assert_array_equal(t.channel_max, v.reshape(-1, v.shape[-1]).max(axis=0))
        assert t.num_finite == v.size and t.num_nan == t.num_inf == 0
        assert t.histogram == Histogram.from_values(v)  # streaming == one pass over all runs


def test_collector_state_is_fixed_size(model):
    c = Collector(num_bins=64)
    interp = Interpreter(model)
    for x in feeds(20):
        interp.run([x], observers=[c.observe])
    for t in c.tensor_stats().values():
        assert len(t.histogram.counts) <= 64 and t.channel_min.size == t.shape[-1]


@pytest.mark.parametrize("n", [3, 8, 13])
def test_collector_logs_the_first_samples_extremes_one_by_one(model, n):
    """The per-sample log: each tensor's per-channel extremes of the first FIRST_SAMPLES_KEPT samples row by
    row, the later samples' merged (+inf / -inf when there are none), against numpy on each run; the same
    after merging shards in order; fixed size whatever the number of samples."""
    from calibrator_custom.calib.stats import FIRST_SAMPLES_KEPT

    xs = feeds(n, seed=11)
    ref = stacked_activations(model, xs)
    whole = collect(model, xs).finalize(model_sha256="abc")
    cut = [0, 1, min(5, n), n]
    shards = [collect(model, xs[i:j]).finalize(model_sha256="abc") for i, j in zip(cut, cut[1:]) if j > i]
    merged = shards[0]
    for sh in shards[1:]:
        merged = merged.merge(sh)
    k = min(n, FIRST_SAMPLES_KEPT)
    for stats in (whole, merged):
        assert set(stats.samples.extremes) == set(ref)
        for name, v in ref.items():
            ext = stats.samples.extremes[name]
            rows = v.reshape(n, -1, v.shape[-1])
            assert ext.first_min.shape == ext.first_max.shape == (k, v.shape[-1])
            assert ext.later_min.shape == (v.shape[-1],) and ext.first_min.dtype == np.float64
            np.testing.assert_array_equal(ext.first_min, rows[:k].min(axis=1))
            np.testing.assert_array_equal(ext.first_max, rows[:k].max(axis=1))
            later = rows[k:].reshape(-1, v.shape[-1])
            np.testing.assert_array_equal(ext.later_min, later.min(axis=0) if later.size else np.inf)
            np.testing.assert_array_equal(ext.later_max, later.max(axis=0) if later.size else -np.inf)


@given(st.lists(st.integers(0, 6), min_size=1, max_size=5), st.integers(0, 2**31 - 1))
def test_sample_extremes_merge_in_order_is_one_pass(sizes, seed):
    """SampleExtremes: merging consecutive runs of samples in order (any cut) equals adding them one by one,
    and holds the first rows as given and the later ones' min / max (hand-made per-sample extremes)."""
    from calibrator_custom.calib.stats import FIRST_SAMPLES_KEPT, SampleExtremes

    r = np.random.default_rng(seed)
    total = sum(sizes)
    lo = r.normal(size=(max(total, 1), 3))
    hi = lo + r.uniform(0, 2, lo.shape)

    def run(a, b):
        ext = SampleExtremes.of_sample(lo[a], hi[a])
        for s in range(a + 1, b):
            ext = ext.add(lo[s], hi[s])
        return ext

    parts, start = [], 0
    for size in sizes:
        if size:
            parts.append(run(start, start + size))
        start += size
    if not parts:
        return
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.merge(p)
    k = min(total, FIRST_SAMPLES_KEPT)
    np.testing.assert_array_equal(merged.first_min, lo[:k])
    np.testing.assert_array_equal(merged.first_max, hi[:k])
    np.testing.assert_array_equal(merged.later_min, lo[k:total].min(axis=0) if total > k else np.inf)
    np.testing.assert_array_equal(merged.later_max, hi[k:total].max(axis=0) if total > k else -np.inf)
    one = run(0, total)
    for a, b in ((merged.first_min, one.first_min), (merged.later_max, one.later_max)):
        np.testing.assert_array_equal(a, b)


def test_collector_ignores_non_float_and_counts_non_finite(caplog):
    c = Collector()
    c.observe(0, "ints", np.arange(5, dtype=np.int32))
    bad = np.array([[1.0, np.nan], [np.inf, -2.0]], np.float32)
    with caplog.at_level(logging.WARNING, logger="calibrator_custom.calib"):
        c.observe(1, "t", bad)
        c.observe(1, "t", bad)
    assert "ints" not in c.tensor_stats()
    t = c.tensor_stats()["t"]
    assert (t.num_nan, t.num_inf, t.num_finite, t.num_samples) == (2, 2, 4, 2)
    assert (t.min, t.max) == (-2.0, 1.0)
    np.testing.assert_array_equal(t.channel_min, [1.0, -2.0])
    assert len([r for r in caplog.records if "'t'" in r.getMessage()]) == 1  # warned once


def test_duplicate_tensor_names_are_kept_apart(caplog):
    c = Collector()
    c.observe(3, "same", np.ones(2, np.float32))
    c.observe(5, "same", np.zeros(2, np.float32))
    assert set(c.tensor_stats()) == {"same", "same#5"}
    assert c.tensor_stats()["same#5"].max == 0.0


def test_changing_shape_is_an_error():
    c = Collector()
    c.observe(0, "t", np.ones((1, 2), np.float32))
    with pytest.raises(StatsError, match=r"'t'.*\[1, 2\].*\[1, 3\]"):
        c.observe(0, "t", np.ones((1, 3), np.float32))


# ------------------------------------------------------------------ weights
def test_weight_stats_axes_and_values(model):
    ws = weight_stats(model)
    assert set(ws) == {"w", "b", "dw_w", "dw_b", "c", "fc_w", "fc_b"}  # the int32 shape is not a float
    cases = {"w": (W_CONV, 0), "dw_w": (W_DW, 3), "fc_w": (W_FC, 0), "b": (BIAS, 0), "c": (ADD_C, 0)}
    for name, (value, axis) in cases.items():
        w = ws[name]
        assert w.axis == axis and w.shape == value.shape
        other = tuple(a for a in range(value.ndim) if a != axis)
        np.testing.assert_array_equal(w.channel_min, value.min(axis=other))
        np.testing.assert_array_equal(w.channel_max, value.max(axis=other))
        assert (w.min, w.max) == (value.min(), value.max())


def test_weight_stats_of_fp16_and_sparse_models_use_folded_constants():
    require_shared()
    for name in ("face_detection_short_range", "pose_detection"):
        dense = weight_stats(load_model(MODELS_DIR / f"{name}.tflite"))
        packed = weight_stats(load_model(MODELS_DIR / f"{name}.fp16.tflite"))
        assert len(packed) == len(dense)
        by_shape = sorted((w.shape, w.min, w.max) for w in dense.values())
        assert sorted((w.shape, w.min, w.max) for w in packed.values()) == by_shape


# ------------------------------------------------------------------ StatsSet merge
def test_stats_set_merge_is_exact_associative_and_commutative(model):
    xs = feeds(6, seed=3)
    whole = collect(model, xs).finalize(model_sha256="abc", model_name="m.tflite")
    a, b, c = (collect(model, xs[i:j]).finalize(model_sha256="abc", model_name="m.tflite")
               for i, j in ((0, 1), (1, 4), (4, 6)))
    assert a.merge(b).merge(c) == whole
    assert a.merge(b.merge(c)) == whole
    assert c.merge(a).merge(b) == whole
    assert b.merge(a) == a.merge(b)


def test_stats_set_merge_refuses_other_models_and_configs(model):
    s = collect(model, feeds(1)).finalize(model_sha256="aaa", model_name="one.tflite")
    t = collect(model, feeds(1)).finalize(model_sha256="bbb", model_name="two.tflite")
    with pytest.raises(StatsError, match="one.tflite.*two.tflite"):
        s.merge(t)
    u = collect(model, feeds(1), num_bins=16).finalize(model_sha256="aaa")
    with pytest.raises(StatsError, match="num_bins"):
        s.merge(u)


def test_tensor_stats_merge_refuses_other_shapes():
    a = TensorStats.from_array("t", 0, np.ones((2, 3), np.float32))
    b = TensorStats.from_array("t", 0, np.ones((3, 3), np.float32))
    with pytest.raises(StatsError, match="'t'"):
        a.merge(b)


# ------------------------------------------------------------------ save / load
def full_set(model: Model, tmp_path) -> tuple[StatsSet, str]:
    path = tmp_path / "small.tflite"
    model.save(path)
    c = collect(model, feeds(3))
    c.observe(99, "with_nan", np.array([np.nan, 1.0, -np.inf], np.float32))
    c.observe(98, "empty", np.zeros((0, 4), np.float32))
    return c.finalize(model_sha256=model_sha256(path), model_name=path.name,
                      weights=weight_stats(model)), str(path)


def test_save_load_round_trip_is_identical(model, tmp_path):
    stats, mpath = full_set(model, tmp_path)
    out = tmp_path / "stats.npz"
    stats.save(out)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp_")]  # atomic: no temporary left
    back = StatsSet.load(out, model=mpath)
    assert back == stats
    assert list(back.tensors) == list(stats.tensors) and list(back.weights) == list(stats.weights)
    assert back.tensors["with_nan"].num_nan == 1 and back.tensors["empty"].histogram.is_empty
    with np.load(out, allow_pickle=False) as z:  # plain arrays only
        assert int(z["format_version"]) == FORMAT_VERSION
        assert all(z[k].dtype != object for k in z.files)


def test_load_for_another_model_names_both(model, tmp_path):
    stats, _ = full_set(model, tmp_path)
    out = tmp_path / "stats.npz"
    stats.save(out)
    other = tmp_path / "other.tflite"
    other.write_bytes(b"not the same model")
    with pytest.raises(StatsError) as e:
        StatsSet.load(out, model=other)
    msg = str(e.value)
    assert "stats.npz" in msg and "other.tflite" in msg and "small.tflite" in msg and stats.model_sha256 in msg


def test_load_rejects_missing_corrupt_and_future_files(model, tmp_path):
    with pytest.raises(StatsError, match="does not exist"):
        StatsSet.load(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"garbage")
    with pytest.raises(StatsError, match="junk.npz"):
        StatsSet.load(junk)
    stats, _ = full_set(model, tmp_path)
    good = tmp_path / "good.npz"
    stats.save(good)
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    future = tmp_path / "future.npz"
    np.savez(future, **{**arrays, "format_version": np.array(FORMAT_VERSION + 1, np.int64)})
    with pytest.raises(StatsError, match="format version"):
        StatsSet.load(future)
    cut = tmp_path / "cut.npz"
    np.savez(cut, **{**arrays, "act_counts": arrays["act_counts"][:-1]})
    with pytest.raises(StatsError, match="cut.npz.*act_counts"):
        StatsSet.load(cut)
    with zipfile.ZipFile(tmp_path / "nohdr.npz", "w") as zf:
        zf.writestr("x.npy", b"")
    with pytest.raises(StatsError):
        StatsSet.load(tmp_path / "nohdr.npz")


def test_collect_config_validates_num_bins():
    with pytest.raises(StatsError, match="num_bins"):
        CollectConfig(0)


# ------------------------------------------------------------------ tensor_min_max.txt
def test_tensor_min_max_file_format(model, tmp_path):
    xs = feeds(2)
    stats = collect(model, xs).finalize()
    path = tmp_path / "log" / "tensor_min_max.txt"
    path.parent.mkdir()
    write_tensor_min_max(stats, path)
    text = path.read_text()
    assert text == format_tensor_min_max(stats)
    lines = text.splitlines()
    ref = stacked_activations(model, xs)
    assert [ln.split(",")[0] for ln in lines] == ["x", "conv", "relu", "dw", "add", "flat", "fc"]  # model order
    for ln in lines:
        m = re.fullmatch(r"(.+), min: (-?\d+\.\d{6}), max: (-?\d+\.\d{6});", ln)
        assert m, ln
        v = ref[m.group(1)]
        assert m.group(2) == "%06f" % v.min() and m.group(3) == "%06f" % v.max()


# ------------------------------------------------------------------ real model
@pytest.mark.slow
def test_real_model_on_three_photos_matches_numpy():
    require_shared()
    from images import calibration_images, model_input

    name = "face_detection_short_range"
    path = MODELS_DIR / f"{name}.tflite"
    sim = float_simulator(path)
    shape = tuple(sim.get_input_details()[0]["shape"])
    c = Collector()
    sim.add_observer(c.observe)
    kept: dict[str, list[np.ndarray]] = {}
    constants = Interpreter(sim.model_obj).constants
    activations = [t.name for i, t in enumerate(sim.model_obj.main.tensors)
                   if t.dtype == "FLOAT32" and i not in constants]
    for img in calibration_images()[:3]:
        sim.set_input(0, model_input(img, shape, name))
        sim.invoke(keep="all")
        for tname in activations:
            kept.setdefault(tname, []).append(sim.get_tensor(tname))
    stats = c.finalize()
    assert stats.num_samples == 3 and set(stats.tensors) == set(kept)
    for tname, vals in kept.items():
        v = np.stack(vals)
        t = stats.tensors[tname]
        assert (t.min, t.max) == (v.min(), v.max()), tname
        rows = v.reshape(-1, v.shape[-1])
        np.testing.assert_array_equal(t.channel_min, rows.min(axis=0), err_msg=tname)
        np.testing.assert_array_equal(t.channel_max, rows.max(axis=0), err_msg=tname)
        assert t.histogram.total == v.size
