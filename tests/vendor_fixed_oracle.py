"""Test-side access to the vendor SDK 1.1.5 oracle for the vendor fixed-point experiments.

Builds single-op float models with our ModelBuilder, converts them with the vendor's convert_tool,
calibrates them at vendor L1 with chosen tensor ranges, runs the vendor fixed simulator with a tensor
dump, and reads what the kernels need (quantization, constant buffers) out of the vendor fixed.sim
with a minimal schema-less FlatBuffer reader (no dependency on calibrator_custom.model's reader).

Chosen ranges: the vendor calibrator's statistics binary merges the per-tensor min/max it measures
into ``tensor_min_max.txt`` in its working directory, and the later phases read that file back.
The preprocess script below writes the chosen ranges into that file just before each statistics run
and feeds all-zero images, so every chosen range (which must contain 0) is the one calibrated.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT.parent / "shared" / "vendor_sdk"
HARNESS = VENDOR / "harness"
CACHE = Path(os.environ.get("VENDOR_FIXED_CACHE", tempfile.gettempdir())) / "calibrator_custom_vendor_fixed"


def vendor_missing_reason() -> str | None:
    if not (HARNESS / "oracle.py").is_file():
        return f"vendor SDK oracle not found at {VENDOR} (../shared/vendor_sdk)"
    venv = Path(os.environ.get("SGS_ORACLE_VENV") or Path.home() / ".cache/sgs_oracle/venv")
    if not (venv / "bin" / "python").exists():
        return f"vendor SDK oracle not set up (no venv at {venv}); run: bash ../shared/vendor_sdk/setup.sh"
    return None


def oracle():
    if str(HARNESS) not in sys.path:
        sys.path.insert(0, str(HARNESS))
    import oracle as _oracle  # noqa: PLC0415
    return _oracle


PREPROCESS = '''import json, os, numpy as np
SPEC = json.load(open({spec!r}))
def image_preprocess(img_path, norm=True):
    with open("tensor_min_max.txt", "w") as f:
        for name, (lo, hi) in SPEC["ranges"].items():
            f.write("Name:%s, min: %.6f, max: %.6f;\\n" % (name, lo, hi))
    return np.zeros(SPEC["shape"], np.float32)
'''


def ini_text(inputs, outputs, mean=(127.5, 127.5, 127.5), std=127.5, fmt="RGB", dequant=False,
             extra="") -> str:
    ins = ",".join(inputs)
    outs = ",".join(outputs)
    if fmt.startswith("RAWDATA"):
        mean_lines = ""
    else:
        mean_lines = (f"mean_red={mean[0]};\nmean_green={mean[1]};\nmean_blue={mean[2]};\n"
                      f"std_value={std};\n")
    return (f"[INPUT_CONFIG]\ninputs={ins};\ninput_formats={fmt};\ntraining_input_formats={fmt};\n"
            f"{mean_lines}[OUTPUT_CONFIG]\noutputs={outs};\n"
            f"dequantizations={','.join(['TRUE' if dequant else 'FALSE'] * len(outputs))};\n{extra}")


def make_fixed(builder, ranges: dict, ini: str, tag: str) -> Path:
    """builder -> tflite -> vendor float.sim -> vendor fixed.sim at L1 with ``ranges`` (cached by content)."""
    import cv2  # noqa: PLC0415
    model = builder.build()
    d = tempfile.mkdtemp()
    try:
        model.save(os.path.join(d, "m.tflite"))
        blob = open(os.path.join(d, "m.tflite"), "rb").read()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    key = hashlib.sha1(blob + json.dumps(ranges, sort_keys=True).encode() + ini.encode()).hexdigest()[:16]
    out = CACHE / f"{tag}_{key}"
    fixed = out / "m_fixed.sim"
    if fixed.exists():
        return fixed
    tmp = Path(tempfile.mkdtemp(prefix="vf_", dir=CACHE.parent if CACHE.parent.exists() else None))
    (tmp / "m.tflite").write_bytes(blob)
    (tmp / "m.ini").write_text(ini)
    shape = list(model.subgraphs[0].tensors[model.subgraphs[0].inputs[0]].shape)
    (tmp / "spec.json").write_text(json.dumps({"ranges": ranges, "shape": shape}))
    (tmp / "pp.py").write_text(PREPROCESS.format(spec=str(tmp / "spec.json")))
    (tmp / "imgs").mkdir()
    cv2.imwrite(str(tmp / "imgs" / "a.png"), np.zeros((4, 4, 3), np.uint8))
    o = oracle()
    o.convert_tflite(str(tmp / "m.tflite"), str(tmp / "m.ini"), str(tmp / "m_float.sim"))
    o.calibrate_l1(str(tmp / "m_float.sim"), str(tmp / "imgs"), str(tmp / "pp.py"), str(tmp / "m.ini"),
                   str(tmp / "m_fixed.sim"), workdir=str(tmp / "wd"))
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(str(tmp), str(out))
    return fixed


#: how many vendor tool runs :class:`VendorRuns` keeps going at once (each is a subprocess in its own
#: temporary folder); ``VENDOR_ORACLE_WORKERS=1`` runs them one after the other
WORKERS = max(1, int(os.environ.get("VENDOR_ORACLE_WORKERS") or min(2, os.cpu_count() or 1)))


class VendorRuns:
    """The vendor simulators' outputs of one fixed.sim on many inputs, run ahead in a small thread pool
    while the caller checks each input in turn (with ``offline``, the path to write, the vendor's compiler
    also makes the offline model, and the offline simulator runs it on every input).

    Iterating yields, in the inputs' order, (fixed simulator outputs, offline simulator outputs or None);
    a refusal of a vendor tool is raised where its result is taken. Use it as a context manager: leaving
    it drops the runs not started yet::

        with vo.VendorRuns(path, xs, offline=tmp_path / "m_offline.sim") as runs:
            for x, (fixed_ref, offline_ref) in zip(xs, runs):
                ...
    """

    def __init__(self, fixed, xs, offline=None, workers: int | None = None):
        o = oracle()
        self._pool = ThreadPoolExecutor(workers or WORKERS, thread_name_prefix="vendor")
        self.offline = self._pool.submit(o.compile_offline, str(fixed), str(offline)) if offline else None
        self._fixed = [self._pool.submit(o.fixed_sim, str(fixed), x) for x in xs]
        self._offline = [self._pool.submit(lambda x=x: o.offline_sim(self.offline.result(), x)) for x in xs] \
            if offline else [None] * len(xs)

    def __iter__(self):
        for f, g in zip(self._fixed, self._offline):
            yield f.result(), (g.result() if g is not None else None)

    def close(self):
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- dump
def run_fixed(fixed: Path, x_u8: np.ndarray) -> list[dict]:
    """Vendor fixed simulator on one uint8 input; -> dump records with raw bytes (inputs and outputs)."""
    o = oracle()
    import sgsio  # noqa: PLC0415
    d = tempfile.mkdtemp(prefix="vfrun_")
    try:
        res = o.fixed_sim(str(fixed), x_u8, dump=True, keep_dir=d)
        recs = sgsio.read_dump(os.path.join(d, "dump", "sigma_outtensor_dump.bin"))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    for r in recs:
        dt = sgsio.DUMP_DTYPES.get(r["type"])
        r["data"] = np.frombuffer(r["raw"], dtype=dt) if dt is not None else None
    outputs = {k: v for k, v in res.items() if not k.startswith("_")}
    return recs, outputs


def record(recs, op_index, direction, k=0):
    for r in recs:
        if r["op_index"] == op_index and r["dir"] == direction and r["k"] == k:
            return r
    raise KeyError((op_index, direction, k))


# ---------------------------------------------------------------- fixed.sim reader
@dataclass
class VTensor:
    name: str
    shape: tuple
    type_code: int
    buffer: int
    qmin: list = field(default_factory=list)
    qmax: list = field(default_factory=list)
    scale: list = field(default_factory=list)
    zero_point: list = field(default_factory=list)
    q4: list = field(default_factory=list)
    q5: list = field(default_factory=list)


@dataclass
class VOp:
    opcode: int
    builtin: int
    inputs: list
    outputs: list


class VendorSim:
    """Tensors, buffers and operators of a vendor .sim read slot by slot (TFLite slot numbering)."""

    def __init__(self, path):
        self.b = b = Path(path).read_bytes()
        root = self._u32(0)
        mf = self._fields(root)
        subgraphs = self._vec_tables(root + mf[2])
        sg = subgraphs[0]
        sf = self._fields(sg)
        self.tensors = [self._tensor(t) for t in self._vec_tables(sg + sf[0])]
        self.inputs = self._vec_i32(sg + sf[1])
        self.outputs = self._vec_i32(sg + sf[2])
        codes = []
        for c in self._vec_tables(root + mf[1]):
            cf = self._fields(c)
            dep = b[c + cf[0]] if cf.get(0) else 0
            full = struct.unpack_from("<i", b, c + cf[3])[0] if cf.get(3) else 0
            codes.append(max(dep, full))
        self.ops = []
        for o in self._vec_tables(sg + sf[3]):
            of = self._fields(o)
            idx = self._u32(o + of[0]) if of.get(0) else 0
            self.ops.append(VOp(idx, codes[idx], self._vec_i32(o + of[1]), self._vec_i32(o + of[2])))
        self.buffers = []
        for buf in self._vec_tables(root + mf[4]):
            bf = self._fields(buf)
            if bf.get(0):
                q = self._ref(buf + bf[0])
                n = self._u32(q)
                self.buffers.append(b[q + 4:q + 4 + n])
            else:
                self.buffers.append(b"")

    def _u32(self, p):
        return struct.unpack_from("<I", self.b, p)[0]

    def _ref(self, p):
        return p + self._u32(p)

    def _fields(self, t):
        v = t - struct.unpack_from("<i", self.b, t)[0]
        n = struct.unpack_from("<H", self.b, v)[0]
        return {i: struct.unpack_from("<H", self.b, v + 4 + 2 * i)[0] for i in range((n - 4) // 2)}

    def _vec_tables(self, p):
        q = self._ref(p)
        return [self._ref(q + 4 + 4 * i) for i in range(self._u32(q))]

    def _vec(self, p, fmt, size):
        q = self._ref(p)
        n = self._u32(q)
        return list(struct.unpack_from(f"<{n}{fmt}", self.b, q + 4)) if n else []

    def _vec_i32(self, p):
        return self._vec(p, "i", 4)

    def _tensor(self, t):
        f = self._fields(t)
        name_p = self._ref(t + f[3])
        name = self.b[name_p + 4:name_p + 4 + self._u32(name_p)].decode("latin1")
        vt = VTensor(name, tuple(self._vec_i32(t + f[0])), self.b[t + f[1]] if f.get(1) else 0,
                     self._u32(t + f[2]) if f.get(2) else 0)
        if f.get(4):
            q = self._ref(t + f[4])
            qf = self._fields(q)
            for slot, attr, fmt in ((0, "qmin", "f"), (1, "qmax", "f"), (2, "scale", "f"), (3, "zero_point", "q"),
                                    (4, "q4", "q"), (5, "q5", "q")):
                if qf.get(slot):
                    setattr(vt, attr, self._vec(q + qf[slot], fmt, 0))
        return vt

    def tensor(self, name) -> VTensor:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    def const(self, name, dtype) -> np.ndarray:
        t = self.tensor(name)
        raw = self.buffers[t.buffer]
        n = int(np.prod(t.shape))
        return np.frombuffer(raw, dtype=dtype)[:n].reshape(t.shape)


def assert_outputs_code_for_code(sim, ref: dict, label: str) -> int:
    """Every output of ``sim`` (after invoke) equals the vendor's ``ref`` ({name: dequantized array}) code
    for code, trimmed to the vendor's shape; returns the number of values compared."""
    compared = 0
    for k, od in enumerate(sim.get_output_details()):
        r = ref[od["name"]]
        y = sim.get_output(k)
        assert y.dtype == np.float32
        y = y[tuple(slice(0, s) for s in r.shape)]
        assert y.shape == r.shape
        scale = od["quantization"][0]
        lsb = np.abs(np.round(y.astype(np.float64) / scale) - np.round(r / scale))
        assert lsb.max() == 0, f"{label}, output {od['name']}: {int((lsb > 0).sum())}/{lsb.size} codes differ, " \
                               f"worst {lsb.max():.0f} LSB"
        compared += r.size
    return compared


def assert_vendor_runs_it_as_ours(path, rng: np.random.Generator, count: int, label: str,
                                  offline: bool = True) -> int:
    """The vendor's compiler takes the fixed.sim at ``path``, and on ``count`` random UINT8 inputs from
    ``rng`` the vendor's fixed simulator (and, with ``offline``, the offline simulator on the compiled
    model) gives our fixed_simulator's output codes; returns the number of values compared (> 0)."""
    import calibrator_custom  # noqa: PLC0415
    o = oracle()
    path = str(path)
    # the offline model named "<stem>_offline.sim" (a name ending ".sim.offline.sim" is not written)
    p = Path(path)
    compiled = o.compile_offline(path, str(p.with_name(p.stem.removesuffix("_fixed") + "_offline.sim")))
    sim = calibrator_custom.fixed_simulator(path)
    shape = tuple(int(v) for v in sim.get_input_details()[0]["shape"])
    compared = 0
    for _ in range(count):
        x = rng.integers(0, 256, shape).astype(np.uint8)
        sim.set_input(0, x)
        sim.invoke()
        compared += assert_outputs_code_for_code(sim, o.fixed_sim(path, x), f"{label}, fixed_sim")
        if offline:
            compared += assert_outputs_code_for_code(sim, o.offline_sim(compiled, x), f"{label}, offline_sim")
    assert compared > 0, f"{label}: no output compared"
    return compared


def assertion_line(e: Exception, width: int = 160) -> str:
    """The vendor tool's assertion message in an oracle error (else its last line), cut to ``width``."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return next((ln for ln in lines if "ssert" in ln), lines[-1] if lines else "?")[:width]


def vendor_verdicts(path, x, ref: dict | None = None) -> tuple[str, str]:
    """What the vendor's fixed simulator and compiler say of the fixed.sim at ``path``: ("runs" /
    "runs, outputs identical" / "runs, outputs differ" (against ``ref``, the vendor's outputs of another
    file on ``x``) or "refused: <assertion>", "compiles" or "refused: <assertion>")."""
    o = oracle()
    try:
        y = o.fixed_sim(str(path), x)
        sim = "runs"
        if ref is not None:
            same = all(np.array_equal(y[k], ref[k]) for k in ref if not k.startswith("_"))
            sim += ", outputs identical" if same else ", outputs differ"
    except o.OracleError as e:
        sim = "refused: " + assertion_line(e)
    try:
        o.compile_offline(str(path), str(path) + ".offline")
        comp = "compiles"
    except o.OracleError as e:
        comp = "refused: " + assertion_line(e)
    return sim, comp
