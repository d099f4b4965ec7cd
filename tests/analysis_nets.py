"""Tiny float models, input_config.ini files and inputs for the accuracy-analysis tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from calibrator_custom.calib import collect_stats_arrays
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.pipeline.convert import convert

MEAN, STD = 127.5, 127.5
SIDE = 10
SAME = {"padding": "SAME", "stride_w": 1, "stride_h": 1}


def ini(path: Path, inputs: str = "img", outputs: str = "out", deq: str = "TRUE", conv: str | None = None,
        formats: str = "RGB", mean: str = f"{MEAN}:{MEAN}:{MEAN}", quant: str | None = None) -> str:
    text = (f"[INPUT_CONFIG]\ninputs={inputs};\ntraining_input_formats={formats};\ninput_formats={formats};\n"
            f"mean={mean};\nstd_value={STD};\n")
    if quant:
        text += f"quantizations={quant};\n"
    text += f"[OUTPUT_CONFIG]\noutputs={outputs};\ndequantizations={deq};\n"
    if conv:
        text += f"[CONV_CONFIG]\ninput_format={conv};\n"
    path.write_text(text)
    return str(path)


def _w(rng, shape, scale):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def chain_net(path: Path) -> str:
    """img -> conv1 (RELU) = t; t -> conv2 = u (8-bit, reads t's UINT8 copy); add(t, u) = v (so t is INT16);
    v -> depthwise = d; d -> mean -> fully connected -> logistic = out."""
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    x = b.input("img", (1, SIDE, SIDE, 3))
    t = b.op("CONV_2D", [x, b.constant("w1", _w(rng, (8, 3, 3, 3), 0.3)), b.constant("b1", _w(rng, (8,), 0.1))],
             {**SAME, "fused_activation_function": "RELU"}, name="t")
    u = b.op("CONV_2D", [t, b.constant("w2", _w(rng, (8, 3, 3, 8), 0.2)), b.constant("b2", _w(rng, (8,), 0.1))],
             SAME, name="u")
    v = b.op("ADD", [t, u], {}, name="v")
    d = b.op("DEPTHWISE_CONV_2D", [v, b.constant("w3", _w(rng, (1, 3, 3, 8), 0.3)),
                                   b.constant("b3", _w(rng, (8,), 0.1))], {**SAME, "depth_multiplier": 1}, name="d")
    m = b.op("MEAN", [d, b.constant("axes", np.array([1, 2], np.int32))], {"keep_dims": False}, name="gap")
    fc = b.op("FULLY_CONNECTED", [m, b.constant("w4", _w(rng, (4, 8), 0.5)), b.constant("b4", np.zeros(4, np.float32))],
              {}, name="fc")
    b.output(b.op("LOGISTIC", [fc], name="out"))
    b.save(path)
    return str(path)


def two_by_two_net(path: Path) -> str:
    """Inputs img (RGB image) and feat (RAWDATA_F32); outputs o1 = conv(img) + feat (dequantized) and
    o2 = logistic(fully connected(mean(o1))) (INT16)."""
    rng = np.random.default_rng(4)
    b = ModelBuilder()
    x = b.input("img", (1, SIDE, SIDE, 3))
    f = b.input("feat", (1, SIDE, SIDE, 4))
    c = b.op("CONV_2D", [x, b.constant("w1", _w(rng, (4, 3, 3, 3), 0.3)), b.constant("b1", _w(rng, (4,), 0.1))],
             SAME, name="c")
    o1 = b.op("ADD", [c, f], {}, name="o1")
    m = b.op("MEAN", [o1, b.constant("axes", np.array([1, 2], np.int32))], {"keep_dims": False}, name="gap")
    fc = b.op("FULLY_CONNECTED", [m, b.constant("w2", _w(rng, (3, 4), 0.5)), b.constant("b2", np.zeros(3, np.float32))],
              {}, name="fc")
    o2 = b.op("LOGISTIC", [fc], name="o2")
    b.output(o1)
    b.output(o2)
    b.save(path)
    return str(path)


def pixels(n: int, seed: int = 1, shape=(1, SIDE, SIDE, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape).astype(np.uint8) for _ in range(n)]


def normalized(p: np.ndarray) -> np.ndarray:
    return ((p.astype(np.float32) - MEAN) / STD).astype(np.float32)


def image_feeds(n: int, seed: int = 1) -> list[list[np.ndarray]]:
    """Float inputs that are exactly normalized pixels (so the fixed model sees the same image)."""
    return [[normalized(p)] for p in pixels(n, seed)]


def convert_to(model: str, ini_path: str, feeds, out: Path, level: str = "L2", **kw) -> str:
    stats = collect_stats_arrays(model, feeds)
    convert(model, ini_path, stats, quant_level=level, output_path=out, **kw)
    return str(out)


def detector_net(path: Path, side: int = 4) -> str:
    """img -> conv (4 ch) -> boxes [1, side*side, 4]; img -> conv (1 ch) -> scores [1, side*side, 1]; then
    MediaPipe's SSD post-process (TFLite_Detection_NMS, run in float by the fixed model) on fixed anchors."""
    from calibrator_custom.detection import append_ssd_postprocess

    rng = np.random.default_rng(6)
    n = side * side
    b = ModelBuilder()
    x = b.input("img", (1, side, side, 3))
    cb = b.op("CONV_2D", [x, b.constant("wb", _w(rng, (4, 3, 3, 3), 1.0)), b.constant("bb", _w(rng, (4,), 0.5))],
              SAME, name="box_conv")
    cs = b.op("CONV_2D", [x, b.constant("ws", _w(rng, (1, 3, 3, 3), 1.0)), b.constant("bs", _w(rng, (1,), 0.5))],
              SAME, name="score_conv")
    b.output(b.op("RESHAPE", [cb, b.constant("s1", np.array([1, n, 4], np.int32))], {"new_shape": [1, n, 4]},
                  name="boxes"),
             b.op("RESHAPE", [cs, b.constant("s2", np.array([1, n, 1], np.int32))], {"new_shape": [1, n, 1]},
                  name="scores"))
    centres = rng.uniform(0, 1, (n, 2))
    anchors = np.concatenate([centres, np.ones((n, 2))], 1).astype(np.float32)
    model = append_ssd_postprocess(b.build(), anchors, boxes_output="boxes", scores_output="scores",
                                   scales=(4.0, 4.0, 4.0, 4.0), score_threshold=0.3)
    model.save(path)
    return str(path)
