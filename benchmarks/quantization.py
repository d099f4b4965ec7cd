"""Quantization benchmark: our fixed models at every quant level against TFLite's own PTQ.

    .venv/bin/python benchmarks/quantization.py [--models face_landmark ...] [--configs L2 L5 ...] [--vendor]

For every model in ../shared/models: collect statistics on the first 30 COCO photos, convert at
L1..L5 and with ``[CONV_CONFIG] input_format=ALL_INT16``, run the fixed simulator on the other 30
photos (raw uint8 pixels, as the chip gets them) and print, per configuration, the worst-output
SQNR (dB; per-output energies pooled over the images) against the float model on the same photos,
the share of conv multiply-accumulates at 16 bit, and the conversion time (statistics collection
is shared by all levels and printed once). L5 measures on the first ``L5_SAMPLES`` calibration photos,
as the ``calibrator`` command and ``SIM_Calibrator`` give it (the others through the statistics). Next to them: TFLite's post-training quantization
(int8 and 16x8, ai-edge-litert's calibration wrapper, see benchmarks/tflite_ptq.py) calibrated on
the same 30 photos, and the fixed simulator's time per image against our float interpreter's.

Also printed: the time of one float-model pass over the calibration photos (our float interpreter).

``--vendor`` (needs ../shared/vendor_sdk, set up; skipped with the reason otherwise): per model the
vendor's converter accepts, the vendor's own L1 (its convert_tool + sgs_calibrator, calibrated on the
same photos) as the column "vendor L1", and our L2 ranges written in the vendor's fixed dialect
(synthesized from the vendor's float.sim with no vendor fixed file, ``vendor_fixed.synth``, as
``convert`` writes it by default; L2's per-channel weight scales as per-channel weight codes and bias
multipliers, raised where the format's one bias shift would grow by more than one) as "L2 vendor"; both are simulated by our
``fixed_simulator`` on the evaluation photos, after checking on 2 of them that the vendor's
sgs_simulator_fixed gives the same output codes. With L5 in ``--configs`` also our L5 in the vendor's
dialect: "L5v 8b" with ``vendor_int16_convs=False`` (every conv at 8 bit, checked the same way), and
"L5 vendor" as ``convert`` writes it by default (its 16-bit convs carried where the dialect can; the
share of conv MACs at 16 bit in the file, whether the vendor's compiler takes it and its simulator
agrees, are printed). With ALL_INT16 in ``--configs`` also "A16 vendor": our L2 with
``input_format=ALL_INT16`` in the vendor's dialect (reported the same way). Models the vendor's tools refuse (or take too long on) are
printed with the reason and not run.

Targets: L2 > TFLite int8 on every model; L5 >= TFLite 16x8 with <= 25% of conv MACs at 16 bit;
L5 conversion <= 5x L2's + 3 float-model passes over the calibration set (with ``--vendor`` also on the
vendor's road: L5 and L2 written in the vendor's dialect from the vendor's float.sim, whose float pass
counts); ALL_INT16 > TFLite 16x8;
fixed simulation <= 2x the float interpreter's time.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import calibrator_custom  # noqa: F401  (before numpy: it pins OpenBLAS's kernel, docs/calibration.md)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MODELS_DIR = SHARED / "models"
IMAGES_DIR = SHARED / "images" / "coco"
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import calibrator_custom  # noqa: E402
from calibrator_custom.calib import collect_stats_arrays  # noqa: E402
from calibrator_custom.config import load_input_config  # noqa: E402
from calibrator_custom.utils import image_preprocess_func  # noqa: E402
from calibrator_custom.pipeline.convert import L5_SAMPLES, convert  # noqa: E402
from calibrator_custom.pipeline.sensitivity import conv_macs  # noqa: E402
from calibrator_custom.quant.planner import PlanInputs  # noqa: E402

CONFIGS = ("L1", "L2", "L3", "L4", "L5", "ALL_INT16")
VENDOR_DIR = SHARED / "vendor_sdk"
#: shared models the vendor's SDK 1.1.5 does not take here (docs/model_format.md, tests/test_vendor_fixed_models.py)
VENDOR_NOT_RUN = {
    "palm_detection_lite": "refused: the vendor's convert_tool crashes (SIGSEGV in SGS_ReplaceMatchingOpTypes)",
    "pose_detection": "refused: the vendor's convert_tool crashes (SIGSEGV after the graph dump)",
    "pose_detection.fp16": "refused: the vendor's convert_tool fails (DENSIFY: 'weight is variable tensor')",
    "face_detection_short_range.fp16": "refused: the vendor's convert_tool has no DEQUANTIZE",
}
#: shared models whose float.sim the vendor's converter makes but whose L1 calibration does not finish
#: (docs/vendor_fixed_point.md): our L2 is still written in the vendor's dialect and checked
VENDOR_L1_NOT_RUN = {
    "hand_landmark_lite": "too slow: the vendor's L1 calibration loops in infect_quant_domain (25 CPU minutes "
                          "observed)",
}
VENDOR_PRE = ("import cv2, numpy as np\n"
              "def image_preprocess(img_path, norm=True):\n"
              "    img = cv2.resize(cv2.imread(img_path)[:, :, ::-1], ({w}, {h})).astype(np.float32)\n"
              "    return ((img - {mean}) / {std})[None] if norm else np.round(img).astype(np.uint8)[None]\n")
N_VENDOR_CHECK = 2


def vendor_oracle():
    """(the SDK's harness/oracle module, None), or (None, why the vendor columns are skipped)."""
    import os
    if not (VENDOR_DIR / "harness" / "oracle.py").is_file():
        return None, f"the vendor SDK is not here ({VENDOR_DIR} is absent)"
    venv = Path(os.environ.get("SGS_ORACLE_VENV") or Path.home() / ".cache/sgs_oracle/venv")
    if not (venv / "bin" / "python").exists():
        return None, f"the vendor SDK is not set up (no venv at {venv}); run: bash {VENDOR_DIR}/setup.sh"
    sys.path.insert(0, str(VENDOR_DIR / "harness"))
    try:
        import oracle
    except Exception as e:  # noqa: BLE001 - any import failure means no oracle
        return None, f"cannot import the vendor oracle from {VENDOR_DIR / 'harness'}: {e}"
    return oracle, None


def vendor_ini_text(sim, mean: float, std: float) -> str:
    """An input_config.ini in the SDK 1.1.5 style (mean_red/mean_green/mean_blue)."""
    ins = [d["name"] for d in sim.get_input_details()]
    outs = [d["name"] for d in sim.get_output_details()]
    return ("[INPUT_CONFIG]\n"
            f"inputs='{','.join(ins)}';\n"
            "input_formats='RGB';\ntraining_input_formats='RGB';\nquantizations='TRUE';\n"
            f"mean_red={mean};\nmean_green={mean};\nmean_blue={mean};\nstd_value={std};\n"
            "[OUTPUT_CONFIG]\n"
            f"outputs='{','.join(outs)}';\n"
            f"dequantizations='{','.join(['TRUE'] * len(outs))}';\n")


def write_ini(path: Path, sim, mean: float, std: float, conv: str | None = None) -> Path:
    ins = sim.get_input_details()
    outs = sim.get_output_details()
    text = ["[INPUT_CONFIG]", "inputs=" + ",".join(d["name"] for d in ins) + ";",
            "training_input_formats=RGB;", "input_formats=RGB;", "quantizations=TRUE;",
            f"mean={mean}:{mean}:{mean};", f"std_value={std};",
            "[OUTPUT_CONFIG]", "outputs=" + ",".join(d["name"] for d in outs) + ";",
            "dequantizations=" + ",".join("TRUE" for _ in outs) + ";"]
    if conv:
        text += ["[CONV_CONFIG]", f"input_format={conv};"]
    path.write_text("\n".join(text) + "\n")
    return path


def sqnr_db(ref: list[np.ndarray], test: list[np.ndarray]) -> float:
    sig = sum(float(np.sum(np.square(r.astype(np.float64)))) for r in ref)
    err = sum(float(np.sum(np.square(r.astype(np.float64) - t.astype(np.float64)))) for r, t in zip(ref, test))
    return float("inf") if err == 0 else 10 * np.log10(max(sig, 1e-30) / err)


def worst_sqnr(ref_runs, test_runs) -> float:
    n = len(ref_runs[0])
    return min(sqnr_db([r[k] for r in ref_runs], [t[k] for t in test_runs]) for k in range(n))


@dataclass
class Row:
    model: str
    config: str
    worst_db: float
    mac16_share: float
    convert_s: float
    fixed_ms: float
    float_ms: float


def _run(sim, feeds_list) -> tuple[list[list[np.ndarray]], float]:
    outs = []
    t0 = time.perf_counter()
    for feeds in feeds_list:
        for k, x in enumerate(feeds):
            sim.set_input(k, x)
        sim.invoke()
        outs.append([sim.get_output(k).astype(np.float32) for k in range(len(sim.get_output_details()))])
    return outs, 1000 * (time.perf_counter() - t0) / max(1, len(feeds_list))


def benchmark_model(path: Path, configs, n_calib: int, n_eval: int, with_tflite: bool,
                    num_process: int = 1, vendor=None) -> tuple[list[Row], dict]:
    """``vendor``: None (no vendor columns), or (oracle module or None, reason it is None)."""
    name = path.name[: -len(".tflite")]
    base = name.replace(".fp16", "")
    pre = image_preprocess_func(base)
    module = sys.modules[pre.__module__]
    mean, std = float(module.MEAN), float(module.STD)
    photos = sorted(IMAGES_DIR.glob("*.jpg"))
    calib_paths, eval_paths = photos[:30][:n_calib], photos[30:][:n_eval]
    fsim = calibrator_custom.float_simulator(path)
    calib = [[pre(str(p), norm=True)] for p in calib_paths]
    evals_f = [[pre(str(p), norm=True)] for p in eval_paths]
    evals_raw = [[pre(str(p), norm=False)] for p in eval_paths]
    ref, float_ms = _run(fsim, evals_f)
    _, calib_ms = _run(fsim, calib)
    float_pass_s = calib_ms * len(calib) / 1000
    t0 = time.perf_counter()
    stats = collect_stats_arrays(path, calib)
    stats_s = time.perf_counter() - t0
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="cc_bench_"))
    for cfg in configs:
        conv = "ALL_INT16" if cfg == "ALL_INT16" else None
        level = "L2" if cfg == "ALL_INT16" else cfg
        ini = write_ini(tmp / f"{cfg}.ini", fsim, mean, std, conv)
        out = tmp / f"{name}_{cfg}_fixed.sim"
        t0 = time.perf_counter()
        fixed = convert(path, ini, stats, quant_level=level, calibration_feeds=calib[:L5_SAMPLES], output_path=out,
                        num_process=num_process)
        convert_s = time.perf_counter() - t0
        pi = PlanInputs.create(fsim.model_obj, stats, load_input_config(ini, fsim.model_obj))
        macs = conv_macs(pi)
        share = _mac16_share(fixed, pi, macs)
        xsim = calibrator_custom.fixed_simulator(out)
        got, fixed_ms = _run(xsim, evals_raw)
        rows.append(Row(name, cfg, worst_sqnr(ref, got), share, convert_s, fixed_ms, float_ms))
        print(f"  {name} {cfg}: {rows[-1].worst_db:.2f} dB, 16-bit MACs {share:.1%}, convert {convert_s:.1f} s, "
              f"fixed {fixed_ms:.1f} ms vs float {float_ms:.1f} ms", file=sys.stderr)
    tfl = {}
    if with_tflite:
        import tflite_ptq as tp
        data, _ = tp._quantizable_bytes(path)
        for mode in ("int8", "16x8"):
            q = tp.quantize_tflite(data, calib, mode)
            got = tp.run_tflite_many(q, evals_f)
            tfl[mode] = worst_sqnr(ref, got)
    if vendor is not None:
        oracle, why = vendor
        if oracle is None:
            tfl["vendor_note"] = why
        elif name in VENDOR_NOT_RUN:
            tfl["vendor_note"] = VENDOR_NOT_RUN[name]
        else:
            tfl.update(benchmark_vendor(oracle, path, name, fsim, mean, std, calib_paths, calib, evals_raw, ref,
                                        tmp, with_l2=True, with_l1=name not in VENDOR_L1_NOT_RUN,
                                        with_l5="L5" in configs, with_all16="ALL_INT16" in configs))
    return rows, {"stats_s": stats_s, "float_pass_s": float_pass_s, **tfl}


def _aligned(sim, runs, ref_sim, ref_runs) -> list[list[np.ndarray]]:
    """``runs`` of ``sim`` in ``ref_sim``'s output order (by name), trimmed to the reference shapes
    (the vendor's fixed outputs are padded on the last dimension)."""
    names = [d["name"] for d in sim.get_output_details()]
    order = [names.index(d["name"]) if d["name"] in names else k for k, d in enumerate(ref_sim.get_output_details())]
    out = []
    for run, ref in zip(runs, ref_runs):
        row = []
        for k, r in zip(order, ref):
            y = run[k]
            y = y[tuple(slice(0, n) for n in r.shape)] if y.ndim == r.ndim else y.reshape(-1)[: r.size].reshape(r.shape)
            row.append(y)
        out.append(row)
    return out


def _check_vendor_codes(oracle, fixed_path: Path, sim, evals_raw, label: str) -> str:
    """The vendor's sgs_simulator_fixed on the first photos must give our fixed_simulator's codes."""
    compared = 0
    for feeds in evals_raw[:N_VENDOR_CHECK]:
        ref = oracle.fixed_sim(str(fixed_path), feeds[0])
        for k, x in enumerate(feeds):
            sim.set_input(k, x)
        sim.invoke()
        for k, od in enumerate(sim.get_output_details()):
            r = ref[od["name"]]
            y = sim.get_output(k)[tuple(slice(0, n) for n in r.shape)]
            assert y.shape == r.shape, f"{label}, output {od['name']}: shape {y.shape} vs the vendor's {r.shape}"
            scale = od["quantization"][0]
            lsb = np.abs(np.round(y.astype(np.float64) / scale) - np.round(r / scale))
            assert lsb.max() == 0, (f"{label}, output {od['name']}: {int((lsb > 0).sum())}/{lsb.size} codes differ "
                                    "from the vendor's sgs_simulator_fixed")
            compared += r.size
    msg = (f"  {label}: vendor sgs_simulator_fixed == our fixed_simulator, code for code, on "
           f"{min(N_VENDOR_CHECK, len(evals_raw))} photos ({compared} values)")
    print(msg, file=sys.stderr)
    return msg


def benchmark_vendor(oracle, path: Path, name: str, fsim, mean: float, std: float, calib_paths, calib,
                     evals_raw, ref, tmp: Path, with_l2: bool, with_l1: bool = True, with_l5: bool = False,
                     with_all16: bool = False) -> dict:
    """The vendor's own L1 and our L2 in the vendor's dialect (synthesized from the vendor's float.sim, as
    ``convert`` writes it by default), simulated by our fixed_simulator."""
    from calibrator_custom.errors import CalibratorError
    folder = tmp / "vendor"
    folder.mkdir()
    ini = folder / "input_config.ini"
    ini.write_text(vendor_ini_text(fsim, mean, std))
    t0 = time.perf_counter()
    try:
        float_sim = Path(oracle.convert_tflite(str(path), str(ini), str(folder / f"{name}_float.sim")))
    except oracle.OracleError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if "Error" in ln or "Assert" in ln]
        return {"vendor_note": f"refused by the vendor's convert_tool: {lines[-1] if lines else str(e)[:200]}"}
    checks = []
    res = {"checks": checks}
    if with_l1:
        images = folder / "images"
        images.mkdir()
        for p in calib_paths:
            (images / p.name).write_bytes(p.read_bytes())
        _, h, w, _ = (int(v) for v in fsim.get_input_details()[0]["shape"])
        pre = folder / "pre.py"
        pre.write_text(VENDOR_PRE.format(w=w, h=h, mean=mean, std=std))
        fixed_path = Path(oracle.calibrate_l1(str(float_sim), str(images), str(pre), str(ini),
                                              str(folder / f"{name}_fixed.sim")))
        vendor_s = time.perf_counter() - t0
        xsim = calibrator_custom.fixed_simulator(fixed_path)
        checks.append(_check_vendor_codes(oracle, fixed_path, xsim, evals_raw, f"{name} vendor L1"))
        got, _ = _run(xsim, evals_raw)
        res.update({"vendor_L1": worst_sqnr(ref, _aligned(xsim, got, fsim, ref)), "vendor_s": vendor_s})
        print(f"  {name} vendor L1: {res['vendor_L1']:.2f} dB (vendor convert + calibration {vendor_s:.1f} s)",
              file=sys.stderr)
    else:
        res["vendor_note"] = VENDOR_L1_NOT_RUN[name]
    if not with_l2:
        return res
    vsim = calibrator_custom.float_simulator(float_sim)
    stats = collect_stats_arrays(float_sim, calib)
    our_ini = write_ini(folder / "ours.ini", vsim, mean, std)
    out = folder / f"{name}_L2_vendor_fixed.sim"
    _, vendor_float_ms = _run(vsim, calib)
    res["vendor_float_pass_s"] = vendor_float_ms * len(calib) / 1000
    try:
        t0 = time.perf_counter()
        convert(float_sim, our_ini, stats, quant_level="L2", calibration_feeds=calib[:L5_SAMPLES], output_path=out,
                fixed_dialect="vendor", **_equalizing(calib))
        res["vendor_L2_s"] = time.perf_counter() - t0
    except CalibratorError as e:
        res["vendor_L2_note"] = f"our vendor-dialect writer refused L2: {e}"
        print(f"  {name} L2 vendor dialect: {res['vendor_L2_note']}", file=sys.stderr)
        return res
    lsim = calibrator_custom.fixed_simulator(out)
    checks.append(_check_vendor_codes(oracle, out, lsim, evals_raw, f"{name} L2 vendor dialect"))
    got, _ = _run(lsim, evals_raw)
    res["vendor_L2"] = worst_sqnr(ref, _aligned(lsim, got, fsim, ref))
    print(f"  {name} L2 vendor dialect: {res['vendor_L2']:.2f} dB", file=sys.stderr)
    if with_l5:
        out = folder / f"{name}_L5_vendor8_fixed.sim"
        convert(float_sim, our_ini, stats, quant_level="L5", calibration_feeds=calib[:L5_SAMPLES], output_path=out,
                fixed_dialect="vendor", vendor_int16_convs=False, **_equalizing(calib))
        lsim = calibrator_custom.fixed_simulator(out)
        checks.append(_check_vendor_codes(oracle, out, lsim, evals_raw, f"{name} L5 vendor dialect (8-bit convs)"))
        got, _ = _run(lsim, evals_raw)
        res["vendor_L5_8"] = worst_sqnr(ref, _aligned(lsim, got, fsim, ref))
        print(f"  {name} L5 vendor dialect (vendor_int16_convs=False, 8-bit convs): {res['vendor_L5_8']:.2f} dB",
              file=sys.stderr)
        res.update(_vendor_16bit(oracle, float_sim, our_ini, stats, calib, evals_raw, ref, fsim, folder, name, checks))
    if with_all16:
        ini16 = write_ini(folder / "ours_all_int16.ini", vsim, mean, std, "ALL_INT16")
        res.update(_vendor_16bit(oracle, float_sim, ini16, stats, calib, evals_raw, ref, fsim, folder, name, checks,
                                 level="L2", key="vendor_ALL_INT16"))
    return res


#: ``--no-equalize``: the vendor-dialect conversions without channel equalization (for comparison)
EQUALIZE = True


def _equalizing(calib) -> dict:
    """``convert``'s keywords for the vendor dialect: the equalized model's statistics on the same photos (as the
    ``calibrator`` command passes them), unless ``--no-equalize``."""
    if not EQUALIZE:
        return {"equalize_channels": False}
    return {"statistics_of": lambda path: collect_stats_arrays(path, calib)}


def _vendor_16bit(oracle, float_sim, our_ini, stats, calib, evals_raw, ref, fsim, folder: Path, name: str,
                  checks: list, level: str = "L5", key: str = "vendor_L5") -> dict:
    """Our ``level`` (with ``our_ini``'s CONV_CONFIG) in the vendor's dialect as ``convert`` writes it by
    default (its 16-bit convs carried where the dialect can): the worst-output SQNR (``key``), the conv MACs
    at 16 bit in the written file (``key``_mac16), and whether the vendor's compiler takes it and its
    simulator agrees (reported)."""
    from calibrator_custom.errors import CalibratorError
    from calibrator_custom.model.graph import load_model
    label = f"{name} {key[len('vendor_'):]} vendor dialect (default: 16-bit convs carried)"
    out = folder / f"{name}_{key}_vendor16_fixed.sim"
    try:
        t0 = time.perf_counter()
        convert(float_sim, our_ini, stats, quant_level=level, calibration_feeds=calib[:L5_SAMPLES], output_path=out,
                fixed_dialect="vendor", **_equalizing(calib))
        convert_s = time.perf_counter() - t0
    except CalibratorError as e:
        return {f"{key}_note": f"our vendor-dialect writer refused {key[len('vendor_'):]}: {e}"}
    share = _file_mac16_share(load_model(out))
    try:
        oracle.compile_offline(str(out), str(folder / f"{name}_{key}_vendor16_offline.sim"))
        compiled = "compiles"
    except oracle.OracleError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if "ssert" in ln]
        compiled = f"REFUSED by the vendor's compiler ({lines[0][:120] if lines else 'no message'})"
    lsim = calibrator_custom.fixed_simulator(out)
    try:
        agree = _check_vendor_codes(oracle, out, lsim, evals_raw, label)
    except AssertionError as e:
        agree = f"  {label}: NOT bit-exact with the vendor's simulator: {e}"
    except oracle.OracleError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if "ssert" in ln]
        agree = f"  {label}: REFUSED by the vendor's simulator ({lines[0][:120] if lines else 'no message'})"
    checks.append(agree + f"; {compiled}")
    got, _ = _run(lsim, evals_raw)
    db = worst_sqnr(ref, _aligned(lsim, got, fsim, ref))
    print(f"  {label}: {db:.2f} dB, {share:.1%} of conv MACs at 16 bit, convert {convert_s:.1f} s", file=sys.stderr)
    return {key: db, f"{key}_mac16": share, f"{key}_s": convert_s}


def _file_mac16_share(fixed) -> float:
    """The share of a fixed file's conv multiply-accumulates in its convs with INT16 weights."""
    g = fixed.main
    total = at16 = 0
    for op in g.operators:
        kind = fixed.op_name(op)
        if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        w, y = g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        if kind == "CONV_2D":  # weights [C_out, kh, kw, C_in]
            n = int(np.prod(y.shape[:-1])) * int(np.prod(w.shape))
        else:  # weights [1, kh, kw, C]
            n = int(np.prod(y.shape)) * int(np.prod(w.shape[1:3]))
        total += n
        at16 += n if w.dtype == "INT16" else 0
    return at16 / (total or 1)


def _mac16_share(fixed, pi, macs) -> float:
    g = fixed.main
    total = sum(macs.values()) or 1
    names = {t.name: t for t in g.tensors}
    at16 = 0
    for c in pi.convs:
        w = names.get(pi.graph.tensors[c.weights].name)
        if w is not None and w.dtype == "INT16":
            at16 += macs.get(c.op_index, 0)
    return at16 / total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", help="model file names without .tflite (default: all shared models)")
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--calib", type=int, default=30)
    ap.add_argument("--eval", type=int, default=30)
    ap.add_argument("--no-tflite", action="store_true")
    ap.add_argument("--num-process", type=int, default=1, help="convert(num_process=...): L5's measurement workers")
    ap.add_argument("--vendor", action="store_true",
                    help="add the vendor's own L1 and our L2 in the vendor's dialect (needs ../shared/vendor_sdk)")
    ap.add_argument("--no-equalize", action="store_true",
                    help="with --vendor: our levels in the vendor's dialect without channel equalization")
    args = ap.parse_args(argv)
    global EQUALIZE
    EQUALIZE = not args.no_equalize
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not MODELS_DIR.is_dir():
        print(f"{MODELS_DIR} not found: the benchmark needs ../shared", file=sys.stderr)
        return 1
    paths = ([MODELS_DIR / f"{m}.tflite" for m in args.models] if args.models
             else sorted(MODELS_DIR.glob("*.tflite")))
    vendor = None
    if args.vendor:
        vendor = vendor_oracle()
        if vendor[0] is None:
            print(f"vendor columns skipped: {vendor[1]}", file=sys.stderr)
    all_rows, refs = [], {}
    for p in paths:
        rows, extra = benchmark_model(p, args.configs, args.calib, args.eval, not args.no_tflite, args.num_process,
                                      vendor)
        all_rows += rows
        refs[rows[0].model] = extra
    print(f"calibration: first {args.calib} photos; evaluation: {args.eval} other photos; SQNR = worst output, dB"
          + (f"; vendor dialect {'with' if EQUALIZE else 'without'} channel equalization" if args.vendor else ""))
    print(f"{'model':<36} {'config':<9} {'SQNR dB':>8} {'TFL int8':>8} {'TFL 16x8':>8} {'16b MACs':>8} "
          + (f"{'vendor L1':>9} {'L2 vendor':>9} {'L5v 8b':>9} {'L5 vendor':>9} {'16b MACs':>8} {'A16 vendor':>10} "
             f"{'16b MACs':>8} " if args.vendor
             else "")
          + f"{'conv s':>7} {'fixed/float time':>16}")
    nan = float("nan")
    for r in all_rows:
        e = refs[r.model]
        vcols = (f"{e.get('vendor_L1', nan):9.2f} {e.get('vendor_L2', nan):9.2f} {e.get('vendor_L5_8', nan):9.2f} "
                 f"{e.get('vendor_L5', nan):9.2f} {e.get('vendor_L5_mac16', nan):8.1%} "
                 f"{e.get('vendor_ALL_INT16', nan):10.2f} {e.get('vendor_ALL_INT16_mac16', nan):8.1%} ") if args.vendor else ""
        print(f"{r.model:<36} {r.config:<9} {r.worst_db:8.2f} {e.get('int8', float('nan')):8.2f} "
              f"{e.get('16x8', float('nan')):8.2f} {r.mac16_share:8.1%} {vcols}{r.convert_s:7.1f} "
              f"{r.fixed_ms / r.float_ms:8.2f} ({r.fixed_ms:.0f}/{r.float_ms:.0f} ms)")
    if args.vendor:
        print("\nvendor columns (vendor L1: the vendor's convert_tool + sgs_calibrator L1 on the same calibration "
              "photos; L2 vendor: our L2 written in the vendor's fixed dialect, synthesized from the vendor's "
              "float.sim with no vendor fixed file, as convert writes it by default; both simulated by our "
              "fixed_simulator):")
        for m, e in refs.items():
            for c in e.get("checks", []):
                print(c)
            if "vendor_note" in e:
                print(f"  {m}: {e['vendor_note']}")
            for key in ("vendor_L2_note", "vendor_L5_note", "vendor_ALL_INT16_note"):
                if key in e:
                    print(f"  {m}: {e[key]}")
            if "vendor_s" in e:
                print(f"  {m}: vendor convert + L1 calibration {e['vendor_s']:.1f} s")
    print("\ntargets:")
    for m, e in refs.items():
        rows = {r.config: r for r in all_rows if r.model == m}
        checks = []
        if "L2" in rows and "int8" in e:
            checks.append(f"L2>int8 {'MET' if rows['L2'].worst_db > e['int8'] else 'MISSED'}")
        if "L2" in rows and "vendor_L1" in e:
            checks.append(f"L2>vendor L1 {'MET' if rows['L2'].worst_db > e['vendor_L1'] else 'MISSED'}")
        if "vendor_L2" in e and "vendor_L1" in e:
            checks.append(f"L2 vendor>vendor L1 {'MET' if e['vendor_L2'] > e['vendor_L1'] else 'MISSED'}")
        if "vendor_L2" in e and "int8" in e:
            checks.append(f"L2 vendor>int8 {'MET' if e['vendor_L2'] > e['int8'] else 'MISSED'}")
        if "vendor_L5_8" in e and "vendor_L2" in e:
            checks.append(f"L5v 8b>=L2 vendor {'MET' if e['vendor_L5_8'] >= e['vendor_L2'] else 'MISSED'}")
        if "vendor_L5" in e and "16x8" in e:
            ok = e["vendor_L5"] >= e["16x8"] - 1 and e["vendor_L5_mac16"] <= 0.25
            checks.append(f"L5 vendor>=16x8-1dB&<=25% {'MET' if ok else 'MISSED'} ({e['vendor_L5'] - e['16x8']:+.2f} dB)")
        if "L5" in rows and "16x8" in e:
            ok = rows["L5"].worst_db >= e["16x8"] and rows["L5"].mac16_share <= 0.25
            checks.append(f"L5>=16x8&<=25% {'MET' if ok else 'MISSED'} ({rows['L5'].worst_db - e['16x8']:+.2f} dB)")
        if "vendor_L5_s" in e and "vendor_L2_s" in e:
            budget = 5 * e["vendor_L2_s"] + 3 * e["vendor_float_pass_s"]
            ok = e["vendor_L5_s"] <= budget
            checks.append(f"L5 vendor time<=5xL2 vendor+3 float passes {'MET' if ok else 'MISSED'} "
                          f"({e['vendor_L5_s']:.1f} s vs {budget:.1f} s)")
        if "L5" in rows and "L2" in rows:
            budget = 5 * rows["L2"].convert_s + 3 * e["float_pass_s"]
            ok = rows["L5"].convert_s <= budget
            checks.append(f"L5 time<=5xL2+3 float passes {'MET' if ok else 'MISSED'} "
                          f"({rows['L5'].convert_s:.1f} s vs {budget:.1f} s)")
        if "ALL_INT16" in rows and "16x8" in e:
            checks.append(f"ALL_INT16>16x8 {'MET' if rows['ALL_INT16'].worst_db > e['16x8'] else 'MISSED'}")
        worst_ratio = max(r.fixed_ms / r.float_ms for r in rows.values())
        checks.append(f"time<=2x {'MET' if worst_ratio <= 2 else 'MISSED'} ({worst_ratio:.2f})")
        print(f"  {m}: stats {e['stats_s']:.1f} s, float pass {e['float_pass_s']:.1f} s; " + "; ".join(checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
