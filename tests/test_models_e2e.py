"""Every shared model, float32 copy and fp16 original, against LiteRT on real photos: outputs and
every intermediate tensor.

The bound is 1e-4 x max|ref| per tensor, ref = LiteRT's reference kernels (BUILTIN_REF). One kind of
tensor cannot meet any fixed bound: a small result of large cancelling sums (hand_landmark's
handedness logit on some photos), where float32 rounding differences of ~1e-6 upstream are
amplified. For such a tensor LiteRT's own optimized kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES)
miss the bound against LiteRT's reference too; there we require agreeing with the reference at
least as closely as LiteRT's optimized kernels do, and the test reports every such tensor.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest

from calibrator_custom import float_simulator
from conftest import require_shared, shared_models
from images import image_paths, model_input

MODELS = shared_models()
pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)
RTOL = 1e-4


def _litert(path, resolver: str):
    from ai_edge_litert import interpreter as litert
    it = litert.Interpreter(model_path=str(path), experimental_op_resolver_type=getattr(litert.OpResolverType, resolver),
                            experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    return it


def _rel(a: np.ndarray, ref: np.ndarray) -> float:
    scale = float(np.max(np.abs(ref)))
    err = float(np.max(np.abs(a.astype(np.float64) - ref)))
    return err / scale if scale else err


@pytest.mark.parametrize("path", MODELS, ids=[p.name for p in MODELS])
def test_shared_model_matches_litert_on_every_tensor(path):
    require_shared()
    images = image_paths()[:5]
    assert len(images) == 5
    sim = float_simulator(path)
    ref = _litert(path, "BUILTIN_REF")
    opt = _litert(path, "BUILTIN_WITHOUT_DEFAULT_DELEGATES")
    in_details = sim.get_input_details()
    assert len(in_details) == 1
    checked, exempt = 0, []
    tensors = sim._interp.graph.tensors
    for img in images:
        x = model_input(img, in_details[0]["shape"], path.name)
        sim.set_input(0, x)
        sim.invoke(keep="all")
        for it in (ref, opt):
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
        for k, d in enumerate(ref.get_output_details()):
            ours, theirs = sim.get_output(k), ref.get_tensor(d["index"])
            assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        for i, t in enumerate(tensors):
            try:
                theirs = ref.get_tensor(i)
            except ValueError:
                continue  # LiteRT holds no data for this tensor (e.g. an unused sparse buffer)
            if theirs.size == 0 or theirs.dtype != np.float32:
                continue
            ours = sim.get_tensor(t.name)
            assert ours.shape == theirs.shape, t.name
            assert ours.dtype == theirs.dtype, t.name
            err = _rel(ours, theirs)
            checked += 1
            if err <= RTOL:
                continue
            litert_spread = _rel(opt.get_tensor(i), theirs)
            assert litert_spread > RTOL and err <= litert_spread, (
                f"{path.name} {img.name} tensor {t.name!r}: error {err:.3g} x max|ref| (LiteRT's optimized "
                f"kernels: {litert_spread:.3g})")
            exempt.append((img.name, t.name, err, litert_spread))
    assert checked > 5 * len(tensors) // 2
    for e in exempt:
        log.warning("%s: tensor %r on %s: error %.3g x max|ref|, LiteRT optimized vs reference %.3g", path.name,
                    e[1], e[0], e[2], e[3])
    assert len(exempt) <= 1, exempt
