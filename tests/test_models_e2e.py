"""Every shared model, float32 copy and fp16 original, against LiteRT on real photos: outputs and
every intermediate tensor."""
from __future__ import annotations

import numpy as np
import pytest

from calibrator_custom import float_simulator
from conftest import require_shared, shared_models
from images import image_paths, model_input

MODELS = shared_models()
pytestmark = pytest.mark.slow


def _litert(path):
    from ai_edge_litert import interpreter as litert
    it = litert.Interpreter(model_path=str(path), experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF,
                            experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    return it


@pytest.mark.parametrize("path", MODELS, ids=[p.name for p in MODELS])
def test_shared_model_matches_litert_on_every_tensor(path):
    require_shared()
    images = image_paths()[:5]
    assert len(images) == 5
    sim = float_simulator(path)
    ref = _litert(path)
    in_details = sim.get_input_details()
    assert len(in_details) == 1
    checked = 0
    for img in images:
        x = model_input(img, in_details[0]["shape"], path.name)
        sim.set_input(0, x)
        sim.invoke(keep="all")
        ref.set_tensor(ref.get_input_details()[0]["index"], x)
        ref.invoke()
        for k, d in enumerate(ref.get_output_details()):
            ours = sim.get_output(k)
            theirs = ref.get_tensor(d["index"])
            assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        tensors = sim._interp.graph.tensors
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
            scale = float(np.max(np.abs(theirs)))
            err = float(np.max(np.abs(ours.astype(np.float64) - theirs)))
            assert err <= 1e-4 * scale, f"{path.name} {img.name} tensor {t.name!r}: error {err:.3g} vs max {scale:.3g}"
            checked += 1
    assert checked > 5 * len(tensors) // 2
