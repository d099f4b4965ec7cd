"""Per-layer accuracy of a SigmaStar (vendor) ``*_fixed.sim`` against its float model.

The fixed model runs with the vendor's integer semantics (``vendor_fixed.engine``) on raw pixels
(``preprocess(path, norm=False)``), the float model with our float interpreter on the normalized
image (``norm=True``); every float tensor with a same-named, same-sized tensor in the vendor model
is compared after dequantizing its codes. The vendor's own tensors (Align2_Alias, rewritten
FULLY_CONNECTED) and the float tensors the vendor fused away are reported as ``fused``. No
isolated per-op runs and no 16-bit gains (those rely on our own fixed-point kernels).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import InputError
from ..interpreter import Interpreter
from ..model.graph import Model
from ..vendor_fixed import engine
from .metrics import ErrorAccumulator
from .report import AnalysisReport, LayerRow


def vendor_accuracy_analysis(fmodel: Model, fname: str, qmodel: Model, qname: str, items: Sequence[Any],
                             preprocess_funcs, progress: Callable[[str, int, int], None] | None = None
                             ) -> AnalysisReport:
    """AnalysisReport of the vendor fixed model ``qmodel`` against ``fmodel`` on the image paths ``items``."""
    if preprocess_funcs is None:
        raise InputError(f"accuracy_analysis: {qname!r} is a SigmaStar fixed model, which takes raw pixels: pass "
                         "image paths with preprocess_funcs (called with norm=True for the float model and "
                         "norm=False for the fixed one)")
    funcs = [preprocess_funcs] if callable(preprocess_funcs) else list(preprocess_funcs)
    prog = engine.prepare(qmodel, repr(qname))
    fint = Interpreter(fmodel)
    g, qg = fint.graph, qmodel.main
    qindex = {t.name: k for k, t in enumerate(qg.tensors)}
    seen, runtime = set(), []
    for i in list(g.inputs) + [o for s in fint.steps for o in s.outputs]:
        if i >= 0 and i not in fint.constants and i not in seen:
            seen.add(i)
            runtime.append(i)
    acc = {i: ErrorAccumulator() for i in runtime}
    compared: set[int] = set()
    for n, item in enumerate(items, 1):
        paths = list(item) if isinstance(item, (list, tuple)) else [item]
        if len(paths) != len(funcs):
            raise InputError(f"accuracy_analysis: sample #{n - 1} names {len(paths)} image(s) for {len(funcs)} input(s)")
        norm = [np.asarray(f(os.fspath(p), True), np.float32) for f, p in zip(funcs, paths)]
        raw = [np.asarray(f(os.fspath(p), False)).astype(np.uint8) for f, p in zip(funcs, paths)]
        fvals = fint.run(norm, keep="all")
        codes = prog.codes(raw)
        for i in runtime:
            j = qindex.get(g.tensors[i].name)
            if j is None or j not in codes or i not in fvals or codes[j].size != np.asarray(fvals[i]).size:
                continue
            q = qg.tensors[j].quantization
            if q is None or not q.scale:
                continue
            zp = int(q.zero_point[0]) if q.zero_point else 0
            test = (codes[j].astype(np.float64) - zp) * float(q.scale[0])
            acc[i].add(np.asarray(fvals[i], np.float64).reshape(test.shape), test)
            compared.add(i)
        if progress is not None:
            progress("analysis", n, len(items))
    producers = {o: (s.op_name, s.op_index) for s in fint.steps for o in s.outputs}
    outputs = set(g.outputs)
    rows = []
    for pos, i in enumerate(runtime):
        t = g.tensors[i]
        op, k = producers.get(i, ("INPUT", -1))
        if i not in compared:
            rows.append(LayerRow(pos, t.name, op, k, "fused", tuple(t.shape), t.dtype, i in outputs))
            continue
        rows.append(LayerRow(pos, t.name, op, k, "ok", tuple(t.shape), qg.tensors[qindex[t.name]].dtype,
                             i in outputs, acc[i].result()))
    notes = ("SigmaStar fixed model: simulated with the vendor's integer semantics (vendor_fixed.engine); "
             "no isolated per-op errors and no 16-bit gains",)
    return AnalysisReport(fname, qname, len(items), tuple(rows), "off", 0, None, notes)
