#!/usr/bin/env python3
"""A shared model at the vendor's L1, through our fixed_simulator and the vendor's, code for code.

What ``tests/test_vendor_fixed_models.py`` does for the models whose vendor calibration fits in a test
session, for one model with no time limit and a working folder that survives the run (the vendor's
L1 calibration of hand_landmark_lite's 195 MB float.sim takes hours on 2 cores). Needs
../shared/vendor_sdk (set up); vendor-made files stay in ``--workdir`` (never commit them).

    PYTHONPATH=. python tools/vendor_l1_compare.py hand_landmark_lite --workdir /tmp/vendor_l1 [--photos 10]

Steps, each skipped when its output is already in the folder: the vendor's convert_tool, the
vendor's L1 calibration on the first 2 calibration photos (the test's preprocess: RGB, (x - 127.5) /
127.5), then for each of the first ``--photos`` evaluation photos the vendor's sgs_simulator_fixed and
ours; prints one row per photo (codes compared, codes that differ, worst LSB) and exits 1 on any
difference.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import calibrator_custom  # noqa: E402
import vendor_fixed_oracle as vo  # noqa: E402
from calibrator_custom.model.graph import load_model  # noqa: E402
from images import evaluation_images  # noqa: E402
from test_vendor_fixed_models import _pixels  # noqa: E402
from vendor_oracle import calibration_inputs, ini_text  # noqa: E402

#: no limit on the vendor's tools (the oracle's own default is 15 minutes per call)
NO_LIMIT_S = 7 * 24 * 3600


def _unlimited(o):
    run = o._run

    def _run(cmd, cwd, timeout=NO_LIMIT_S):
        return run(cmd, cwd, timeout=NO_LIMIT_S)
    o._run = _run


def make_fixed(name: str, work: Path) -> Path:
    o = vo.oracle()
    _unlimited(o)
    tflite = ROOT.parent / "shared" / "models" / f"{name}.tflite"
    g = load_model(tflite).main
    ins, outs = [g.tensors[i].name for i in g.inputs], [g.tensors[i].name for i in g.outputs]
    _, h, w, _ = g.tensors[g.inputs[0]].shape
    ini = work / "input_config.ini"
    ini.write_text(ini_text(ins, outs, 127.5, 127.5))
    calib, pre = calibration_inputs(work, h, w)
    float_sim, fixed = work / f"{name}_float.sim", work / f"{name}_fixed.sim"
    t = time.time()
    if not float_sim.exists():
        o.convert_tflite(str(tflite), str(ini), str(float_sim))
        print(f"vendor convert_tool: {time.time() - t:.1f} s", flush=True)
    if not fixed.exists():
        t = time.time()
        o.calibrate_l1(str(float_sim), str(calib), str(pre), str(ini), str(fixed), workdir=str(work / "calib_work"))
        print(f"vendor L1 calibration: {time.time() - t:.0f} s", flush=True)
    return fixed


def compare(fixed: Path, photos: int) -> int:
    o = vo.oracle()
    _unlimited(o)
    sim = calibrator_custom.fixed_simulator(str(fixed))
    _, h, w, _ = (int(v) for v in sim.get_input_details()[0]["shape"])
    bad = 0
    print(f"{'photo':<28} {'codes':>8} {'differ':>7} {'worst LSB':>9} {'vendor s':>9} {'ours s':>7}")
    for photo in evaluation_images()[:photos]:
        x = _pixels(photo, h, w)
        t = time.time()
        ref = o.fixed_sim(str(fixed), x)
        t_vendor, t = time.time() - t, time.time()
        sim.set_input(0, x)
        sim.invoke()
        t_ours = time.time() - t
        n = differ = worst = 0
        for k, od in enumerate(sim.get_output_details()):
            r = ref[od["name"]]
            y = sim.get_output(k)
            y = y[tuple(slice(0, s) for s in r.shape)]
            if y.shape != r.shape:
                raise SystemExit(f"{photo.name} output {od['name']}: shape {y.shape}, vendor {r.shape}")
            scale = od["quantization"][0]
            lsb = np.abs(np.round(y.astype(np.float64) / scale) - np.round(r / scale))
            n, differ, worst = n + lsb.size, differ + int((lsb > 0).sum()), max(worst, float(lsb.max()))
        bad += differ
        print(f"{photo.name:<28} {n:>8} {differ:>7} {worst:>9.0f} {t_vendor:>9.1f} {t_ours:>7.2f}", flush=True)
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a model of ../shared/models, without .tflite")
    ap.add_argument("--workdir", type=Path, required=True, help="folder kept between runs")
    ap.add_argument("--photos", type=int, default=10)
    args = ap.parse_args(argv)
    reason = vo.vendor_missing_reason()
    if reason:
        raise SystemExit(reason)
    args.workdir.mkdir(parents=True, exist_ok=True)
    fixed = make_fixed(args.model, args.workdir)
    bad = compare(fixed, args.photos)
    print(f"{args.model}: {'every code equal' if not bad else f'{bad} codes differ'} on {args.photos} photo{'s' if args.photos != 1 else ''}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
