"""Quick start: SigmaStar's calibration flow on the bundled face detector, fully offline.

    python examples/quick_start.py [--out quick_start_out] [--quant_level L5] [--num_process 10]

The flow of the vendor's ``Scripts/examples/sim_calibrator.py``, on the example installed with
the package (``calibrator_custom.examples``, files in ``calibrator_custom/examples/data/``):

1. the float model ``face_detection_short_range.tflite`` (a float .tflite is a valid float.sim)
   and its ``input_config.ini``;
2. calibration: a ``SIM_Calibrator`` subclass whose ``forward`` runs the model, fed by
   ``utils.image_generator`` over the bundled photos with the built-in preprocess method
   ``face_detection_short_range`` (``norm=True``), converted at ``--quant_level`` to
   ``<out>/face_detection_short_range_fixed.sim``;
3. simulation: the float model on normalised float32 images, the fixed model on raw uint8
   pixels (``norm=False`` + ``utils.convert_to_input_formats``), as on the chip;
4. the result: per output, the fixed model's SQNR in dB against the float model, pooled over the
   photos, then the worst output.

The default level is L5, the vendor's default and the most accurate: it measures each of the
37 convolutions on the calibration photos, the slowest level (examples/README.md quotes measured
times; ``--quant_level L4`` is the quick look). Only 3 photos are bundled, so they serve for calibration
and evaluation alike: the SQNR is optimistic compared with held-out photos (docs/quant_levels.md
has held-out numbers).
Nothing is written outside ``--out``.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import calibrator_custom  # noqa: F401  (before numpy: it pins OpenBLAS's kernel, docs/calibration.md)
import numpy as np

from calibrator_custom import examples as bundled
from calibrator_custom import utils
from calibrator_custom.analysis import pooled_sqnr_db

MODEL = bundled.model_path()              # installed with the package: calibrator_custom/examples/data/
INPUT_CONFIG = bundled.input_config_path()
PREPROCESS = bundled.PREPROCESS           # "face_detection_short_range"
LEVELS = ("L1", "L2", "L3", "L4", "L5")


class Net(calibrator_custom.SIM_Calibrator):
    """The vendor's example network: one calibrator; ``x`` is the list of per-input arrays."""

    def __init__(self, model: str, input_config: str):
        super().__init__()
        self.model = calibrator_custom.calibrator(model, input_config)

    def forward(self, x):
        for idx, data in enumerate(x):
            self.model.set_input(idx, data)
        self.model.invoke()
        return [self.model.get_output(k) for k in range(len(self.model.get_output_details()))]


def run_model(sim, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Set every input, invoke once, return every output."""
    for idx, data in enumerate(inputs):
        sim.set_input(idx, data)
    sim.invoke()
    return [sim.get_output(k) for k in range(len(sim.get_output_details()))]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Calibrate the bundled face detector, convert it to a fixed model, and "
                                "print each output's SQNR against the float model.")
    p.add_argument("--out", default="quick_start_out",
                   help="folder for the fixed model (created if needed; default: %(default)s in the current folder)")
    p.add_argument("--quant_level", default="L5", choices=LEVELS,
                   help="quantization level (default: %(default)s, the vendor's default; L1-L4 are faster)")
    p.add_argument("--num_process", type=int, default=10,
                   help="calibration processes, capped at the CPU count and the number of photos "
                   "(default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="hide the library's progress messages (stderr)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s: %(message)s")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    photos = [str(p) for p in bundled.photo_paths()]
    preprocess = utils.image_preprocess_func(PREPROCESS)
    fixed_path = utils.get_out_model_name(str(MODEL), str(out_dir))  # <out>/face_detection_short_range_fixed.sim

    print(f"[1/3] calibrating {MODEL.name} on {len(photos)} photos, quant level {args.quant_level}")
    start = time.monotonic()
    net = Net(str(MODEL), str(INPUT_CONFIG))
    net.convert(utils.image_generator(photos, [preprocess], norm=True), num_process=args.num_process,
                quant_level=args.quant_level, fix_model=[fixed_path])
    print(f"Fixed model at: {fixed_path}  ({time.monotonic() - start:.1f} s)")

    print("[2/3] simulating the float and the fixed model")
    float_sim = calibrator_custom.float_simulator(str(MODEL))
    fixed_sim = calibrator_custom.fixed_simulator(fixed_path)
    fixed_inputs = fixed_sim.get_input_details()
    refs, gots = [], []
    for photo in photos:
        refs.append(run_model(float_sim, [preprocess(photo, norm=True)]))
        raw = [utils.convert_to_input_formats(preprocess(photo, norm=False), fixed_inputs[0])]
        gots.append(run_model(fixed_sim, raw))

    print(f"[3/3] fixed vs float model on {len(photos)} photos (SQNR, higher is better)")
    rows = []
    for k, detail in enumerate(fixed_sim.get_output_details()):
        db = pooled_sqnr_db([r[k] for r in refs], [g[k] for g in gots])
        rows.append((detail["name"], str(detail["shape"].tolist()), db))
    width = max(len(name) for name, _, _ in rows)
    print(f"  {'output':<{width}}  {'shape':<14}  SQNR")
    for name, shape, db in rows:
        print(f"  {name:<{width}}  {shape:<14}  {db:6.2f} dB")
    name, _, db = min(rows, key=lambda row: row[2])
    print(f"worst output: {name}  SQNR {db:.2f} dB (quant level {args.quant_level})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
