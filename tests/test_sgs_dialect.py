"""The vendor's own slots (options tables and the vendor's tables): typed, kept through decode -> modify ->
encode, and the vendor's float simulator computes a re-encoded model the same (vendor files made in the
session by the vendor's convert_tool and L1 calibrator; none is committed)."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from calibrator_custom.errors import ModelError
from calibrator_custom.model import sgs_dialect, sgs_slots
from calibrator_custom.model.graph import Model, load_model
from conftest import require_shared
from vendor_oracle import calibration_inputs, ini_text, vendor  # noqa: F401 - the fixture
from vendor_singleops import CASES, SHAPE

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from sgs_slot_survey import Survey  # noqa: E402

INI = ini_text(["x"], ["y"], 127.5, 127.5)
#: single-op cases whose options carry vendor slots (float and fixed), and a few plain ones
FIXED_CASES = ("conv_same", "conv_valid_stride2", "depthwise_same", "max_pool", "average_pool", "softmax",
               "logistic", "prelu", "relu", "leaky_relu", "mul_const", "concat_channels", "reshape", "mean",
               "tanh")


def _float(vendor, tmp_path_factory, case):  # noqa: F811
    path = tmp_path_factory.getbasetemp() / f"sgsd_{case}.tflite"
    if not path.exists():
        CASES[case]().save(path)
    return vendor.convert(path, INI, case)


@pytest.fixture(scope="module")
def vendor_files(vendor, tmp_path_factory):  # noqa: F811
    """{name: path}: every single-op float.sim, and cmodel_float.sim + fixed.sim of FIXED_CASES."""
    require_shared()
    files = {f"{c}_float": _float(vendor, tmp_path_factory, c) for c in sorted(CASES)}
    work = tmp_path_factory.mktemp("sgsd_calib")
    images, pre = calibration_inputs(work, 8, 8)
    ini = work / "input_config.ini"
    ini.write_text(INI)
    for c in FIXED_CASES:
        fl = files[f"{c}_float"]
        files[f"{c}_fixed"] = vendor.calibrate_l1(fl, images, pre, ini)
        files[f"{c}_cmodel_float"] = fl.with_name(fl.name.replace("_float.sim", "_cmodel_float.sim"))
    return files


def _vendor_values(opts) -> dict:
    """The vendor-only fields of an options dataclass (the ones TFLite's table lacks)."""
    names = {f.name for f in sgs_dialect.VENDOR_FIELDS.get(opts.table_name, ())}
    return {k: v for k, v in dataclasses.asdict(opts).items() if k in names}


def test_every_vendor_slot_is_typed(vendor_files):
    """The survey of the session's vendor files finds no slot the schema lacks or types otherwise."""
    survey = Survey()
    survey.run([str(p) for p in vendor_files.values()])
    layout = survey.layout()
    assert layout, "the survey found no vendor slot at all"
    table_type = __import__("sgs_slot_survey")._table_type

    def under_a_plain_slot(key: str) -> bool:
        """Whether some slot on the path to ``key`` is one the whole corpus proves no table offset."""
        parts = key.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            parent = parent if "." not in parent else table_type(parent)
            kind = dict(sgs_slots.SLOTS.get(parent, ())).get(int(parts[i].replace("[]", "")))
            if kind is not None and not kind.startswith(("Sgs", "[Sgs")):
                return True
        return False

    for key, fields in layout.items():
        table = key if "." not in key else table_type(key)
        if under_a_plain_slot(key):
            continue  # a table in these few files under a slot the whole corpus proves a plain value
        assert table in sgs_slots.SLOTS, f"{key}: a table with vendor slots the schema does not have"
        known = dict(sgs_slots.SLOTS[table])
        for slot, type_name, note in fields:
            assert slot in known, f"{table} slot {slot} ({type_name}, {note}) is not typed"
            # fewer files can leave a scalar looking like an offset in every observation (values that are
            # multiples of 4); a scalar proved by the survey must be typed exactly so
            if not type_name.startswith("[") and not type_name.startswith("Sgs"):
                assert known[slot] == type_name, f"{table} slot {slot}: typed {known[slot]}, the bytes say {type_name}"
            # (which offsets hold vectors of tables and which plain vectors is not settled for every slot of
            # the fixed files' IPU program: docs/model_format.md, "Open")


#: vendor files whose EXP options hold a table no schema table types (the vendor's EXP LUT): they
#: are read and written back unmodified, re-encoding them is a ModelError (test below)
UNTYPED_OPTIONS = {"exp_float": "ExpOptions"}


def _re_encodable(vendor_files):
    return {name: path for name, path in vendor_files.items() if name not in UNTYPED_OPTIONS}


def test_options_a_vendor_file_fills_that_the_schema_does_not_type_are_never_dropped(vendor_files):
    """EXP's options have no TFLite field, yet the vendor's float.sim holds a table there: listed as
    untyped, written back byte for byte unmodified, and re-encoding it is a ModelError naming it."""
    for name, member in UNTYPED_OPTIONS.items():
        path = vendor_files[name]
        model = load_model(path)
        (listed,) = model.extra[sgs_dialect.UNTYPED]
        assert member in listed, listed
        assert model.to_bytes() == path.read_bytes()
        with pytest.raises(ModelError, match=f"slots calibrator_custom has not typed.*{member}"):
            model.to_bytes(reencode=True)
    listed = {name for name, path in vendor_files.items() if sgs_dialect.UNTYPED in load_model(path).extra}
    assert listed == set(UNTYPED_OPTIONS)


def test_unmodified_vendor_files_are_written_back_byte_for_byte(vendor_files):
    for name, path in vendor_files.items():
        data = path.read_bytes()
        assert Model.from_bytes(data).to_bytes() == data, name


def test_typed_slots_round_trip_for_every_options_type(vendor_files):
    """Re-encoded in the vendor dialect, every options table keeps its vendor slots' values."""
    seen = set()
    for name, path in _re_encodable(vendor_files).items():
        model = load_model(path)
        again = Model.from_bytes(model.to_bytes(reencode=True))
        assert again == model, name
        for a, b in zip(model.main.operators, again.main.operators):
            if a.options is None:
                continue
            va = _vendor_values(a.options)
            assert va == _vendor_values(b.options), (name, a.options.table_name)
            if any(v not in (None, 0, ()) for v in va.values()):
                seen.add(a.options.table_name)
    # the options types whose vendor slots hold something in these files (the converter makes the
    # single-op DEPTHWISE_CONV_2D a CONV_2D; the shared models carry DepthwiseConv2DOptions)
    assert {"Conv2DOptions", "Pool2DOptions", "SoftmaxOptions", "SgsActivationOptions",
            "SgsPreluOptions", "MulOptions", "ConcatenationOptions"} <= seen, seen


def test_a_modified_vendor_float_model_keeps_its_slots_and_its_vendor_outputs(vendor, vendor_files,  # noqa: F811
                                                                            tmp_path):
    """Tensor renamed and a weight buffer rewritten by the same values: the vendor simulates it the same."""
    x = np.random.RandomState(4).uniform(-1, 1, SHAPE).astype(np.float32)
    for case in ("conv_same", "depthwise_same", "softmax", "prelu", "logistic", "max_pool"):
        for kind in ("float", "cmodel_float"):
            path = vendor_files[f"{case}_{kind}"]
            model = _modified(load_model(path))
            data = model.to_bytes(reencode=True)
            if any(t.name.endswith("_renamed") for t in model.main.tensors):
                assert data != path.read_bytes(), case
            again = Model.from_bytes(data)
            assert again == model and again.dialect == model.dialect
            for a, b in zip(model.main.operators, again.main.operators):
                if a.options is not None:
                    assert _vendor_values(a.options) == _vendor_values(b.options)
            out = tmp_path / f"{case}_{kind}.sim"
            out.write_bytes(data)
            ref, got = vendor.float_sim(path, x), vendor.float_sim(out, x)
            outputs = sorted(k for k in ref if not k.startswith("_"))
            assert outputs and outputs == sorted(k for k in got if not k.startswith("_"))
            for k in outputs:
                assert ref[k].shape == got[k].shape and ref[k].dtype == got[k].dtype, k
                np.testing.assert_array_equal(ref[k], got[k], err_msg=f"{case}_{kind} {k}")


def _modified(model: Model) -> Model:
    """An inner activation renamed and a constant's buffer rewritten by the same bytes."""
    g = model.main
    ends = {g.tensors[i].name for i in (*g.inputs, *g.outputs)}
    inner = next((t for t in g.tensors if t.name not in ends and not t.buffer), None)
    if inner is not None:
        inner.name += "_renamed"
    const = next((t for t in g.tensors if t.buffer and model.buffers[t.buffer].data), None)
    if const is not None:
        b = model.buffers[const.buffer]
        model.buffers[const.buffer] = dataclasses.replace(b, data=bytes(bytearray(b.data)))
    return model


def test_a_modified_vendor_fixed_model_keeps_its_slots_and_its_vendor_outputs(vendor, vendor_files,  # noqa: F811
                                                                            tmp_path):
    """Every vendor slot of a fixed.sim (the IPU program in the options) survives re-encoding, and the
    vendor's fixed simulator computes the re-encoded file bit for bit as the original."""
    x = np.random.RandomState(6).randint(0, 256, SHAPE).astype(np.uint8)
    for case in FIXED_CASES:
        path = vendor_files[f"{case}_fixed"]
        model = _modified(load_model(path))
        assert model.dialect == "sgs_fixed"
        data = model.to_bytes(reencode=True)
        again = Model.from_bytes(data)
        assert again == model, case
        assert [b.empty_vector for b in again.buffers] == [b.empty_vector for b in model.buffers]
        out = tmp_path / f"{case}_fixed.sim"
        out.write_bytes(data)
        ref, got = vendor.oracle.fixed_sim(str(path), x), vendor.oracle.fixed_sim(str(out), x)
        outputs = sorted(k for k in ref if not k.startswith("_"))
        assert outputs and outputs == sorted(k for k in got if not k.startswith("_"))
        for k in outputs:
            assert ref[k].shape == got[k].shape and ref[k].dtype == got[k].dtype, k
            np.testing.assert_array_equal(ref[k], got[k], err_msg=f"{case} {k}")


def test_input_rescale_is_offset_multiplier_shift(vendor, vendor_files, tmp_path):  # noqa: F811
    """Operator.sgs_input_rescale of a fixed RELU: y = ((q + offset) * multiplier) >> shift, shown by
    patching each field through the encoder and running the vendor's fixed simulator."""
    path = vendor_files["relu_fixed"]
    x = np.random.RandomState(0).randint(0, 256, SHAPE).astype(np.uint8)
    ref = vendor.oracle.fixed_sim(str(path), x, dump=True)["_dump"]["y"].astype(np.int64)
    model = load_model(path)
    (relu,) = [o for o in model.main.operators if model.op_name(o) == "RELU"]
    (rescale,) = relu.extra["sgs_input_rescale"]
    zero_point = model.main.tensors[relu.inputs[0]].quantization.zero_point[0]
    assert rescale["offset"] == -zero_point and rescale["shift"] > 0

    def patched(**fields):
        m = load_model(path)
        (op,) = [o for o in m.main.operators if m.op_name(o) == "RELU"]
        op.extra["sgs_input_rescale"] = ({**op.extra["sgs_input_rescale"][0], **fields},)
        out = tmp_path / f"relu_{'_'.join(fields)}.sim"
        out.write_bytes(m.to_bytes())
        return vendor.oracle.fixed_sim(str(out), x, dump=True)["_dump"]["y"].astype(np.int64)

    m, sh = rescale["multiplier"], rescale["shift"]

    def rescaled(d, multiplier, shift):  # rounding right shift (half up)
        return (d * multiplier + (1 << (shift - 1))) >> shift

    positive = ref > 0
    assert positive.sum() > 20
    d = np.round(ref[positive] * 2.0 ** sh / m).astype(np.int64)  # q + offset of each positive output
    np.testing.assert_array_equal(rescaled(d, m, sh), ref[positive])  # the rule reproduces the vendor's output
    np.testing.assert_array_equal(patched(multiplier=m // 2)[positive], rescaled(d, m // 2, sh))
    np.testing.assert_array_equal(patched(shift=sh + 1)[positive], rescaled(d, m, sh + 1))
    # the output saturates at INT16 max
    np.testing.assert_array_equal(patched(offset=rescale["offset"] + 26)[positive],
                                  np.minimum(rescaled(d + 26, m, sh), 32767))


def test_re_encoded_vendor_files_are_the_vendors_bytes(vendor_files):
    """``to_bytes(reencode=True)`` writes the vendor's file layout (objects back to front, vtables
    clustered after them): an unmodified vendor file re-encodes to its own bytes."""
    for name, path in _re_encodable(vendor_files).items():
        data = path.read_bytes()
        again = load_model(path).to_bytes(reencode=True)
        assert len(again) == len(data), name
        assert again == data, (name, next(i for i in range(len(data)) if again[i] != data[i]))


def test_the_vendors_compiler_takes_re_encoded_and_modified_fixed_files(vendor, vendor_files, tmp_path):  # noqa: F811
    """sgs_compiler re-serializes a model and refuses a file of another size
    (``SGS_ExportSGSModel: Assertion 'pstModelIn->u32PureModelSize == size'``): a re-encoded fixed.sim
    and one with renamed tensors and a patched rescale (other sizes than the vendor's file) compile."""
    for case in ("conv_same", "depthwise_same", "max_pool", "softmax", "logistic", "prelu", "relu"):
        path = vendor_files[f"{case}_fixed"]
        model = load_model(path)
        for t in model.main.tensors:
            t.name += "_renamed"
        op = next((o for o in model.main.operators if o.extra.get("sgs_input_rescale")), None)
        if op is not None:
            op.extra["sgs_input_rescale"] = ({**op.extra["sgs_input_rescale"][0], "offset": 1},)
        for kind, data in (("re_encoded", load_model(path).to_bytes(reencode=True)), ("modified", model.to_bytes())):
            out = tmp_path / f"{case}_{kind}_fixed.sim"
            out.write_bytes(data)
            offline = vendor.oracle.compile_offline(str(out), str(tmp_path / f"{case}_{kind}_offline.sim"))
            assert Path(offline).read_bytes()[:4] == b"SGSI", (case, kind)


def test_re_encoded_tables_have_the_vendors_layout(vendor_files):
    """Each table written back has the vendor's vtable (the same field offsets and table size)."""
    import struct

    from calibrator_custom.model import flatbuf

    def layouts(data):
        out = {}

        class Reader(flatbuf._Reader):
            def table(self, pos, name, what, depth):
                vt = pos - struct.unpack_from("<i", data, pos)[0]
                n, size = struct.unpack_from("<HH", data, vt)
                offs = [struct.unpack_from("<H", data, vt + 4 + 2 * i)[0] for i in range((n - 4) // 2)]
                while offs and not offs[-1]:
                    offs.pop()
                out[what] = (tuple(offs), size)
                return super().table(pos, name, what, depth)

        r = Reader(data, data[4:8], sgs_dialect.detect(data))
        r.table(r.uoffset(0, "root"), "Model", "Model", 0)
        return out

    for name, path in _re_encodable(vendor_files).items():
        data = path.read_bytes()
        ref, got = layouts(data), layouts(load_model(path).to_bytes(reencode=True))
        assert ref.keys() == got.keys(), name
        differ = [k for k in ref if ref[k] != got[k]]
        assert not differ, (name, differ[:3], [ref[k] for k in differ[:3]], [got[k] for k in differ[:3]])


def test_truncated_or_corrupted_vendor_fixed_file_gives_model_error(vendor_files):
    data = vendor_files["conv_same_fixed"].read_bytes()
    rng = np.random.RandomState(12)
    for n in sorted(set(rng.randint(0, len(data), 40).tolist()) | {0, 8, len(data) - 1}):
        with pytest.raises(ModelError):
            Model.from_bytes(data[:n])
    refused = 0
    for pos in rng.randint(0, len(data), 300).tolist():
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.randint(8))
        try:
            Model.from_bytes(bytes(bad))
        except ModelError:
            refused += 1
    assert refused > 0


def test_subgraph_input_format_codes(vendor, vendor_files, tmp_path_factory):  # noqa: F811
    """SubGraph slots 6 and 7 are the input config's input_formats and training_input_formats, as codes;
    slot 10 the pixel transform (a permutation of the RGB one for BGR input)."""
    work = tmp_path_factory.mktemp("sgsd_formats")
    tflite = tmp_path_factory.getbasetemp() / "sgsd_conv_same.tflite"  # made by the vendor_files fixture
    assert tflite.is_file()
    photos, pre = calibration_inputs(work, 8, 8)
    codes, transforms = {}, {}
    for fmt, train in (("RGB", "RGB"), ("BGR", "RGB"), ("BGR", "BGR"), ("RGBA", "RGB"), ("BGRA", "RGB")):
        ini = INI.replace("input_formats='RGB';\ntraining_input_formats='RGB';",
                          f"input_formats='{fmt}';\ntraining_input_formats='{train}';")
        assert ini != INI or fmt == train == "RGB"
        float_sim = vendor.convert(tflite, ini, f"fmt_{fmt}_{train}")
        ini_path = work / f"{fmt}_{train}.ini"
        ini_path.write_text(ini)
        fixed = load_model(vendor.calibrate_l1(float_sim, photos, pre, ini_path))
        assert load_model(float_sim).main.extra["sgs_input_formats"] == (0,)
        codes[fmt, train] = (fixed.main.extra["sgs_input_formats"], fixed.main.extra["sgs_training_input_formats"])
        (entry,) = fixed.main.extra["sgs_input_transforms"]
        transforms[fmt, train] = np.array(entry["pixel_transform"]).reshape(4, 3)
    assert codes == {("RGB", "RGB"): ((1,), (1,)), ("BGR", "RGB"): ((2,), (1,)), ("BGR", "BGR"): ((2,), (2,)),
                     ("RGBA", "RGB"): ((3,), (1,)), ("BGRA", "RGB"): ((4,), (1,))}
    rgb, bgr = transforms["RGB", "RGB"], transforms["BGR", "RGB"]
    np.testing.assert_array_equal(bgr[:3], rgb[:3, ::-1])  # the matrix's columns swap R and B
    np.testing.assert_array_equal(bgr[3], rgb[3])
    np.testing.assert_array_equal(transforms["BGR", "BGR"], rgb)  # no swap when training matches input


def test_the_runnable_copy_drops_every_vendor_slot(vendor_files, tmp_path):
    """sgs_lower.runnable makes a plain TFLite model: no vendor slot left, and it round-trips as TFLite."""
    from calibrator_custom.model.sgs_lower import runnable

    for case in ("conv_same", "softmax", "prelu", "mul_const"):
        plain = runnable(load_model(vendor_files[f"{case}_float"]))
        for op in plain.main.operators:
            if op.options is not None:
                assert not _vendor_values(op.options) or all(v in (None, 0) for v in _vendor_values(op.options).values())
                assert getattr(op.options, sgs_dialect.LAYOUT) is None
        plain.save(tmp_path / f"{case}.tflite")
        again = load_model(tmp_path / f"{case}.tflite")
        assert again.dialect == "tflite" and again.subgraphs == plain.subgraphs, case
        assert [again.op_name(o) for o in again.main.operators] == [plain.op_name(o) for o in plain.main.operators]


def test_a_vendor_slot_the_schema_lacks_is_never_dropped_silently(vendor_files, monkeypatch):
    """A file holding a slot no table types is written back unmodified; re-encoding it is a ModelError."""
    from calibrator_custom.model import flatbuf

    path = vendor_files["conv_same_float"]
    tables = dict(flatbuf._dialect("sgs_float").tables)
    tables["Conv2DOptions"] = tuple(f for f in tables["Conv2DOptions"] if f.slot != 41)
    monkeypatch.setattr(flatbuf._dialect("sgs_float"), "tables", tables)
    model = load_model(path)
    (listed,) = model.extra[sgs_dialect.UNTYPED]
    assert "Conv2DOptions" in listed and listed.endswith("slot 41")
    assert model.to_bytes() == path.read_bytes()
    model.main.tensors[0].name += "_renamed"
    with pytest.raises(ModelError, match="slots calibrator_custom has not typed.*slot 41"):
        model.to_bytes()
    monkeypatch.undo()
    assert sgs_dialect.UNTYPED not in load_model(path).extra  # every slot of the real schema is typed
