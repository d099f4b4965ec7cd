"""Mutation fuzzing of model files through the public API (used by tests/test_model_fuzz.py).

A *seed* is a small valid model file (bytes) with what it takes to open it: ``float`` seeds are
run with ``float_simulator`` and ``calibrator`` (with the seed's input_config.ini), ``fixed`` seeds
with ``fixed_simulator``. A *mutator* turns a seed into a damaged file: byte-level mutators edit the
bytes; model-level mutators decode the seed with our codec, edit one field (an empty weight buffer,
an out-of-range tensor index, an op fed from a later op's output, a bad shape, bad fixed-model
metadata JSON, ...) and encode it again. Each case is then opened, fed and invoked; the only
acceptable outcomes are success and one of our error types (``calibrator_custom.errors``).

Every case is reproducible from ``(master seed, seed name, case number)`` alone:

    PYTHONPATH=$PWD python tests/modelfuzz.py MASTER_SEED SEED_NAME CASE   # replays one case, full traceback

Seeds: the builder models ``tiny_cnn``, ``tiny_branches`` and ``tiny_misc`` (float) and their fixed models
(converted by our converter); the shared real model ``face_detection_short_range.tflite``; and
``tiny_cnn`` converted by the vendor's convert_tool (``vendor_seeds``), which joins automatically
once the SDK oracle is set up and our reader loads the vendor's dialect (until then the reason is
in :data:`VENDOR_LEFT_OUT`).

To fuzz more kinds of files, append to :data:`SEED_SOURCES` a function ``(workdir) -> list[Seed]``
(or drop ``*.sim`` / ``*.tflite`` files into a folder named by the ``CALIB_FUZZ_SEED_DIRS``
environment variable, ``os.pathsep``-separated: float files are used as they are; a file that does
not load is left out with the reason logged). New mutators go in :data:`MODEL_MUTATORS` or
:data:`BYTE_MUTATORS`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import struct
import sys
import traceback
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

import calibrator_custom
from calibrator_custom.errors import CalibratorError
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import TENSOR_DTYPES, Model

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT.parent / "shared" / "models"
#: the shared real model used as a seed (small, one image input, detection-free)
REAL_MODEL = "face_detection_short_range.tflite"
#: inputs with more elements than this are not fed (a mutated shape must not exhaust the test's memory)
MAX_FEED_ELEMENTS = 1 << 20


@dataclass(frozen=True)
class Seed:
    """A valid model file to mutate: ``kind`` is ``'float'`` or ``'fixed'``; ``ini`` the float model's
    input_config.ini text (None: the calibrator is not exercised); ``weight`` how often it is drawn."""

    name: str
    data: bytes
    kind: str
    ini: str | None = None
    weight: float = 1.0


@dataclass
class Outcome:
    """What one case did: ``status`` is ``'ok'``, ``'error'`` (one of ours), ``'skipped'`` (the mutation
    could not be made, e.g. the codec refused to encode it) or ``'escaped'`` (any other exception)."""

    seed: str
    case: int
    mutations: list[str]
    status: str
    detail: str = ""


# ----------------------------------------------------------------------------------------------- seeds
CONV = {"padding": "SAME", "stride_w": 1, "stride_h": 1}


def _ini(inputs: str, formats: str, outputs: str, mean_std: bool) -> str:
    text = f"[INPUT_CONFIG]\ninputs={inputs};\ntraining_input_formats={formats};\ninput_formats={formats};\n"
    if mean_std:
        text += "mean=127.5:127.5:127.5;\nstd_value=127.5;\n"
    deq = ",".join("TRUE" for _ in outputs.split(","))
    return text + f"[OUTPUT_CONFIG]\noutputs={outputs};\ndequantizations={deq};\n"


def tiny_cnn() -> tuple[Model, str]:
    """image (1,8,8,3 RGB) -> CONV_2D relu -> DEPTHWISE_CONV_2D -> ADD const -> AVERAGE_POOL_2D
    -> RESHAPE -> FULLY_CONNECTED -> SOFTMAX -> ``prob`` (1,3)."""
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = b.input("image", (1, 8, 8, 3))
    c = b.op("CONV_2D", [x, b.constant("conv/w", rng.normal(size=(4, 3, 3, 3)).astype(np.float32)),
                         b.constant("conv/b", np.zeros(4, np.float32))],
             {**CONV, "fused_activation_function": "RELU"}, name="conv")
    d = b.op("DEPTHWISE_CONV_2D", [c, b.constant("dw/w", rng.normal(size=(1, 3, 3, 4)).astype(np.float32)),
                                   b.constant("dw/b", np.zeros(4, np.float32))],
             {**CONV, "depth_multiplier": 1}, name="dw")
    a = b.op("ADD", [d, b.constant("offset", np.ones(4, np.float32))], name="add")
    p = b.op("AVERAGE_POOL_2D", [a], {"padding": "VALID", "stride_w": 2, "stride_h": 2, "filter_width": 2,
                                      "filter_height": 2}, name="pool")
    r = b.op("RESHAPE", [p, b.constant("shape", np.array([1, 64], np.int32))], {"new_shape": [1, 64]},
             name="flat")
    f = b.op("FULLY_CONNECTED", [r, b.constant("fc/w", rng.normal(size=(3, 64)).astype(np.float32)),
                                 b.constant("fc/b", np.zeros(3, np.float32))], name="fc")
    b.output(b.op("SOFTMAX", [f], {"beta": 1.0}, name="prob"))
    return b.build(), _ini("image", "RGB", "prob", True)


def tiny_branches() -> tuple[Model, str]:
    """x (1,4,4,2 RAWDATA_F32) -> MUL const -> PAD -> CONCATENATION with LOGISTIC(x padded) -> MEAN
    -> ``m``; and x -> MAX_POOL_2D -> RESIZE_BILINEAR -> ``up`` (two outputs)."""
    rng = np.random.default_rng(1)
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 2))
    m = b.op("MUL", [x, b.constant("gain", rng.normal(size=(2,)).astype(np.float32))], name="mul")
    pad = b.op("PAD", [m, b.constant("pads", np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32))], name="pad")
    s = b.op("LOGISTIC", [pad], name="sig")
    cat = b.op("CONCATENATION", [pad, s], {"axis": 3}, name="cat")
    mean = b.op("MEAN", [cat, b.constant("axes", np.array([1, 2], np.int32))], {"keep_dims": True}, name="m")
    mp = b.op("MAX_POOL_2D", [x], {"padding": "SAME", "stride_w": 2, "stride_h": 2, "filter_width": 2,
                                   "filter_height": 2}, name="mp")
    up = b.op("RESIZE_BILINEAR", [mp, b.constant("size", np.array([4, 4], np.int32))], name="up")
    b.output(mean, up)
    return b.build(), _ini("x", "RAWDATA_F32_NHWC", "m,up", False)


def tiny_misc() -> tuple[Model, str]:
    """x (1,4,4,4 RAWDATA_F32) -> TRANSPOSE -> STRIDED_SLICE -> SPLIT in 2 -> SUB -> TANH -> GATHER
    -> RESHAPE -> CONCATENATION with its FULLY_CONNECTED -> ``y``; and x -> MEAN -> SOFTMAX -> ``s``."""
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 4))
    t = b.op("TRANSPOSE", [x, b.constant("perm", np.array([0, 2, 1, 3], np.int32))], name="t")
    sl = b.op("STRIDED_SLICE", [t, b.constant("begin", np.array([0, 0, 0, 0], np.int32)),
                                b.constant("end", np.array([1, 4, 4, 4], np.int32)),
                                b.constant("strides", np.array([1, 1, 2, 1], np.int32))], name="sl")
    a, c = b.op("SPLIT", [b.constant("split_axis", np.array(3, np.int32)), sl], {"num_splits": 2}, name="sp",
                num_outputs=2)
    d = b.op("SUB", [a, c], name="d")
    th = b.op("TANH", [d], name="th")
    g = b.op("GATHER", [th, b.constant("idx", np.array([1, 0], np.int32))], {"axis": 1}, name="g")
    r = b.op("RESHAPE", [g, b.constant("shape", np.array([1, 8], np.int32))], {"new_shape": [1, 8]}, name="r")
    fc = b.op("FULLY_CONNECTED", [r, b.constant("fc/w", rng.normal(size=(4, 8)).astype(np.float32)), None],
              name="fc")
    y = b.op("CONCATENATION", [r, fc], {"axis": 1}, name="y")
    m = b.op("MEAN", [x, b.constant("axes", np.array([1, 2], np.int32))], {"keep_dims": False}, name="m")
    b.output(y, b.op("SOFTMAX", [m], {"beta": 1.0}, name="s"))
    return b.build(), _ini("x", "RAWDATA_F32_NHWC", "y,s", False)


def _fixed_bytes(model: Model, ini_text: str, workdir: Path, name: str) -> bytes:
    """Convert ``model`` at L2 from the statistics of two random inputs (our own converter)."""
    from calibrator_custom.calib import Collector
    from calibrator_custom.pipeline.convert import convert

    ini = workdir / f"{name}.ini"
    ini.write_text(ini_text)
    path = workdir / f"{name}_float.sim"
    model.save(path)
    sim = calibrator_custom.float_simulator(path)
    collector = Collector()
    sim.add_observer(collector.observe)
    rng = np.random.default_rng(2)
    for _ in range(2):
        for k, d in enumerate(sim.get_input_details()):
            sim.set_input(k, rng.uniform(-1, 1, d["shape"]).astype(d["dtype"]))
        sim.invoke()
    stats = collector.finalize(model_sha256="", model_name=path.name)
    return convert(model, str(ini), stats, quant_level="L2").to_bytes()


def builder_seeds(workdir: Path) -> list[Seed]:
    """The builder models as float seeds, and their fixed models (converted here) as fixed seeds."""
    out = []
    for name, make in (("tiny_cnn", tiny_cnn), ("tiny_branches", tiny_branches), ("tiny_misc", tiny_misc)):
        model, ini = make()
        out.append(Seed(name, model.to_bytes(), "float", ini, weight=3.0))
        out.append(Seed(f"{name}_fixed", _fixed_bytes(model, ini, workdir, name), "fixed", None, weight=3.0))
    return out


def real_model_seeds(workdir: Path) -> list[Seed]:
    """The shared real model (float, one image input), drawn rarely: it takes ~10x longer to run."""
    path = MODELS_DIR / REAL_MODEL
    if not path.is_file():
        return []
    sim = calibrator_custom.float_simulator(path)
    ins = ",".join(d["name"] for d in sim.get_input_details())
    outs = ",".join(d["name"] for d in sim.get_output_details())
    return [Seed("face_detection", path.read_bytes(), "float", _ini(ins, "RGB", outs, True), weight=0.3)]


VENDOR_HARNESS = ROOT.parent / "shared" / "vendor_sdk" / "harness"
#: why the vendor seed is not available in this session (set by vendor_seeds)
VENDOR_LEFT_OUT: list[str] = []


def vendor_seeds(workdir: Path) -> list[Seed]:
    """``tiny_cnn`` converted by the vendor's convert_tool to a vendor float.sim (when the SDK oracle is set
    up and our reader loads the vendor's dialect; otherwise none, with the reason in VENDOR_LEFT_OUT)."""
    VENDOR_LEFT_OUT.clear()
    if not (VENDOR_HARNESS / "oracle.py").is_file():
        VENDOR_LEFT_OUT.append(f"vendor SDK oracle not found at {VENDOR_HARNESS}")
        return []
    sys.path.insert(0, str(VENDOR_HARNESS))
    try:
        import oracle

        model, _ = tiny_cnn()
        tflite = workdir / "vendor_tiny.tflite"
        model.save(tflite)
        ini = workdir / "vendor_tiny.ini"
        ini.write_text("[INPUT_CONFIG]\ninputs=image;\ninput_formats=RGB;\nquantizations=TRUE;\nmean_red=127.5;\n"
                       "mean_green=127.5;\nmean_blue=127.5;\nstd_value=127.5;\n[OUTPUT_CONFIG]\noutputs=prob;\n"
                       "dequantizations=TRUE;\n")
        out = oracle.convert_tflite(str(tflite), str(ini), str(workdir / "vendor_tiny_float.sim"))
        data = Path(out).read_bytes()
    except Exception as e:  # noqa: BLE001 - the SDK is optional here
        VENDOR_LEFT_OUT.append(f"the vendor convert_tool did not run ({type(e).__name__}: {str(e)[:200]})")
        return []
    finally:
        sys.path.remove(str(VENDOR_HARNESS))
    try:
        Model.from_bytes(data)
    except CalibratorError as e:
        VENDOR_LEFT_OUT.append(f"our reader does not load the vendor's float.sim yet ({str(e)[:200]})")
        return []
    return [Seed("vendor_tiny_cnn", data, "float", None, weight=1.0)]


def seed_dir_seeds(workdir: Path) -> list[Seed]:
    """Every ``*.sim`` / ``*.tflite`` in the folders of ``CALIB_FUZZ_SEED_DIRS`` (e.g. vendor files)."""
    from calibrator_custom.fixed.writer import read_fixed_metadata

    out = []
    for folder in filter(None, os.environ.get("CALIB_FUZZ_SEED_DIRS", "").split(os.pathsep)):
        for path in sorted([*Path(folder).glob("*.sim"), *Path(folder).glob("*.tflite")]):
            try:
                model = Model.from_bytes(path.read_bytes())
                kind = "fixed" if read_fixed_metadata(model) is not None else "float"
            except CalibratorError as e:
                log.warning("fuzz seed %s left out: %s", path, e)
                continue
            out.append(Seed(path.stem, path.read_bytes(), kind, None, weight=0.3))
    return out


#: functions ``(workdir) -> list[Seed]``; extend to fuzz other kinds of files
SEED_SOURCES: list[Callable[[Path], list[Seed]]] = [builder_seeds, real_model_seeds, vendor_seeds, seed_dir_seeds]


def load_seeds(workdir: Path) -> list[Seed]:
    return [s for source in SEED_SOURCES for s in source(workdir)]


# ---------------------------------------------------------------------------------- model-level mutators
class Skip(Exception):
    """This mutator does not apply to this model (e.g. a fixed-model mutator on a float model)."""


def _pick(rng: np.random.Generator, seq):
    if not len(seq):
        raise Skip("nothing to pick")
    return seq[int(rng.integers(len(seq)))]


def _weird_int(rng: np.random.Generator, n: int) -> int:
    return int(_pick(rng, [-1, -2, n, n + 1, n + 7, 2**31 - 1, -(2**31), int(rng.integers(-3, n + 3))]))


def _constants(m: Model) -> list[int]:
    return [i for i, t in enumerate(m.main.tensors) if 0 < t.buffer < len(m.buffers) and m.buffers[t.buffer].data]


def m_empty_buffer(rng, m: Model) -> str:
    i = _pick(rng, _constants(m))
    m.buffers[m.main.tensors[i].buffer].data = b""
    return f"empty buffer of tensor {i}"


def m_resize_buffer(rng, m: Model) -> str:
    i = _pick(rng, _constants(m))
    b = m.buffers[m.main.tensors[i].buffer]
    n = len(b.data)
    new = int(_pick(rng, [1, n - 1, n + 1, n // 2, 2 * n, int(rng.integers(0, 2 * n + 2))]))
    b.data = (bytes(b.data) * 3)[:new] if new <= 3 * n else bytes(new)
    return f"buffer of tensor {i}: {n} -> {new} bytes"


def m_const_value(rng, m: Model) -> str:
    """Rewrite a constant's values: extreme floats, or integers (shapes, axes, pads, sizes) out of range."""
    i = _pick(rng, _constants(m))
    t = m.main.tensors[i]
    b = m.buffers[t.buffer]
    dtype = TENSOR_DTYPES[t.dtype]
    arr = np.frombuffer(bytes(b.data), dtype).copy()
    j = int(rng.integers(arr.size))
    if dtype.kind == "f":
        arr[j] = _pick(rng, [np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0])
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        arr[j] = int(np.clip(_pick(rng, [-1, 0, -5, 3, 100, 4096, 2**15, 2**31 - 1, -(2**31)]), info.min, info.max))
    else:
        raise Skip(f"constant of type {t.dtype}")
    b.data = arr.tobytes()
    return f"tensor {i} {t.name!r} value {j} -> {arr[j]}"


def m_buffer_index(rng, m: Model) -> str:
    t = _pick(rng, m.main.tensors)
    t.buffer = _weird_int(rng, len(m.buffers)) if rng.random() < 0.5 else int(rng.integers(len(m.buffers)))
    return f"tensor {t.name!r} buffer -> {t.buffer}"


def m_op_input(rng, m: Model) -> str:
    k = int(rng.integers(len(m.main.operators)))
    op = m.main.operators[k]
    if not op.inputs:
        raise Skip("op without inputs")
    j = int(rng.integers(len(op.inputs)))
    nt = len(m.main.tensors)
    new = _weird_int(rng, nt) if rng.random() < 0.3 else int(rng.integers(-1, nt))
    op.inputs = op.inputs[:j] + (new,) + op.inputs[j + 1:]
    return f"op #{k} input {j} -> {new}"


def m_op_output(rng, m: Model) -> str:
    k = int(rng.integers(len(m.main.operators)))
    op = m.main.operators[k]
    if not op.outputs:
        raise Skip("op without outputs")
    j = int(rng.integers(len(op.outputs)))
    nt = len(m.main.tensors)
    new = _weird_int(rng, nt) if rng.random() < 0.3 else int(rng.integers(0, nt))
    op.outputs = op.outputs[:j] + (new,) + op.outputs[j + 1:]
    return f"op #{k} output {j} -> {new}"


def m_later_output(rng, m: Model) -> str:
    """Feed an op from the output of a later op (a cycle when the later op depends on it) or its own."""
    ops = m.main.operators
    k = int(rng.integers(len(ops)))
    later = _pick(rng, [o for j in range(k, len(ops)) for o in ops[j].outputs])
    op = ops[k]
    if not op.inputs:
        raise Skip("op without inputs")
    j = int(rng.integers(len(op.inputs)))
    op.inputs = op.inputs[:j] + (later,) + op.inputs[j + 1:]
    return f"op #{k} input {j} -> later output {later}"


def m_swap_inputs(rng, m: Model) -> str:
    ops = [(k, op) for k, op in enumerate(m.main.operators) if len(op.inputs) >= 2]
    k, op = _pick(rng, ops)
    a, b = (int(v) for v in rng.choice(len(op.inputs), 2, replace=False))
    ins = list(op.inputs)
    ins[a], ins[b] = ins[b], ins[a]
    op.inputs = tuple(ins)
    return f"op #{k} inputs {a} and {b} swapped"


def m_swap_ops(rng, m: Model) -> str:
    ops = m.main.operators
    if len(ops) < 2:
        raise Skip("one op")
    a, b = (int(v) for v in rng.choice(len(ops), 2, replace=False))
    ops[a], ops[b] = ops[b], ops[a]
    return f"ops #{a} and #{b} swapped"


def m_drop_op(rng, m: Model) -> str:
    k = int(rng.integers(len(m.main.operators)))
    del m.main.operators[k]
    return f"op #{k} removed"


def m_op_arity(rng, m: Model) -> str:
    k = int(rng.integers(len(m.main.operators)))
    op = m.main.operators[k]
    if rng.random() < 0.5 and op.inputs:
        op.inputs = op.inputs[:-1]
        return f"op #{k} last input removed"
    op.inputs = op.inputs + (int(rng.integers(-1, len(m.main.tensors))),)
    return f"op #{k} extra input {op.inputs[-1]}"


def m_graph_io(rng, m: Model) -> str:
    g = m.main
    nt = len(g.tensors)
    which = "inputs" if rng.random() < 0.5 else "outputs"
    cur = list(getattr(g, which))
    choice = int(rng.integers(4))
    if choice == 0 and cur:
        cur[int(rng.integers(len(cur)))] = _weird_int(rng, nt)
    elif choice == 1:
        cur.append(int(rng.integers(nt)))
    elif choice == 2 and cur:
        cur.pop(int(rng.integers(len(cur))))
    else:
        cur = cur + cur[:1]
    setattr(g, which, tuple(cur))
    return f"subgraph {which} -> {cur}"


def m_shape(rng, m: Model) -> str:
    i = int(rng.integers(len(m.main.tensors)))
    t = m.main.tensors[i]
    shape = list(t.shape)
    choice = int(rng.integers(4))
    if choice == 0 and shape:
        j = int(rng.integers(len(shape)))
        shape[j] = int(_pick(rng, [0, -1, 1, 2, shape[j] + 1, shape[j] * 2, 1000, 2**31 - 1, 2**20]))
    elif choice == 1:
        shape.insert(int(rng.integers(len(shape) + 1)), int(_pick(rng, [1, 2, 3])))
    elif choice == 2 and shape:
        shape.pop(int(rng.integers(len(shape))))
    else:
        shape = [int(v) for v in rng.integers(0, 5, int(rng.integers(0, 10)))]
    t.shape = tuple(shape)
    return f"tensor {i} {t.name!r} shape -> {shape}"


def m_dtype(rng, m: Model) -> str:
    i = int(rng.integers(len(m.main.tensors)))
    t = m.main.tensors[i]
    t.dtype = str(_pick(rng, [*TENSOR_DTYPES, "STRING", "INT4", "RESOURCE", "VARIANT"]))
    return f"tensor {i} {t.name!r} dtype -> {t.dtype}"


def m_opcode(rng, m: Model) -> str:
    from calibrator_custom.ops.registry import get_op  # noqa: F401 - registry names below
    from calibrator_custom.model import schema

    if rng.random() < 0.3:
        op = _pick(rng, m.main.operators)
        op.opcode_index = _weird_int(rng, len(m.operator_codes))
        return f"opcode index -> {op.opcode_index}"
    c = _pick(rng, m.operator_codes)
    name = str(_pick(rng, ["CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "RESHAPE", "SOFTMAX", "CONCATENATION",
                           "PAD", "MEAN", "FULLY_CONNECTED", "TRANSPOSE", "GATHER", "STRIDED_SLICE", "SPLIT",
                           "QUANTIZE", "DEQUANTIZE", "RELU", "TFLite_Detection_PostProcess", "InputNormalize",
                           "Fix2Float"]))
    if name in schema.ENUMS["BuiltinOperator"]:
        c.builtin_code, c.custom_code = name, None
        c.deprecated_builtin_code = min(schema.ENUMS["BuiltinOperator"][name], 127)
    else:
        c.builtin_code, c.custom_code, c.deprecated_builtin_code = "CUSTOM", name, 32
    return f"operator code -> {name}"


def m_options(rng, m: Model) -> str:
    ops = [(k, op) for k, op in enumerate(m.main.operators) if op.options is not None]
    k, op = _pick(rng, ops)
    fields = [f for f in dataclasses.fields(op.options)]
    f = _pick(rng, fields)
    cur = getattr(op.options, f.name)
    if isinstance(cur, bool):
        new = not cur
    elif isinstance(cur, int):
        new = int(_pick(rng, [0, -1, 2, 7, 100, -100, 2**31 - 1]))
    elif isinstance(cur, float):
        new = float(_pick(rng, [0.0, -1.0, float("nan"), float("inf"), 1e30]))
    elif isinstance(cur, tuple) or cur is None:
        new = tuple(int(v) for v in rng.integers(-3, 5, int(rng.integers(0, 5))))
    elif isinstance(cur, str):
        new = str(_pick(rng, ["NONE", "SAME", "VALID", "RELU", "TANH", "CAFFE"]))
    else:
        raise Skip(f"option of type {type(cur).__name__}")
    op.options = dataclasses.replace(op.options, **{f.name: new})
    return f"op #{k} option {f.name} -> {new!r}"


def m_quantization(rng, m: Model) -> str:
    ts = [(i, t) for i, t in enumerate(m.main.tensors) if t.quantization is not None and t.quantization.scale]
    i, t = _pick(rng, ts)
    q = t.quantization
    n = len(q.scale)
    choice = int(rng.integers(6))
    if choice == 0:
        q = dataclasses.replace(q, scale=())
    elif choice == 1:
        q = dataclasses.replace(q, scale=(float(_pick(rng, [0.0, -1.0, float("nan"), float("inf"), 1e-40])),) * n)
    elif choice == 2:
        q = dataclasses.replace(q, zero_point=tuple(range(n + 1)))
    elif choice == 3:
        q = dataclasses.replace(q, quantized_dimension=_weird_int(rng, len(t.shape)))
    elif choice == 4:
        q = dataclasses.replace(q, zero_point=(int(_pick(rng, [2**31 - 1, -(2**31), 70000, -300])),) * n)
    else:
        q = dataclasses.replace(q, scale=q.scale * 3, zero_point=(q.zero_point or (0,) * n) * 3)
    t.quantization = q
    return f"tensor {i} {t.name!r} quantization -> {q}"


def _meta_buffer(m: Model) -> int:
    from calibrator_custom.fixed.writer import METADATA_NAME

    for name, buf in m.metadata:
        if name == METADATA_NAME:
            return buf
    raise Skip("no fixed metadata")


def _mutated_meta(rng, meta: dict) -> object:
    choice = int(rng.integers(12))
    if choice == 0:
        return _pick(rng, [[], {}, None, 3, "x", [meta]])
    meta = json.loads(json.dumps(meta))
    if choice == 1:
        del meta[_pick(rng, sorted(meta))]
    elif choice == 2:
        meta[_pick(rng, sorted(meta))] = _pick(rng, [None, [], {}, "x", -1, 1.5, [1, 2]])
    elif choice in (3, 4, 5) and meta.get("inputs"):
        entry = _pick(rng, meta["inputs"])
        key = _pick(rng, sorted(entry))
        if choice == 3:
            del entry[key]
        else:
            entry[key] = _pick(rng, [None, [], {}, "x", "RGB", "BGRA", "RAWDATA_S16_NHWC", -1, 0, 1e30,
                                     float("nan"), [1, 2], ["a"], True, "NCHW"])
    elif choice == 6:
        meta["inputs"] = _pick(rng, [[], [{}], [1], meta["inputs"] * 2, {"a": 1}])
    elif choice in (7, 8) and meta.get("outputs"):
        entry = _pick(rng, meta["outputs"])
        entry[_pick(rng, sorted(entry))] = _pick(rng, [None, [], "x", 1, "TRUE"])
    elif choice == 9:
        meta["version"] = _pick(rng, [0, 2, 99, "1", None])
    elif choice == 10:
        meta["outputs"] = _pick(rng, [[], [{}], {"a": 1}, meta["outputs"] * 2])
    else:
        return "not json"
    return meta


def m_metadata(rng, m: Model) -> str:
    buf = _meta_buffer(m)
    b = m.buffers[buf]
    meta = json.loads(bytes(b.data).decode())
    choice = int(rng.integers(8))
    if choice == 0:
        b.data = _pick(rng, [b"", b"\xff\xfe", b"{", bytes(b.data)[:-3], b"null", b"[]", b"{}"])
        return f"metadata bytes -> {bytes(b.data)[:20]!r}"
    if choice == 1:
        m.metadata = [(n, _weird_int(rng, len(m.buffers))) for n, _ in m.metadata]
        return f"metadata buffer index -> {m.metadata}"
    new = _mutated_meta(rng, meta)
    b.data = new.encode() if isinstance(new, str) else json.dumps(new).encode()
    return f"metadata -> {bytes(b.data)[:200]!r}"


def m_custom_options(rng, m: Model) -> str:
    ops = [(k, op) for k, op in enumerate(m.main.operators) if op.custom_options]
    k, op = _pick(rng, ops)
    raw = bytearray(op.custom_options)
    choice = int(rng.integers(4))
    if choice == 0:
        raw = raw[: int(rng.integers(len(raw)))]
    elif choice == 1:
        for _ in range(int(rng.integers(1, 4))):
            raw[int(rng.integers(len(raw)))] = int(rng.integers(256))
    elif choice == 2:
        from flatbuffers import flexbuffers

        opts = flexbuffers.Loads(bytes(raw))
        if isinstance(opts, dict) and opts:
            key = _pick(rng, sorted(opts))
            opts[key] = _pick(rng, [0, -1, 1e30, "x", "RGB", [], [0.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
        raw = bytearray(flexbuffers.Dumps(opts))
    else:
        raw = bytearray(rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8).tobytes())
    op.custom_options = bytes(raw)
    return f"op #{k} custom options -> {bytes(raw)[:30]!r}"


def m_names(rng, m: Model) -> str:
    a, b = _pick(rng, m.main.tensors), _pick(rng, m.main.tensors)
    a.name = b.name if rng.random() < 0.7 else ""
    return f"tensor name -> {a.name!r}"


def m_variable(rng, m: Model) -> str:
    t = _pick(rng, m.main.tensors)
    t.is_variable = not t.is_variable
    return f"tensor {t.name!r} is_variable -> {t.is_variable}"


#: (name, function(rng, model) -> description, weight, seed kinds); the function edits ``model`` in place
#: or raises Skip when it does not apply
MODEL_MUTATORS: list[tuple[str, Callable[[np.random.Generator, Model], str], float, frozenset[str]]] = [
    (name, fn, w, frozenset(kinds.split())) for name, fn, w, kinds in [
        ("empty_buffer", m_empty_buffer, 3, "float fixed"), ("resize_buffer", m_resize_buffer, 2, "float fixed"),
        ("buffer_index", m_buffer_index, 1, "float fixed"), ("const_value", m_const_value, 3, "float fixed"),
        ("op_input", m_op_input, 2, "float fixed"), ("op_output", m_op_output, 2, "float fixed"),
        ("later_output", m_later_output, 3, "float fixed"), ("swap_ops", m_swap_ops, 1, "float fixed"),
        ("swap_inputs", m_swap_inputs, 1, "float fixed"),
        ("drop_op", m_drop_op, 1, "float fixed"), ("op_arity", m_op_arity, 1, "float fixed"),
        ("graph_io", m_graph_io, 2, "float fixed"), ("shape", m_shape, 3, "float fixed"),
        ("dtype", m_dtype, 2, "float fixed"), ("opcode", m_opcode, 1, "float fixed"),
        ("options", m_options, 2, "float fixed"), ("names", m_names, 1, "float fixed"),
        ("variable", m_variable, 0.5, "float fixed"), ("quantization", m_quantization, 2, "fixed"),
        ("metadata", m_metadata, 4, "fixed"), ("custom_options", m_custom_options, 1, "fixed"),
    ]
]


# ----------------------------------------------------------------------------------- byte-level mutators
def b_flip(rng, data: bytearray) -> str:
    pos = [int(rng.integers(len(data))) for _ in range(int(rng.integers(1, 9)))]
    for p in pos:
        data[p] ^= 1 << int(rng.integers(8))
    return f"bit flips at {pos}"


def b_set(rng, data: bytearray) -> str:
    p = int(rng.integers(len(data)))
    data[p] = int(rng.integers(256))
    return f"byte {p} -> {data[p]}"


def b_int32(rng, data: bytearray) -> str:
    p = int(rng.integers(max(1, len(data) // 4))) * 4
    v = int(_pick(rng, [0, 1, -1, 2**31 - 1, -(2**31), 0x7FFF, int(rng.integers(-1000, 1000)), len(data)]))
    data[p:p + 4] = struct.pack("<i", v)
    return f"int32 at {p} -> {v}"


def b_truncate(rng, data: bytearray) -> str:
    n = int(rng.integers(len(data)))
    del data[n:]
    return f"truncated to {n} bytes"


#: (name, function(rng, bytearray) -> description, weight); the function edits the bytes in place
BYTE_MUTATORS: list[tuple[str, Callable[[np.random.Generator, bytearray], str], float]] = [
    ("flip", b_flip, 3), ("set", b_set, 1), ("int32", b_int32, 2), ("truncate", b_truncate, 1),
]


# ----------------------------------------------------------------------------------------------- cases
def case_rng(master_seed: int, seed_name: str, case: int) -> np.random.Generator:
    return np.random.default_rng([master_seed, zlib.crc32(seed_name.encode()), case])


def _choose(rng, table):
    w = np.array([t[2] for t in table], np.float64)
    return table[int(rng.choice(len(table), p=w / w.sum()))]


def mutate(seed: Seed, rng: np.random.Generator) -> tuple[bytes, list[str]]:
    """A mutated file from ``seed``: 1-2 model-level edits (70%) or 1-3 byte-level edits (30%).

    Raises Skip when the drawn mutation does not apply or our encoder refuses the edited model.
    """
    done = []
    if rng.random() < 0.7:
        model = Model.from_bytes(seed.data)
        table = [m for m in MODEL_MUTATORS if seed.kind in m[3]]
        for _ in range(1 if rng.random() < 0.7 else 2):
            for attempt in range(4):  # another draw when the mutator does not apply to this model
                name, fn, _w, _k = _choose(rng, table)
                try:
                    done.append(f"{name}: {fn(rng, model)}")
                    break
                except Skip:
                    if attempt == 3:
                        raise
                except Exception as e:  # noqa: BLE001 - a second edit may not fit what the first one left
                    raise Skip(f"{name} does not apply ({type(e).__name__}: {e})") from None
        try:
            return model.to_bytes(model.file_identifier), done
        except Exception as e:  # noqa: BLE001 - the edit is not encodable: not a case
            raise Skip(f"not encodable ({type(e).__name__}: {e})") from None
    data = bytearray(seed.data)
    for _ in range(int(rng.integers(1, 4))):
        if not data:
            break
        name, fn, _w = _choose(rng, BYTE_MUTATORS)
        done.append(f"{name}: {fn(rng, data)}")
    return bytes(data), done


def _feed(sim, rng: np.random.Generator) -> bool:
    for k, d in enumerate(sim.get_input_details()):
        shape = tuple(int(v) for v in d["shape"])
        if int(np.prod(shape, dtype=np.float64)) > MAX_FEED_ELEMENTS:
            return False
        dtype = np.dtype(d["dtype"])
        if dtype.kind == "f":
            x = rng.uniform(-1, 1, shape).astype(dtype)
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            x = rng.integers(max(info.min, -128), min(info.max, 255), shape, endpoint=True).astype(dtype)
        else:
            x = np.zeros(shape, dtype)
        sim.set_input(k, x)
    return True


def _exercise(sim, rng: np.random.Generator) -> None:
    sim.get_input_details()
    sim.get_output_details()
    sim.get_tensor_details()
    if _feed(sim, rng):
        sim.invoke()
        for k in range(len(sim.get_output_details())):
            sim.get_output(k)


def exercise(seed: Seed, data: bytes, path: Path, rng: np.random.Generator) -> None:
    """Open the file at ``path`` (holding ``data``) through the public API and run it once."""
    path.write_bytes(data)
    if seed.kind == "fixed":
        _exercise(calibrator_custom.fixed_simulator(str(path)), rng)
        return
    _exercise(calibrator_custom.float_simulator(str(path)), rng)
    if seed.ini is not None and rng.random() < 0.3:
        ini = path.with_suffix(".ini")
        ini.write_text(seed.ini)
        cal = calibrator_custom.calibrator(str(path), str(ini))
        _exercise(cal, rng)
        cal.get_minmax()
        cal.statistics()


def run_case(master_seed: int, seed: Seed, case: int, workdir: Path) -> Outcome:
    rng = case_rng(master_seed, seed.name, case)
    try:
        data, done = mutate(seed, rng)
    except Skip as e:
        return Outcome(seed.name, case, [], "skipped", str(e))
    try:
        exercise(seed, data, workdir / f"case{'_fixed' if seed.kind == 'fixed' else '_float'}.sim", rng)
    except CalibratorError as e:
        return Outcome(seed.name, case, done, "error", f"{type(e).__name__}: {e}")
    except Exception as e:  # noqa: BLE001 - exactly what the fuzz test looks for
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        return Outcome(seed.name, case, done, "escaped", "".join(tb[-6:]))
    return Outcome(seed.name, case, done, "ok")


def schedule(seeds: list[Seed], n: int, master_seed: int) -> list[tuple[Seed, int]]:
    """``n`` (seed, case number) pairs drawn by the seeds' weights; case numbers count per seed."""
    rng = np.random.default_rng(master_seed)
    w = np.array([s.weight for s in seeds], np.float64)
    picks = rng.choice(len(seeds), size=n, p=w / w.sum())
    counters = [0] * len(seeds)
    out = []
    for p in picks:
        out.append((seeds[p], counters[p]))
        counters[p] += 1
    return out


def replay(master_seed: int, seed_name: str, case: int) -> None:
    """Run one case in this process and let any exception propagate (for debugging a failure)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        seed = {s.name: s for s in load_seeds(work)}[seed_name]
        rng = case_rng(master_seed, seed.name, case)
        data, done = mutate(seed, rng)
        print("\n".join(done))
        try:
            exercise(seed, data, work / "case.sim", rng)
        except CalibratorError as e:
            print(f"our error (allowed): {type(e).__name__}: {e}")
            return
        print("no exception")


if __name__ == "__main__":
    replay(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
