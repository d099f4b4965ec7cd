"""Statistics collection: seconds per image at 1 and 2 processes, and peak RSS of 30 vs 300 images.

Every measurement runs in a fresh child process (so BLAS thread settings and memory peaks do not leak
between them) on the 30 calibration photos of ../shared/images/coco, reused cyclically:

* inference only (float_simulator, no observer), 1 process, default BLAS threads;
* collect_stats, num_process=1, default BLAS threads, and with BLAS limited to 1 thread;
* collect_stats, num_process=2 (each worker limited to 1 BLAS thread).

Targets: speed-up of 2 processes over 1 (default BLAS threads) >= 1.6; peak RSS of a 300-image
pass within 10 % of a 30-image pass.

    python benchmarks/calibration.py [--model face_detection_short_range] [--images 60]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import calibrator_custom  # noqa: F401  (before numpy: it pins OpenBLAS's kernel, docs/calibration.md)
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

from calibrator_custom import float_simulator  # noqa: E402
from calibrator_custom.calib import collect_stats  # noqa: E402
from calibrator_custom.calib.parallel import limit_blas_threads  # noqa: E402

SPEEDUP_TARGET = 1.6
RSS_TOLERANCE = 0.10


class Preprocess:
    """RGB photo resized to the model input, normalised per ../shared/models/MODELS.md (picklable)."""

    def __init__(self, model_name: str, height: int, width: int):
        self.mean, self.std = (127.5, 127.5) if model_name.startswith("face_detection") else (0.0, 255.0)
        self.height, self.width = height, width

    def __call__(self, path) -> np.ndarray:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"cv2 cannot read {path}")
        rgb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (self.width, self.height),
                         interpolation=cv2.INTER_LINEAR)
        return ((rgb.astype(np.float32) - self.mean) / self.std)[None].astype(np.float32)


def _setup(model: str, count: int) -> tuple[Path, list[Path], Preprocess]:
    path = SHARED / "models" / f"{model}.tflite"
    photos = sorted((SHARED / "images" / "coco").glob("*.jpg"))[:30]
    if not path.is_file() or not photos:
        sys.exit(f"shared material not found under {SHARED}")
    shape = float_simulator(path).get_input_details()[0]["shape"]
    items = [photos[k % len(photos)] for k in range(count)]
    return path, items, Preprocess(model, int(shape[1]), int(shape[2]))


def child(mode: str, model: str, count: int, num_process: int, blas1: bool) -> dict:
    """One measurement in this (fresh) process; returns seconds per image and peak RSS (MiB)."""
    if blas1:
        limit_blas_threads(1)
    path, items, pre = _setup(model, count)
    t0 = time.perf_counter()
    if mode == "infer":
        sim = float_simulator(path)
        for p in items:
            sim.set_input(0, pre(p))
            sim.invoke()
    else:
        stats = collect_stats(path, items, pre, num_process=num_process)
        assert stats.num_samples == count
    seconds = time.perf_counter() - t0
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"s_per_image": seconds / count, "rss_mib": rss_mib}


def run_child(mode: str, model: str, count: int, num_process: int = 1, blas1: bool = False, repeat: int = 1) -> dict:
    """Best (fastest) of ``repeat`` fresh child processes: the machine is shared, noise only adds time."""
    cmd = [sys.executable, __file__, "--child", mode, "--model", model, "--images", str(count),
           "--num-process", str(num_process)] + (["--blas1"] if blas1 else [])
    runs = []
    for _ in range(repeat):
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"measurement {' '.join(cmd[2:])} failed:\n{out.stderr[-2000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda r: r["s_per_image"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="face_detection_short_range")
    ap.add_argument("--images", type=int, default=120, help="images for the timing runs (photos reused cyclically)")
    ap.add_argument("--repeat", type=int, default=3, help="timing runs per configuration (best is kept)")
    ap.add_argument("--child", choices=["infer", "collect"], help=argparse.SUPPRESS)
    ap.add_argument("--num-process", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--blas1", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model, args.images, args.num_process, args.blas1)))
        return

    n, rep = args.images, args.repeat
    rows = [
        ("inference only, 1 process", run_child("infer", args.model, n, repeat=rep)),
        ("collect_stats, 1 process", run_child("collect", args.model, n, repeat=rep)),
        ("collect_stats, 1 process, BLAS 1 thread", run_child("collect", args.model, n, blas1=True, repeat=rep)),
        ("collect_stats, 2 processes", run_child("collect", args.model, n, num_process=2, repeat=rep)),
    ]
    print(f"model {args.model}, {n} images (30 photos reused), best of {rep} runs, CPUs: {os.cpu_count()}")
    print(f"{'configuration':<42} {'s/image':>9} {'peak RSS MiB':>13}")
    for name, r in rows:
        print(f"{name:<42} {r['s_per_image']:>9.4f} {r['rss_mib']:>13.1f}")
    one, one_b1, two = rows[1][1]["s_per_image"], rows[2][1]["s_per_image"], rows[3][1]["s_per_image"]
    speedup, speedup_b1 = one / two, one_b1 / two
    print(f"statistics overhead over inference: {one / rows[0][1]['s_per_image']:.2f}x")
    print(f"speed-up 2 vs 1 process (default BLAS threads): {speedup:.2f}x "
          f"[{'MET' if speedup >= SPEEDUP_TARGET else 'NOT MET'}, target >= {SPEEDUP_TARGET}]")
    print(f"speed-up 2 vs 1 process (BLAS 1 thread in both):  {speedup_b1:.2f}x")

    small = run_child("collect", args.model, 30)["rss_mib"]
    large = run_child("collect", args.model, 300)["rss_mib"]
    ratio = large / small
    print(f"peak RSS, 1 process: 30 images {small:.1f} MiB, 300 images {large:.1f} MiB, ratio {ratio:.3f} "
          f"[{'MET' if abs(ratio - 1) <= RSS_TOLERANCE else 'NOT MET'}, target within {RSS_TOLERANCE:.0%}]")


if __name__ == "__main__":
    main()
