"""Two chained models: model A's output feeds model B, calibrated together and run as a fixed chain.

    python examples/chained_models.py [--out chained_models_out] [--quant_level L5] [--num_process 2]

1. builds two small float models with ``calibrator_custom.model.builder`` (random weights: the
   point is the mechanics) and writes their ``input_config.ini`` files::

       A: image [1,32,32,3] (RGB) -> CONV_2D 3x3/2 RELU6 -> CONV_2D 3x3 -> a_features [1,16,16,8]
       B: b_in [1,16,16,8] (RAWDATA_F32) -> DEPTHWISE 3x3 RELU -> MEAN -> FULLY_CONNECTED -> SOFTMAX -> scores [1,5]

2. calibrates both with one ``SIM_Calibrator``: ``forward(x)`` runs A, feeds A's output to B and
   runs B, so B is calibrated on exactly what A produces; ``convert(..., fix_model=[a, b])``
   writes one fixed model per calibrator, in the order they were assigned in ``__init__``;
3. runs the float chain and the fixed chain with two ``SIM_Simulator`` networks over all photos
   in ``num_process`` processes (``net(generator, num_process=N)``, results in input order). In the
   fixed chain A gets raw uint8 pixels; its output is float32 (``dequantizations=TRUE``) and goes
   to B's RAWDATA_F32 input through ``utils.convert_to_input_formats``;
4. prints the SQNR of A's output and of the chain's end output against the float chain.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import calibrator_custom  # noqa: F401  (before numpy: it pins OpenBLAS's kernel, docs/calibration.md)
import numpy as np

from calibrator_custom import examples as bundled
from calibrator_custom import utils
from calibrator_custom.analysis import pooled_sqnr_db
from calibrator_custom.model.builder import ModelBuilder

#: the bundled face detector's preprocess stretches photos to 128x128; A takes 32x32, so resize on top
PREPROCESS = "face_detection_short_range"
IMAGE_SIZE = 32
A_INI = """\
[INPUT_CONFIG]
inputs=image;
training_input_formats=RGB;
input_formats=RGB;
mean=127.5:127.5:127.5;
std_value=127.5;

[OUTPUT_CONFIG]
outputs=a_features;
dequantizations=TRUE;
"""
B_INI = """\
[INPUT_CONFIG]
inputs=b_in;
training_input_formats=RAWDATA_F32_NHWC;
input_formats=RAWDATA_F32_NHWC;

[OUTPUT_CONFIG]
outputs=scores;
dequantizations=TRUE;
"""


def _conv(b: ModelBuilder, x, rng, cin: int, cout: int, stride: int, act: str, name: str):
    w = b.constant(f"{name}_w", rng.normal(0, 0.3, (cout, 3, 3, cin)).astype(np.float32))
    bias = b.constant(f"{name}_b", rng.normal(0, 0.1, cout).astype(np.float32))
    return b.op("CONV_2D", [x, w, bias], {"padding": "SAME", "stride_w": stride, "stride_h": stride,
                                          "fused_activation_function": act}, name=name)


def build_model_a(path: Path) -> None:
    rng = np.random.default_rng(1)
    b = ModelBuilder()
    x = b.input("image", (1, IMAGE_SIZE, IMAGE_SIZE, 3))
    x = _conv(b, x, rng, 3, 8, 2, "RELU6", "a_conv1")
    b.output(_conv(b, x, rng, 8, 8, 1, "NONE", "a_features"))
    b.save(path)


def build_model_b(path: Path) -> None:
    rng = np.random.default_rng(2)
    b = ModelBuilder()
    x = b.input("b_in", (1, 16, 16, 8))
    w = b.constant("b_dw_w", rng.normal(0, 0.3, (1, 3, 3, 8)).astype(np.float32))
    bias = b.constant("b_dw_b", rng.normal(0, 0.1, 8).astype(np.float32))
    x = b.op("DEPTHWISE_CONV_2D", [x, w, bias], {"padding": "SAME", "stride_w": 1, "stride_h": 1,
                                                 "depth_multiplier": 1, "fused_activation_function": "RELU"},
             name="b_dw")
    x = b.op("MEAN", [x, b.constant("axes", np.array([1, 2], np.int32))], {"keep_dims": False}, name="b_pool")
    fc_w = b.constant("b_fc_w", rng.normal(0, 0.5, (5, 8)).astype(np.float32))
    fc_b = b.constant("b_fc_b", rng.normal(0, 0.1, 5).astype(np.float32))
    x = b.op("FULLY_CONNECTED", [x, fc_w, fc_b], {}, name="b_logits")
    b.output(b.op("SOFTMAX", [x], {"beta": 1.0}, name="scores"))
    b.save(path)


def image_preprocess(img_path, norm=True):
    """The built-in face preprocess (RGB, mean/std 127.5), then an area resize to 32x32."""
    import cv2

    x = utils.image_preprocess_func(PREPROCESS)(img_path, norm=norm)[0]
    small = cv2.resize(x.astype(np.float32), (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return (small if norm else np.clip(np.round(small), 0, 255).astype(np.uint8))[None]


def run(sim, x: np.ndarray) -> np.ndarray:
    """Set the single input, invoke, return the single output."""
    sim.set_input(0, x)
    sim.invoke()
    return sim.get_output(0)


class CalibrationChain(calibrator_custom.SIM_Calibrator):
    def __init__(self, a: tuple[str, str], b: tuple[str, str]):
        super().__init__()
        self.a = calibrator_custom.calibrator(*a)   # registered first: fix_model[0]
        self.b = calibrator_custom.calibrator(*b)   # fix_model[1]

    def forward(self, x):
        return run(self.b, run(self.a, x))


class FloatChain(calibrator_custom.SIM_Simulator):
    def __init__(self, a: str, b: str):
        super().__init__()
        self.a = calibrator_custom.float_simulator(a)
        self.b = calibrator_custom.float_simulator(b)

    def forward(self, x):
        features = run(self.a, x)
        return features, run(self.b, features)


class FixedChain(calibrator_custom.SIM_Simulator):
    def __init__(self, a: str, b: str):
        super().__init__()
        self.a = calibrator_custom.fixed_simulator(a)
        self.b = calibrator_custom.fixed_simulator(b)

    def forward(self, pixels):
        features = run(self.a, utils.convert_to_input_formats(pixels, self.a.get_input_details()[0]))
        return features, run(self.b, utils.convert_to_input_formats(features, self.b.get_input_details()[0]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Calibrate two chained models together; run the fixed chain.")
    p.add_argument("--out", default="chained_models_out", help="output folder (default: %(default)s)")
    p.add_argument("--quant_level", default="L5", choices=("L1", "L2", "L3", "L4", "L5"))
    p.add_argument("--num_process", type=int, default=2)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    a, b = (str(out / "a_float.sim"), str(out / "a.ini")), (str(out / "b_float.sim"), str(out / "b.ini"))
    build_model_a(Path(a[0]))
    build_model_b(Path(b[0]))
    Path(a[1]).write_text(A_INI)
    Path(b[1]).write_text(B_INI)
    photos = [str(p) for p in bundled.photo_paths()]  # the photos installed with the package

    fixed = [str(out / "a_fixed.sim"), str(out / "b_fixed.sim")]
    CalibrationChain(a, b).convert((image_preprocess(p) for p in photos), num_process=args.num_process,
                                   quant_level=args.quant_level, fix_model=fixed)
    for path in fixed:
        print(f"Fixed model at: {path}")

    float_out = FloatChain(a[0], b[0])((image_preprocess(p, norm=True) for p in photos), num_process=args.num_process)
    fixed_out = FixedChain(*fixed)((image_preprocess(p, norm=False) for p in photos), num_process=args.num_process)
    print(f"fixed vs float chain on {len(photos)} photos (SQNR):")
    a_db = pooled_sqnr_db([r[0] for r in float_out], [g[0] for g in fixed_out])
    end_db = pooled_sqnr_db([r[1] for r in float_out], [g[1] for g in fixed_out])
    print(f"  a_features  (model A's output)                {a_db:6.2f} dB")
    print(f"  scores      (model B's output, the chain's end) {end_db:6.2f} dB")
    print(f"chain end output: scores  SQNR {end_db:.2f} dB (quant level {args.quant_level})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
