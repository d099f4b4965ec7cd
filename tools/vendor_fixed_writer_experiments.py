#!/usr/bin/env python3
"""Rerun the experiments behind "Writing the vendor's fixed dialect" (docs/model_format.md).

Needs ../shared/vendor_sdk (set up). Vendor-made files go to the oracle cache (never committed).

    PYTHONPATH=. python tools/vendor_fixed_writer_experiments.py [ablate|size|ranges|perchannel|all]

- ablate: a vendor L1 fixed.sim with one slot removed (its vtable entry set to 0, so the field reads
  as absent; no byte moves): what the vendor's fixed simulator and compiler say.
- size: the same file with 8 zero bytes appended: the compiler's size check.
- ranges: two L1 calibrations of one model with different ranges: which objects' bytes differ.
- perchannel: per-channel weight scales carried by the bias row 1 (the per-channel multipliers).
"""
from __future__ import annotations

import struct
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import vendor_fixed_oracle as vo  # noqa: E402
from calibrator_custom.model.graph import load_model  # noqa: E402
from calibrator_custom.vendor_fixed.sim_patch import SimLayout  # noqa: E402
from test_vendor_fixed_ops import _conv_chain  # noqa: E402

CHAIN = (25, 16, 32, 40, 3, 1, "SAME")  # x -> 1x1 conv 3->32 -> 3x3 conv 32->40 -> 1x1 conv 40->4


def _fixed(factors=(1.0, 1.0)):
    b, ranges, _, _ = _conv_chain(*CHAIN)
    ranges = {k: (lo * factors[0], hi * factors[1]) for k, (lo, hi) in ranges.items()}
    return vo.make_fixed(b, ranges, vo.ini_text(["x"], ["c3"]), f"writer_exp_{factors[0]}_{factors[1]}")


def _try(path: Path, x) -> tuple[str, str]:
    return vo.vendor_verdicts(path, x)


def _vtable(data: bytes, table: int) -> tuple[int, int]:
    v = table - struct.unpack_from("<i", data, table)[0]
    return v, (struct.unpack_from("<H", data, v)[0] - 4) // 2


def ablate() -> None:
    src = _fixed()
    data = src.read_bytes()
    lay = SimLayout(data)
    x = np.random.default_rng(0).integers(0, 256, (1, 16, 16, 3)).astype(np.uint8)
    ref = vo.oracle().fixed_sim(str(src), x)["c3"]
    groups = {"Tensor": lay.tensors, "Operator": lay.operators, "SubGraph": [lay.subgraph]}
    u32 = lambda p: struct.unpack_from("<I", data, p)[0]  # noqa: E731
    opts = []
    for o in lay.operators:
        v, n = _vtable(data, o)
        off = struct.unpack_from("<H", data, v + 4 + 8)[0]
        opts.append(o + off + u32(o + off))
    groups["Conv2DOptions"] = opts
    with tempfile.TemporaryDirectory() as d:
        for group, tables in groups.items():
            slots = range(5, 11) if group != "Conv2DOptions" else range(10, 42)
            for slot in slots:
                buf = bytearray(data)
                hit = False
                for t in tables:
                    v, n = _vtable(data, t)
                    if slot < n and struct.unpack_from("<H", data, v + 4 + 2 * slot)[0]:
                        struct.pack_into("<H", buf, v + 4 + 2 * slot, 0)
                        hit = True
                if not hit:
                    continue
                p = Path(d) / "ablated_fixed.sim"
                p.write_bytes(bytes(buf))
                sim, comp = _try(p, x)
                if sim == "runs":
                    y = vo.oracle().fixed_sim(str(p), x)["c3"]
                    sim = "runs, same outputs" if np.array_equal(y, ref) else \
                        f"runs, outputs differ by up to {np.abs(y - ref).max():.4g}"
                print(f"{group} slot {slot} removed: simulator {sim}; compiler {comp}")


def size() -> None:
    src = _fixed()
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "padded_fixed.sim"
        p.write_bytes(src.read_bytes() + bytes(8))
        x = np.zeros((1, 16, 16, 3), np.uint8)
        print("as made by the vendor:", _try(src, x))
        print("with 8 zero bytes appended:", _try(p, x))


def _owners(data: bytes) -> list[tuple[int, int, str]]:
    """(start, end, kind) of the objects the writer patches."""
    lay = SimLayout(data)
    out = []
    for i in range(len(lay.tensors)):
        for slot, kind, size in ((0, "quantization min", 4), (1, "quantization max", 4),
                                 (2, "quantization scale", 4), (3, "quantization zero point", 8),
                                 (4, "accumulator max", 8), (5, "accumulator min", 8)):
            v = lay.quant_vector(i, slot)
            if v is not None:
                out.append((v.pos, v.pos + size * v.count, kind))
    for b in range(len(lay.buffers)):
        v = lay.buffer_data(b)
        if v is not None:
            out.append((v.pos, v.pos + v.count, "weight/bias buffer"))
    for j in range(len(lay.operators)):
        for slot in (35, 37):
            p = lay.option_scalar(j, slot)
            if p is not None:
                out.append((p, p + 4, f"Conv2DOptions slot {slot}"))
    v = lay.input_transform(0)
    if v is not None:
        out.append((v.pos, v.pos + 2 * v.count, "input pixel transform"))
    return out


def ranges() -> None:
    a, b = _fixed(), _fixed((1.7, 1.3))
    da, db = a.read_bytes(), b.read_bytes()
    print(f"sizes {len(da)} and {len(db)}")
    diff = np.nonzero(np.frombuffer(da, np.uint8) != np.frombuffer(db, np.uint8))[0]
    owners = _owners(da)
    kinds = Counter()
    for p in diff:
        kinds[next((k for s, e, k in owners if s <= p < e), "other")] += 1
    print(f"{diff.size} bytes differ:", dict(kinds))


def perchannel() -> None:
    """Does the vendor's fixed simulator honour per-channel weight scales carried by the bias row 1?

    The middle conv of a chain gets codes round(w_c / s_c) with s_c = max|w_c| / 127 and
    M_c = round(s_in * s_c / s_out * 2**N) (N, k as written); its bias rows follow. The vendor's
    simulator and ours run the patched file; both are compared with the float model."""
    import calibrator_custom
    from calibrator_custom.interpreter import Interpreter
    from calibrator_custom.vendor_fixed import pack
    from calibrator_custom.vendor_fixed import writer
    from test_vendor_fixed_writer import _our_channel_ranges
    template = _fixed()
    fl = load_model(template.with_name("m_float.sim"))
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (1, 16, 16, 3)).astype(np.uint8)
    xf = (x.astype(np.float32) - 127.5) / 127.5
    channels = _our_channel_ranges(template.with_name("m_float.sim"), xf)
    ranges = {k: (float(lo.min()), float(hi.max())) for k, (lo, hi) in channels.items()}
    base = writer.write(template.read_bytes(), fl, ranges, channels, (127.5,) * 3, 127.5)
    d0 = Path(tempfile.mkdtemp())
    src = d0 / "per_tensor_fixed.sim"
    src.write_bytes(base)
    data = bytearray(base)
    fx = load_model(src)
    lay = SimLayout(bytes(data))
    sg = fx.main
    j = 1
    op = sg.operators[j]
    ti, tw, tb, to = (sg.tensors[i] for i in (*op.inputs[:3], op.outputs[0]))
    w = np.frombuffer(fl.buffers[fl.main.tensors[op.inputs[1]].buffer].data, np.float32).reshape(tw.shape)
    bias = np.frombuffer(fl.buffers[fl.main.tensors[op.inputs[2]].buffer].data, np.float32).reshape(2, -1)[0]
    s_in, zp_in = ti.quantization.scale[0], ti.quantization.zero_point[0]
    s_out, zp_out = to.quantization.scale[0], to.quantization.zero_point[0]
    s_w = tw.quantization.scale[0]
    s_c = np.abs(w).reshape(len(w), -1).max(1) / 127.0
    codes = np.clip(np.round(w / s_c[:, None, None, None]), -127, 127).astype(np.int64)
    k = struct.unpack_from("<i", data, lay.option_scalar(j, 35))[0]
    nk = struct.unpack_from("<i", data, lay.option_scalar(j, 37))[0]
    n = nk + k
    m_c = s_in * s_c / s_out
    mult = np.round(m_c * 2.0 ** n).astype(np.int64)
    w_sum = codes.reshape(len(codes), -1).sum(1)
    bias_acc = bias / (s_in * s_c) - zp_in * w_sum + (zp_out / m_c if to.dtype == "UINT8" else 0)
    lo, hi = channels[fl.main.tensors[op.outputs[0]].name]
    acc = np.maximum(np.abs(hi / (s_in * s_c) + zp_in * w_sum - bias / (s_in * s_c)),
                     np.abs(lo / (s_in * s_c) + zp_in * w_sum - bias / (s_in * s_c)))
    need_k = pack.bias_shift(int(acc.max()), 0, bias_acc)
    print(f"per-channel scales {s_c.min():.4g}..{s_c.max():.4g} (tensor {s_w:.4g}); k {k}, needed {need_k}")
    k = max(k, need_k)
    struct.pack_into("<i", data, lay.option_scalar(j, 35), k)
    struct.pack_into("<i", data, lay.option_scalar(j, 37), n - k)
    acc_hi = (hi / (s_in * s_c) + zp_in * w_sum - bias / (s_in * s_c)).max()
    acc_lo = (lo / (s_in * s_c) + zp_in * w_sum - bias / (s_in * s_c)).min()
    struct.pack_into("<q", data, lay.quant_vector(op.outputs[0], 4).pos, max(0, int(acc_hi)))
    struct.pack_into("<q", data, lay.quant_vector(op.outputs[0], 5).pos, min(0, int(acc_lo)))
    row0 = np.floor(bias_acc / 2 ** k + 0.5).astype(np.int64)
    tin = struct.unpack_from("<i", data, lay.option_scalar(j, 10))[0] if lay.option_scalar(j, 10) else 16
    tout = struct.unpack_from("<i", data, lay.option_scalar(j, 12))[0] if lay.option_scalar(j, 12) else 16
    for buf, raw in ((tw.buffer, pack.pack_conv_weights(codes, tin, tout)), (tb.buffer, pack.pack_bias(row0, mult))):
        v = lay.buffer_data(buf)
        data[v.pos:v.pos + v.count] = raw + bytes(v.count - len(raw))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "perchannel_fixed.sim"
        p.write_bytes(bytes(data))
        ref_float = Interpreter(fl).run([xf])
        y_float = next(iter(ref_float.values())).astype(np.float64)
        vend = vo.oracle().fixed_sim(str(p), x)["c3"].reshape(y_float.shape)
        vend_t = vo.oracle().fixed_sim(str(src), x)["c3"].reshape(y_float.shape)
        sim = calibrator_custom.fixed_simulator(str(p))
        sim.set_input(0, x)
        sim.invoke()
        ours = sim.get_output(0)[..., :vend.shape[-1]].reshape(y_float.shape)
        from calibrator_custom.vendor_fixed import engine
        step = engine.prepare(load_model(p)).steps[j]
        print(f"  the middle conv as our engine reads it: k {step.bias_shift} (written {k}), N "
              f"{step.total_shift} (written {n}), weight codes differing from those written: "
              f"{int((np.asarray(step.w_code) != codes).sum())} of {codes.size}")
        def sqnr(a):
            return 10 * np.log10((y_float ** 2).sum() / ((a.reshape(y_float.shape) - y_float) ** 2).sum())
        print(f"  vendor simulator on the per-channel file vs our fixed_simulator: max |diff| "
              f"{np.abs(vend - ours).max():.3g} (ours reads the weight tiling and the shifts from the program)")
        print(f"  SQNR vs float (vendor simulator): per-tensor {sqnr(vend_t):.2f} dB, "
              f"per-channel {sqnr(vend):.2f} dB")


if __name__ == "__main__":
    reason = vo.vendor_missing_reason()
    if reason:
        sys.exit(reason)
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    for name, fn in (("ablate", ablate), ("size", size), ("ranges", ranges), ("perchannel", perchannel)):
        if which in (name, "all"):
            print(f"== {name}")
            fn()
