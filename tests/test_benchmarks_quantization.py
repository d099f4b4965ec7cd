"""benchmarks/quantization.py's vendor columns: the skip reasons without the SDK, and the alignment of
the vendor's padded outputs to the float model's (hand-made arrays; no SDK needed)."""
from __future__ import annotations

import sys

import numpy as np

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import quantization  # noqa: E402


def test_vendor_columns_are_skipped_with_the_reason_when_the_sdk_is_absent(tmp_path, monkeypatch):
    monkeypatch.setattr(quantization, "VENDOR_DIR", tmp_path / "vendor_sdk")
    oracle, why = quantization.vendor_oracle()
    assert oracle is None
    assert "absent" in why and str(tmp_path / "vendor_sdk") in why


def test_vendor_columns_are_skipped_with_the_reason_when_the_sdk_is_not_set_up(tmp_path, monkeypatch):
    (tmp_path / "vendor_sdk" / "harness").mkdir(parents=True)
    (tmp_path / "vendor_sdk" / "harness" / "oracle.py").write_text("")
    monkeypatch.setattr(quantization, "VENDOR_DIR", tmp_path / "vendor_sdk")
    monkeypatch.setenv("SGS_ORACLE_VENV", str(tmp_path / "no_venv"))
    oracle, why = quantization.vendor_oracle()
    assert oracle is None
    assert "not set up" in why and "setup.sh" in why


class _Sim:
    def __init__(self, names):
        self.names = names

    def get_output_details(self):
        return [{"name": n} for n in self.names]


def test_aligned_reorders_by_name_and_trims_the_vendors_padding():
    rng = np.random.default_rng(0)
    ref = [[rng.standard_normal((1, 4, 3)).astype(np.float32), rng.standard_normal((1, 5)).astype(np.float32)]]
    padded_b = rng.standard_normal((1, 8)).astype(np.float32)
    padded_a = rng.standard_normal((1, 4, 16)).astype(np.float32)
    got = quantization._aligned(_Sim(["b", "a"]), [[padded_b, padded_a]], _Sim(["a", "b"]), ref)
    assert len(got) == 1 and len(got[0]) == 2
    assert got[0][0].shape == (1, 4, 3) and got[0][0].dtype == np.float32
    assert got[0][1].shape == (1, 5)
    np.testing.assert_array_equal(got[0][0], padded_a[:, :, :3])
    np.testing.assert_array_equal(got[0][1], padded_b[:, :5])
