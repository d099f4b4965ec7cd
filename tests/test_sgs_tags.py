"""The vendor's per-tensor tag byte follows the file layout; the encoder recomputes it."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from calibrator_custom.model import sgs_tags
from calibrator_custom.model.graph import Model, load_model

import vendor_fixed_oracle as vo


def _vendor_file():
    reason = vo.vendor_missing_reason()
    if reason:
        pytest.skip(reason)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    import vendor_program_splice as vs
    return vs.make_standalone(vs.ConvKey("CONV_2D", (1, 8, 8, 96), (96, 1, 1, 96), 1, "VALID", "UINT8", "INT16",
                                         False))


def test_tags_of_a_vendor_file_are_its_own():
    """Every tag the vendor wrote is (quantization table - vtable cluster start) mod 256; absent means 0."""
    path = _vendor_file()
    data = path.read_bytes()
    model = load_model(path)
    (want,) = sgs_tags.tags_of(data)
    assert len(want) == len(model.main.tensors) and all(t is not None for t in want)
    got = [t.extra.get("sgs_tag") or 0 for t in model.main.tensors]
    assert got == want
    assert any(want) and 0 < sgs_tags.vtable_cluster_start(data) < len(data)


def test_reencoding_recomputes_spoilt_tags_to_the_vendor_bytes():
    path = _vendor_file()
    data = path.read_bytes()
    model = load_model(path)
    for t in model.main.tensors:
        t.extra = {**t.extra, "sgs_tag": (t.extra.get("sgs_tag") or 0) ^ 0x55}
    out = model.to_bytes(reencode=True)
    assert out == data
    assert Model.from_bytes(out) == model  # the model now holds the tags it was written with


def test_tags_follow_a_layout_change(tmp_path):
    """Growing one tensor's name moves every later table: the re-encoded tags are again the layout's,
    and the vendor's compiler (which re-serializes the model and checks its size) takes the file."""
    path = _vendor_file()
    model = load_model(path)
    t0 = model.main.tensors[0]
    t0.name = t0.name + "_renamed_to_move_the_tables"
    out = model.to_bytes(reencode=True)
    again = Model.from_bytes(out)
    (want,) = sgs_tags.tags_of(out)
    assert [t.extra.get("sgs_tag") or 0 for t in again.main.tensors] == want
    (tmp_path / "renamed.sim").write_bytes(out)
    img = vo.oracle().compile_offline(str(tmp_path / "renamed.sim"), str(tmp_path / "renamed.img"))
    assert Path(img).stat().st_size > 0


def test_the_encoder_reports_the_vtable_cluster_the_reader_finds(tmp_path):
    """``flatbuf.encode_with_layout``'s cluster position (what ``encode_with_tags`` uses instead of reading the
    bytes again) is the reader's first vtable, for a vendor file and a modified one; None for plain TFLite."""
    from calibrator_custom.model import flatbuf
    from test_pipeline_convert import _small_net
    model = load_model(_vendor_file())
    t0 = model.main.tensors[0]
    for suffix in ("", "_renamed_to_move_the_tables"):
        t0.name = t0.name + suffix
        data, start = flatbuf.encode_with_layout(model.to_dict(), model.file_identifier, dialect=model.dialect)
        assert start == sgs_tags.vtable_cluster_start(data) and 0 < start < len(data)
        assert sgs_tags.tags_of(data, start) == sgs_tags.tags_of(data)
    plain = load_model(_small_net(tmp_path / "net.tflite"))
    data, start = flatbuf.encode_with_layout(plain.to_dict(), b"TFL3")
    assert start is None and data == flatbuf.encode(plain.to_dict(), b"TFL3")
