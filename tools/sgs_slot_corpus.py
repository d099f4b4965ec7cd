#!/usr/bin/env python3
"""Make the vendor files ``tools/sgs_slot_meanings.py`` checks its slot hypotheses on (needs the SDK).

    PYTHONPATH=. python tools/sgs_slot_corpus.py OUT_DIR [--chains N]

Builds, with our ModelBuilder, conv / depthwise / pool chains of varied shapes, kernels, strides and
paddings (``x -> 1x1 conv -> op under test -> 1x1 conv``) and the single-op models of
``tests/vendor_singleops.py``; converts each with the vendor's convert_tool and calibrates it with the
vendor's L1 calibrator on two photos (``OUT_DIR/<name>_float.sim``, ``_cmodel_float.sim``,
``_fixed.sim``). The files are vendor-made: never commit them. A model the vendor refuses is logged
and skipped.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from calibrator_custom.model.builder import ModelBuilder  # noqa: E402

log = logging.getLogger("sgs_slot_corpus")
SAME1 = {"padding": "SAME", "stride_w": 1, "stride_h": 1}
PRE = ("import cv2, numpy as np\n"
       "def image_preprocess(img_path, norm=True):\n"
       "    img = cv2.resize(cv2.imread(img_path)[:, :, ::-1], ({w}, {h})).astype(np.float32)\n"
       "    return ((img - 127.5) / 127.5)[None] if norm else np.round(img).astype(np.uint8)[None]\n")
INI = ("[INPUT_CONFIG]\ninputs=x;\ninput_formats=RGB;\ntraining_input_formats=RGB;\n"
       "mean_red=127.5;\nmean_green=127.5;\nmean_blue=127.5;\nstd_value=127.5;\n"
       "[OUTPUT_CONFIG]\noutputs={out};\ndequantizations=FALSE;\n")


def chain(seed: int, kind: str, side: int, cin: int, cout: int, k: int, stride: int, padding: str,
          width: int | None = None) -> ModelBuilder:
    """x [1, side, width, 3] -> 1x1 conv 3->cin -> the op under test -> 1x1 conv ->4 (output ``y``)."""
    g = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, side, width or side, 3))
    y = b.op("CONV_2D", [x, b.constant("w1", g.normal(size=(cin, 1, 1, 3)).astype(np.float32)),
                         b.constant("b1", (g.normal(size=cin) * 0.3).astype(np.float32))], SAME1, name="c1")
    opt = {"padding": padding, "stride_w": stride, "stride_h": stride}
    if kind == "conv":
        z = b.op("CONV_2D", [y, b.constant("w2", g.normal(size=(cout, k, k, cin)).astype(np.float32)),
                             b.constant("b2", g.normal(size=cout).astype(np.float32))], opt, name="c2")
        c = cout
    elif kind == "depthwise":
        z = b.op("DEPTHWISE_CONV_2D", [y, b.constant("w2", g.normal(size=(1, k, k, cin)).astype(np.float32)),
                                       b.constant("b2", g.normal(size=cin).astype(np.float32))],
                 {**opt, "depth_multiplier": 1}, name="c2")
        c = cin
    else:
        z = b.op(kind, [y], {**opt, "filter_width": k, "filter_height": k}, name="c2")
        c = cin
    o = b.op("CONV_2D", [z, b.constant("w3", g.normal(size=(4, 1, 1, c)).astype(np.float32)),
                         b.constant("b3", g.normal(size=4).astype(np.float32))], SAME1, name="y")
    b.output(o)
    return b


def chain_specs(n: int, seed: int = 7):
    """n varied (name, kwargs) chains: conv, depthwise and pools over sides, channels, kernels, strides."""
    g = np.random.default_rng(seed)
    kinds = ["conv"] * 5 + ["depthwise"] * 3 + ["MAX_POOL_2D", "AVERAGE_POOL_2D"]
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        side = int(g.choice([6, 8, 9, 12, 16, 20, 25, 33]))
        width = int(g.choice([side, side, int(g.choice([7, 10, 14, 24]))]))
        k = int(g.choice([1, 2, 3, 5] if kind != "conv" else [1, 3, 5]))
        if kind.endswith("POOL_2D"):
            k = max(k, 2)
        spec = dict(seed=100 + i, kind=kind, side=side, width=width, k=k,
                    cin=int(g.choice([3, 8, 16, 24, 40, 64])), cout=int(g.choice([4, 8, 24, 48, 80])),
                    stride=int(g.choice([1, 2])), padding=str(g.choice(["SAME", "VALID"])))
        out.append((f"chain{i:02d}_{kind.lower()}", spec))
    # non-square inputs for every windowed kind (a slot equal to OH or OW alone is told apart only so)
    for i, kind in enumerate(["MAX_POOL_2D", "AVERAGE_POOL_2D", "depthwise", "conv"] * 3):
        h, w = [(12, 20), (20, 12), (9, 16)][i // 4]
        spec = dict(seed=500 + i, kind=kind, side=h, width=w, k=[2, 3, 3][i // 4], cin=[8, 24, 40][i // 4],
                    cout=[8, 24, 48][i // 4], stride=[1, 2, 1][i // 4], padding=["SAME", "VALID", "SAME"][i // 4])
        out.append((f"rect{i:02d}_{kind.lower()}", spec))
    return out


def make(out_dir: Path, name: str, builder: ModelBuilder, images: list[Path]) -> bool:
    """builder -> vendor float.sim -> L1 cmodel_float.sim + fixed.sim in out_dir; False if refused."""
    sys.path.insert(0, str(ROOT.parent / "shared" / "vendor_sdk" / "harness"))
    import oracle  # noqa: PLC0415
    model = builder.build()
    g = model.subgraphs[0]
    shape = g.tensors[g.inputs[0]].shape
    outs = ",".join(g.tensors[i].name for i in g.outputs)
    work = out_dir / f"_work_{name}"
    (work / "images").mkdir(parents=True, exist_ok=True)
    for p in images:
        (work / "images" / p.name).write_bytes(p.read_bytes())
    model.save(work / "m.tflite")
    (work / "m.ini").write_text(INI.format(out=outs))
    (work / "pre.py").write_text(PRE.format(h=int(shape[1]), w=int(shape[2])))
    fl = out_dir / f"{name}_float.sim"
    try:
        oracle.convert_tflite(str(work / "m.tflite"), str(work / "m.ini"), str(fl))
        oracle.calibrate_l1(str(fl), str(work / "images"), str(work / "pre.py"), str(work / "m.ini"),
                            str(out_dir / f"{name}_fixed.sim"), workdir=str(work / "wd"))
    except oracle.OracleError as e:
        log.warning("%s: refused by the vendor's tools: %s", name, str(e).splitlines()[-1][:160])
        return False
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--chains", type=int, default=30)
    ap.add_argument("--no-single-ops", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(ROOT.parent / "shared" / "vendor_sdk" / "harness"))
    from images import calibration_images  # noqa: PLC0415
    images = calibration_images()[:2]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(name, (lambda s=spec: chain(**s))) for name, spec in chain_specs(args.chains)]
    if not args.no_single_ops:
        from vendor_singleops import CASES  # noqa: PLC0415
        jobs += [(f"op_{c}", CASES[c]) for c in sorted(CASES)]
    for name, build in jobs:
        if (args.out_dir / f"{name}_fixed.sim").exists():
            continue
        ok = make(args.out_dir, name, build(), images)
        log.info("%s: %s", name, "made" if ok else "refused")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
