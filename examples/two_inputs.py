"""Two-input model: an image and a RAWDATA_F32 feature map, calibrated with SIM_Calibrator.

    python examples/two_inputs.py [--out two_inputs_out] [--quant_level L5]

1. builds a small float model with ``calibrator_custom.model.builder`` (random weights: the point
   is the mechanics, not the task) and saves it as ``<out>/two_inputs_float.sim``::

       image [1,32,32,3] -> CONV_2D 3x3/2 RELU -> [1,16,16,8] -+
       features [1,16,16,8] ------------------------------------ ADD -> CONV_2D 1x1 -> heatmap [1,16,16,4]
                                                                                   -> MEAN -> summary [1,4]

2. writes its ``input_config.ini`` with two inputs: ``image`` (RGB, mean/std 127.5) and
   ``features`` (RAWDATA_F32_NHWC: float32 data the chip quantizes itself, no mean/std);
3. writes the feature maps as ``.npy`` files and a vendor-style list file, one sample per line:
   ``<photo>,<features.npy>`` (read with ``utils.read_image_list``);
4. one preprocess function per input: the image one resizes the photo (``norm=True`` -> float32 in
   [-1, 1] for the float model, ``norm=False`` -> uint8 pixels for the fixed model); the
   RAWDATA one loads the ``.npy`` (float32 either way);
5. calibrates with a ``SIM_Calibrator`` subclass whose ``forward(image, features)`` feeds both
   inputs (the generator yields ``[image, features]`` per sample, in ``forward``'s order), and
   converts without ``fix_model``: the vendor's naming gives ``<out>/two_inputs_fixed.sim``;
6. runs the fixed model on the photos with feature maps not seen in calibration and prints each
   output's SQNR against the float model, worst last.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2
import calibrator_custom  # noqa: F401  (before numpy: it pins OpenBLAS's kernel, docs/calibration.md)
import numpy as np

from calibrator_custom import examples as bundled
from calibrator_custom import utils
from calibrator_custom.analysis import pooled_sqnr_db
from calibrator_custom.model.builder import ModelBuilder

IMAGE_SIZE = 32
FEATURE_SHAPE = (1, 16, 16, 8)
#: the feature maps reach +-4.5: a model calibrated without them would clip the ADD
FEATURE_STD = 1.5
CONV = {"padding": "SAME", "fused_activation_function": "NONE"}
INPUT_CONFIG = """\
[INPUT_CONFIG]
inputs=image,features;
training_input_formats=RGB,RAWDATA_F32_NHWC;
input_formats=RGB,RAWDATA_F32_NHWC;
mean=127.5:127.5:127.5;
std_value=127.5;

[OUTPUT_CONFIG]
outputs=heatmap,summary;
dequantizations=TRUE,TRUE;
"""


def build_model(path: Path) -> None:
    """The two-input float model above, saved at ``path``."""
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    image = b.input("image", (1, IMAGE_SIZE, IMAGE_SIZE, 3))
    features = b.input("features", FEATURE_SHAPE)
    w1 = b.constant("conv1_w", rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32))
    b1 = b.constant("conv1_b", rng.normal(0, 0.1, 8).astype(np.float32))
    x = b.op("CONV_2D", [image, w1, b1], {**CONV, "stride_w": 2, "stride_h": 2, "fused_activation_function": "RELU"},
             name="conv1")
    fused = b.op("ADD", [x, features], {}, name="fused")
    w2 = b.constant("conv2_w", rng.normal(0, 0.3, (4, 1, 1, 8)).astype(np.float32))
    b2 = b.constant("conv2_b", rng.normal(0, 0.1, 4).astype(np.float32))
    heatmap = b.op("CONV_2D", [fused, w2, b2], {**CONV, "stride_w": 1, "stride_h": 1}, name="heatmap")
    summary = b.op("MEAN", [heatmap, b.constant("axes", np.array([1, 2], np.int32))], {"keep_dims": False},
                   name="summary")
    b.output(heatmap, summary)
    b.save(path)


def image_preprocess(img_path, norm=True):
    """RGB, resized to 32x32; float32 (x - 127.5) / 127.5 if ``norm``, else the uint8 pixels."""
    bgr = cv2.imread(str(img_path))
    if bgr is None:
        raise FileNotFoundError(f"No such image: {img_path}")
    rgb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32), (IMAGE_SIZE, IMAGE_SIZE),
                     interpolation=cv2.INTER_LINEAR)
    out = (rgb - 127.5) / 127.5 if norm else np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    return out[None].astype(np.float32) if norm else out[None]


def features_preprocess(npy_path, norm=True):
    """A RAWDATA_F32 input: the stored float32 array, whatever ``norm`` says (the vendor's rule)."""
    return np.load(npy_path).astype(np.float32)


def write_samples(out: Path, photos: list[str], seed: int, tag: str) -> Path:
    """One feature map per photo (``<out>/features/``) and the list file naming both inputs per line."""
    rng = np.random.default_rng(seed)
    (out / "features").mkdir(exist_ok=True)
    lines = []
    for photo in photos:
        npy = out / "features" / f"{Path(photo).stem}_{tag}.npy"
        np.save(npy, rng.normal(0, FEATURE_STD, FEATURE_SHAPE).astype(np.float32))
        lines.append(f"{photo},{npy}")
    listfile = out / f"{tag}_list.txt"
    listfile.write_text("\n".join(lines) + "\n")
    return listfile


class Net(calibrator_custom.SIM_Calibrator):
    def __init__(self, model: str, input_config: str):
        super().__init__()
        self.model = calibrator_custom.calibrator(model, input_config)

    def forward(self, image, features):
        self.model.set_input(0, image)
        self.model.set_input(1, features)
        self.model.invoke()
        return [self.model.get_output(0), self.model.get_output(1)]


def sample_generator(samples: list[list[str]], norm: bool = True):
    """``[image, features]`` per sample, in the order of ``forward``'s arguments."""
    for image_path, features_path in samples:
        yield [image_preprocess(image_path, norm), features_preprocess(features_path, norm)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Calibrate and convert a two-input model with SIM_Calibrator.")
    p.add_argument("--out", default="two_inputs_out", help="output folder (default: %(default)s)")
    p.add_argument("--quant_level", default="L5", choices=("L1", "L2", "L3", "L4", "L5"))
    p.add_argument("--num_process", type=int, default=2)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    model, ini = out / "two_inputs_float.sim", out / "input_config.ini"
    build_model(model)
    ini.write_text(INPUT_CONFIG)
    photos = [str(p) for p in bundled.photo_paths()]  # the photos installed with the package
    calibration = utils.read_image_list(write_samples(out, photos, seed=1, tag="calibration"))
    evaluation = utils.read_image_list(write_samples(out, photos, seed=2, tag="evaluation"))
    print(f"float model {model} (inputs image, features); {len(calibration)} calibration samples")

    net = Net(str(model), str(ini))
    (fixed_path,) = net.convert(sample_generator(calibration), num_process=args.num_process,
                                quant_level=args.quant_level)
    print(f"Fixed model at: {fixed_path}")

    float_sim = calibrator_custom.float_simulator(str(model))
    fixed_sim = calibrator_custom.fixed_simulator(fixed_path)
    details = fixed_sim.get_input_details()
    print("fixed model inputs: " + ", ".join(f"{d['name']} {d['dtype'].__name__} {d['input_formats']}"
                                             for d in details))
    refs, gots = [], []
    for float_inputs, raw_inputs in zip(sample_generator(evaluation, norm=True),
                                        sample_generator(evaluation, norm=False)):
        for k, x in enumerate(float_inputs):
            float_sim.set_input(k, x)
        float_sim.invoke()
        refs.append([float_sim.get_output(k) for k in range(2)])
        for k, (x, d) in enumerate(zip(raw_inputs, details)):
            fixed_sim.set_input(k, utils.convert_to_input_formats(x, d))
        fixed_sim.invoke()
        gots.append([fixed_sim.get_output(k) for k in range(2)])

    print(f"fixed vs float model on {len(evaluation)} samples with new feature maps (SQNR):")
    rows = [(d["name"], pooled_sqnr_db([r[k] for r in refs], [g[k] for g in gots]))
            for k, d in enumerate(fixed_sim.get_output_details())]
    for name, db in rows:
        print(f"  {name:<8}  {db:6.2f} dB")
    name, db = min(rows, key=lambda row: row[1])
    print(f"worst output: {name}  SQNR {db:.2f} dB (quant level {args.quant_level})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
