"""Tiny models, input_config.ini files and SIM_* networks for tests/test_sim_calibrator.py and test_sim_simulator.py.

* ``two_input_model``: ``img`` (1,8,8,3 RGB image) -> CONV_2D (4 ch), + ``feat`` (1,8,8,4 RAWDATA_F32)
  -> ADD -> ``out``.
  ``feat`` values reach +-3, so a model calibrated without seeing ``feat`` (default range [-1, 1])
  would saturate the ADD.
* ``model_a``: ``img`` (1,8,8,3 RGB) -> CONV_2D relu6 -> ``a_out`` (1,8,8,4).
* ``model_b``: ``b_in`` (1,8,8,4 RAWDATA_F32) -> CONV_2D -> ``b_out`` (1,8,8,2); fed ``model_a``'s output.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import calibrator_custom
from calibrator_custom.model.builder import ModelBuilder

MEAN, STD = 127.5, 127.5
IMG_SHAPE = (1, 8, 8, 3)
FEAT_SHAPE = (1, 8, 8, 4)
CONV = {"padding": "SAME", "stride_w": 1, "stride_h": 1}


def _conv(b: ModelBuilder, x, rng, cin: int, cout: int, name: str, act: str = "NONE"):
    w = b.constant(f"{name}_w", rng.standard_normal((cout, 3, 3, cin)).astype(np.float32) * 0.3)
    bias = b.constant(f"{name}_b", rng.standard_normal(cout).astype(np.float32) * 0.1)
    return b.op("CONV_2D", [x, w, bias], {**CONV, "fused_activation_function": act}, name=name)


def image_ini(path: Path, inp: str, out: str, conv: str | None = None) -> str:
    text = (f"[INPUT_CONFIG]\ninputs={inp};\ntraining_input_formats=RGB;\ninput_formats=RGB;\n"
            f"mean={MEAN}:{MEAN}:{MEAN};\nstd_value={STD};\n[OUTPUT_CONFIG]\noutputs={out};\ndequantizations=TRUE;\n")
    if conv:
        text += f"[CONV_CONFIG]\ninput_format={conv};\n"
    path.write_text(text)
    return str(path)


def raw_ini(path: Path, inp: str, out: str) -> str:
    path.write_text(f"[INPUT_CONFIG]\ninputs={inp};\ninput_formats=RAWDATA_F32_NHWC;\n"
                    f"[OUTPUT_CONFIG]\noutputs={out};\ndequantizations=TRUE;\n")
    return str(path)


def two_input_model(d: Path, name: str = "two_float.sim") -> tuple[str, str]:
    rng = np.random.default_rng(10)
    b = ModelBuilder()
    img = b.input("img", IMG_SHAPE)
    feat = b.input("feat", FEAT_SHAPE)
    c = _conv(b, img, rng, 3, 4, "conv")
    y = b.op("ADD", [c, feat], {}, name="out")
    b.output(y)
    model = str(d / name)
    b.save(model)
    ini = d / "two.ini"
    ini.write_text("[INPUT_CONFIG]\ninputs=img,feat;\ntraining_input_formats=RGB,RAWDATA_F32_NHWC;\n"
                   f"input_formats=RGB,RAWDATA_F32_NHWC;\nmean={MEAN}:{MEAN}:{MEAN};\nstd_value={STD};\n"
                   "[OUTPUT_CONFIG]\noutputs=out;\ndequantizations=TRUE;\n")
    return model, str(ini)


def model_a(d: Path, name: str = "a_float.sim", conv: str | None = None) -> tuple[str, str]:
    rng = np.random.default_rng(11)
    b = ModelBuilder()
    x = b.input("img", IMG_SHAPE)
    b.output(_conv(b, x, rng, 3, 4, "a_out", act="RELU6"))
    model = str(d / name)
    b.save(model)
    return model, image_ini(d / f"{Path(name).stem}.ini", "img", "a_out", conv)


def model_b(d: Path, name: str = "b_float.sim") -> tuple[str, str]:
    rng = np.random.default_rng(12)
    b = ModelBuilder()
    x = b.input("b_in", FEAT_SHAPE)
    b.output(_conv(b, x, rng, 4, 2, "b_out"))
    model = str(d / name)
    b.save(model)
    return model, raw_ini(d / f"{Path(name).stem}.ini", "b_in", "b_out")


def pixels(n: int, seed: int = 0, shape=IMG_SHAPE) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape).astype(np.uint8) for _ in range(n)]


def normalized(p: np.ndarray) -> np.ndarray:
    return ((p.astype(np.float32) - MEAN) / STD).astype(np.float32)


def feats(n: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(rng.standard_normal(FEAT_SHAPE) * 1.5, -3, 3).astype(np.float32) for _ in range(n)]


def run(sim, *inputs) -> list[np.ndarray]:
    """Outputs of one run of a float/fixed simulator or calibrator."""
    for k, x in enumerate(inputs):
        sim.set_input(k, x)
    sim.invoke()
    return [sim.get_output(k) for k in range(len(sim.get_output_details()))]


def sqnr_db(ref, got) -> float:
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum((ref - got) ** 2), 1e-30)))


class TwoInputNet(calibrator_custom.SIM_Calibrator):
    def __init__(self, model: str, ini: str):
        super().__init__()
        self.two = calibrator_custom.calibrator(model, ini)

    def forward(self, img, feat):
        return run(self.two, img, feat)


class ChainNet(calibrator_custom.SIM_Calibrator):
    """A's output feeds B. With ``pid_dir`` set, each forward leaves a file named after its process id."""

    def __init__(self, a: tuple[str, str], b: tuple[str, str], pid_dir: Path | None = None):
        super().__init__()
        self.a = calibrator_custom.calibrator(*a)
        self.b = calibrator_custom.calibrator(*b)
        self.pid_dir = pid_dir

    def forward(self, x):
        if self.pid_dir is not None:
            (Path(self.pid_dir) / str(os.getpid())).touch()
        (y,) = run(self.a, x)
        return run(self.b, y)
