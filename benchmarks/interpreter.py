"""Float interpreter speed and memory against LiteRT, on every model in ../shared/models.

Prints, per model, our median time per inference next to LiteRT with XNNPACK (default resolver) and
LiteRT without delegate (BUILTIN_WITHOUT_DEFAULT_DELEGATES), all measured in this run with the same
thread count, then the geometric-mean ratios and the peak-memory check on pose_detection.

    python benchmarks/interpreter.py [--repeat 20] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import calibrator_custom  # noqa: F401  (before numpy: it pins OpenBLAS's kernel, docs/calibration.md)
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

from calibrator_custom import float_simulator  # noqa: E402
from calibrator_custom.interpreter import Interpreter  # noqa: E402
from calibrator_custom.model.graph import load_model  # noqa: E402


def _median_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _litert(path: Path, resolver: str, threads: int):
    from ai_edge_litert import interpreter as litert
    it = litert.Interpreter(model_path=str(path), num_threads=threads,
                            experimental_op_resolver_type=getattr(litert.OpResolverType, resolver))
    it.allocate_tensors()
    return it


def bench_model(path: Path, repeat: int, threads: int) -> dict:
    rng = np.random.default_rng(0)
    sim = float_simulator(path)
    d = sim.get_input_details()
    feeds = [rng.uniform(0, 1, x["shape"]).astype(np.float32) for x in d]
    for k, x in enumerate(feeds):
        sim.set_input(k, x)
    ours = _median_time(sim.invoke, repeat)
    row = {"model": path.name, "ours_ms": ours * 1e3}
    for key, resolver in (("xnnpack_ms", "BUILTIN"), ("nodelegate_ms", "BUILTIN_WITHOUT_DEFAULT_DELEGATES")):
        it = _litert(path, resolver, threads)
        for det, x in zip(it.get_input_details(), feeds):
            it.set_tensor(det["index"], x)
        row[key] = _median_time(it.invoke, repeat) * 1e3
    return row


def peak_memory(path: Path) -> dict:
    """Peak traced memory of load + one inference vs 2 x weights + the two largest activations."""
    model = load_model(path)
    interp = Interpreter(model)
    weights = sum(v.nbytes for v in interp.constants.values())
    acts = sorted((int(np.prod(t.shape)) * t.np_dtype.itemsize for i, t in enumerate(interp.graph.tensors)
                   if i not in interp.constants), reverse=True)
    budget = 2 * weights + sum(acts[:2])
    del interp, model
    x = np.random.default_rng(0).uniform(0, 1, load_model(path).main.tensors[load_model(path).main.inputs[0]].shape)
    x = x.astype(np.float32)
    tracemalloc.start()
    sim = float_simulator(path)
    sim.set_input(0, x)
    sim.invoke()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"weights": weights, "two_largest_activations": sum(acts[:2]), "budget": budget, "peak": peak}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    models = sorted((SHARED / "models").glob("*.tflite"))
    if not models:
        print(f"no models found in {SHARED / 'models'}; the benchmark needs ../shared", file=sys.stderr)
        return 2
    print(f"threads={args.threads} repeat={args.repeat} (median ms per inference)")
    hdr = f"{'model':42s} {'ours':>9s} {'xnnpack':>9s} {'no-deleg':>9s} {'/xnnpack':>9s} {'/no-deleg':>9s}"
    print(hdr)
    print("-" * len(hdr))
    rows = []
    for path in models:
        r = bench_model(path, args.repeat, args.threads)
        rows.append(r)
        print(f"{r['model']:42s} {r['ours_ms']:9.2f} {r['xnnpack_ms']:9.2f} {r['nodelegate_ms']:9.2f} "
              f"{r['ours_ms'] / r['xnnpack_ms']:9.2f} {r['ours_ms'] / r['nodelegate_ms']:9.2f}", flush=True)
    gx = float(np.exp(np.mean([np.log(r["ours_ms"] / r["xnnpack_ms"]) for r in rows])))
    gn = float(np.exp(np.mean([np.log(r["ours_ms"] / r["nodelegate_ms"]) for r in rows])))
    print("-" * len(hdr))
    print(f"geometric-mean ratio vs LiteRT without delegate: {gn:.2f}  (target <= 1.0: "
          f"{'MET' if gn <= 1.0 else 'NOT MET'})")
    print(f"geometric-mean ratio vs LiteRT XNNPACK:          {gx:.2f}  (target <= 3.0: "
          f"{'MET' if gx <= 3.0 else 'NOT MET'})")
    pose = SHARED / "models" / "pose_detection.tflite"
    if pose.exists():
        m = peak_memory(pose)
        mib = 1 / 2**20
        print(f"pose_detection peak memory {m['peak'] * mib:.1f} MiB; budget 2 x weights "
              f"({m['weights'] * mib:.1f} MiB) + two largest activations ({m['two_largest_activations'] * mib:.1f} "
              f"MiB) = {m['budget'] * mib:.1f} MiB: {'MET' if m['peak'] < m['budget'] else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
