"""A depthwise conv the vendor runs as a CONV_2D (fixed.sim): its compact weight buffer and its marker.

The vendor's converter turns a 1x1 or 5x5 (and others) DEPTHWISE_CONV_2D into a [C, KH, KW, C] CONV_2D marked
``sgs_depthwise_mode == 2`` (Conv2DOptions slot 38) whose int8 buffer holds only the diagonal
16-channel blocks (``model/sgs_weights.py``). The decoding is checked against round(w / scale) of the
vendor's own float.sim weights and, through our fixed simulator on the densely re-packed weights,
against the vendor's fixed simulator on the vendor's file. Vendor files are made in the session.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from calibrator_custom.errors import ModelError
from calibrator_custom.model.graph import Model, load_model
from calibrator_custom.model.sgs_weights import diagonal_block_bytes, unpack_diagonal_blocks
from conftest import require_shared
from images import calibration_images
from vendor_fixed_oracle import vendor_missing_reason

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import sgs_slot_corpus as corpus  # noqa: E402

#: depthwise chains the vendor turns into a CONV_2D: more than 16 channels (a compact buffer), a
#: remainder group of 4 channels (16-byte blocks padded to 32), and 16 channels (one whole block)
CHAINS = {
    "dw24_k1": dict(seed=155, kind="depthwise", side=25, width=25, k=1, cin=24, cout=24, stride=1, padding="VALID"),
    "dw40_k5_s2": dict(seed=137, kind="depthwise", side=8, width=8, k=5, cin=40, cout=8, stride=2, padding="VALID"),
    "dw20_k5": dict(seed=1, kind="depthwise", side=10, k=5, cin=20, cout=4, stride=1, padding="SAME"),
    "dw64_k1": dict(seed=105, kind="depthwise", side=12, width=7, k=1, cin=64, cout=48, stride=1, padding="SAME"),
    "dw16_k1": dict(seed=156, kind="depthwise", side=9, width=14, k=1, cin=16, cout=48, stride=1, padding="VALID"),
}


def _naive_pack(codes: np.ndarray) -> bytes:
    """The layout written out longhand: per 16-channel group, per (kh, kw), the [o][i] block, 32-byte padded."""
    o, kh, kw, _ = codes.shape
    out = bytearray()
    for g in range((o + 15) // 16):
        chans = list(range(16 * g, min(o, 16 * g + 16)))
        for a in range(kh):
            for b in range(kw):
                block = bytes(np.int8(codes[p, a, b, q]).tobytes()[0] for p in chans for q in chans)
                out += block + bytes(-len(block) % 32)
    return bytes(out)


@settings(max_examples=60, deadline=None)
@given(c=st.integers(1, 70), kh=st.integers(1, 5), kw=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_diagonal_blocks_unpack_what_the_longhand_layout_packs(c, kh, kw, seed):
    rng = np.random.default_rng(seed)
    dense = np.zeros((c, kh, kw, c), np.int8)
    for g0 in range(0, c, 16):
        n = min(16, c - g0)
        dense[g0:g0 + n, :, :, g0:g0 + n] = rng.integers(-127, 128, (n, kh, kw, n))
    raw = _naive_pack(dense)
    assert diagonal_block_bytes(c, kh, kw) == len(raw)
    got = unpack_diagonal_blocks(raw + bytes(32), (c, kh, kw, c))  # trailing padding is ignored
    assert got.shape == dense.shape and got.dtype == np.int8
    np.testing.assert_array_equal(got, dense)
    with pytest.raises(ModelError, match="too short"):
        unpack_diagonal_blocks(raw[:-1], (c, kh, kw, c))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{name: (fixed.sim, float.sim)} made by the vendor's tools in this session."""
    require_shared()
    reason = vendor_missing_reason()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("dw_as_conv")
    images = calibration_images()[:2]
    made = {}
    for name, spec in CHAINS.items():
        assert corpus.make(out, name, corpus.chain(**spec), images), f"{name}: refused by the vendor's tools"
        made[name] = (out / f"{name}_fixed.sim", out / f"{name}_float.sim")
    return made


def _dw_conv(model: Model):
    op = model.main.operators[1]  # x -> c1 -> the depthwise under test -> y
    return op, model.main.tensors[op.inputs[1]]


def test_the_compact_buffer_is_the_diagonal_of_the_float_weights(files):
    """The fixed.sim loads; its slot-38 conv's buffer decodes to round(w / scale) of the float.sim's
    (zero off the diagonal) weights; the file is written back byte for byte, also re-encoded."""
    compact = 0
    for name, (fixed, fl) in files.items():
        data = fixed.read_bytes()
        model = Model.from_bytes(data)
        op, t = _dw_conv(model)
        assert model.op_name(op) == "CONV_2D" and op.options.sgs_depthwise_mode == 2, name
        c, kh, kw, i = t.shape
        k = CHAINS[name]["k"]
        assert (c, kh, kw, i) == (CHAINS[name]["cin"], k, k, CHAINS[name]["cin"]), name
        raw = model.buffers[t.buffer].data
        assert len(raw) >= diagonal_block_bytes(c, kh, kw), name
        compact += len(raw) < c * kh * kw * c
        codes = model.tensor_data(t)
        assert codes.dtype == np.int8 and codes.ndim == (1 if len(raw) < c * kh * kw * c else 4), name
        float_model = load_model(fl)
        wf = float_model.tensor_data(float_model.main.tensors[float_model.main.operators[1].inputs[1]])
        assert wf.shape == (c, kh, kw, c), name
        off = ~np.eye(c, dtype=bool)
        assert not np.any(wf.transpose(1, 2, 0, 3)[:, :, off]), f"{name}: float weights off the diagonal"
        dense = unpack_diagonal_blocks(codes if codes.ndim == 1 else raw, t.shape)
        assert dense.shape == (c, kh, kw, c) and dense.dtype == np.int8
        np.testing.assert_array_equal(dense, np.round(wf / t.quantization.scale[0]), err_msg=name)
        assert model.to_bytes() == data, name
        assert model.to_bytes(reencode=True) == data, name
    assert compact == 4  # every case but the 16-channel one


def test_other_convs_are_not_marked(files):
    """Every other conv of the chains (3 -> C and C -> 4, real convs) has no depthwise mode."""
    for name, (fixed, _) in files.items():
        model = load_model(fixed)
        for k in (0, 2):
            op = model.main.operators[k]
            assert model.op_name(op) == "CONV_2D" and op.options.sgs_depthwise_mode in (None, 0), (name, k)


def test_a_short_or_unmarked_compact_buffer_is_still_a_model_error(files):
    """The size check stays: the compact buffer cut below its blocks, or the marker removed, is a ModelError."""
    fixed, _ = files["dw40_k5_s2"]
    model = load_model(fixed)
    _, t = _dw_conv(model)
    model.buffers[t.buffer].data = model.buffers[t.buffer].data[:diagonal_block_bytes(40, 5, 5) - 32]
    with pytest.raises(ModelError, match="needs 40000 bytes"):
        Model.from_bytes(model.to_bytes(reencode=True))
    model = load_model(fixed)
    op, _ = _dw_conv(model)
    op.options = dataclasses.replace(op.options, sgs_depthwise_mode=0)
    with pytest.raises(ModelError, match="needs 40000 bytes"):
        Model.from_bytes(model.to_bytes(reencode=True))


def test_fixed_simulator_on_the_compact_file_matches_the_vendor(files, tmp_path):
    """Our fixed simulator runs the vendor's file as it is (the diagonal blocks decoded) and computes the
    vendor's fixed simulator's output code for code; re-packed densely in the ordinary tiled layout, the
    same weights give the same codes (so the decoding is what the vendor's IPU computes with)."""
    import calibrator_custom
    import vendor_fixed_oracle as vo
    from calibrator_custom.vendor_fixed import layout, pack

    orc = vo.oracle()
    compared = 0
    for name, (fixed, _) in files.items():
        model = load_model(fixed)
        _, t = _dw_conv(model)
        dense = unpack_diagonal_blocks(model.buffers[t.buffer].data, t.shape)
        to_, ti_ = layout.conv_tilings(t.shape)[0]
        model.buffers[t.buffer].data = pack.pack_conv_weights(dense, ti_, to_)
        op, _ = _dw_conv(model)
        op.options = dataclasses.replace(op.options, sgs_depthwise_mode=0)
        dense_file = tmp_path / f"{name}_dense_fixed.sim"
        dense_file.write_bytes(model.to_bytes(reencode=True))
        sims = [calibrator_custom.fixed_simulator(str(f)) for f in (fixed, dense_file)]
        shape = tuple(int(v) for v in sims[0].get_input_details()[0]["shape"])
        for trial in range(2):
            x = np.random.RandomState(trial).randint(0, 256, shape).astype(np.uint8)
            ref = orc.fixed_sim(str(fixed), x)
            for label, sim in zip(("as written", "re-packed"), sims):
                sim.set_input(0, x)
                sim.invoke()
                compared += vo.assert_outputs_code_for_code(sim, ref, f"{name} {label}, input {trial}")
    assert compared > 0


def test_truncated_or_corrupted_depthwise_as_conv_files_raise_only_model_errors(files):
    """Byte-level damage to a fixed.sim with a compact buffer (cut short, bytes overwritten, the
    compact buffer resized) gives ModelError or a model that loads, never another exception."""
    fixed, _ = files["dw40_k5_s2"]
    data = fixed.read_bytes()
    rng = np.random.default_rng(20261202)
    outcomes = {"ok": 0, "error": 0}

    def attempt(blob: bytes) -> None:
        try:
            Model.from_bytes(blob)
            outcomes["ok"] += 1
        except ModelError:
            outcomes["error"] += 1

    for cut in rng.integers(1, len(data), 40):
        attempt(data[:int(cut)])
    for _ in range(120):
        blob = bytearray(data)
        for pos in rng.integers(0, len(data), int(rng.integers(1, 8))):
            blob[int(pos)] = int(rng.integers(0, 256))
        attempt(bytes(blob))
    for size in rng.integers(0, 20000, 20):
        model = load_model(fixed)
        _, t = _dw_conv(model)
        model.buffers[t.buffer].data = bytes(int(size))
        attempt(model.to_bytes(reencode=True))
    assert outcomes["error"] >= 40 and sum(outcomes.values()) == 180, outcomes
