"""SigmaStar's own float models (made by the vendor's convert_tool in the session) against the vendor's
float simulator: read, round-tripped, run, every dumped tensor compared; and the calibration path."""
from __future__ import annotations

import struct

import numpy as np
import pytest

import calibrator_custom
from calibrator_custom.errors import ModelError
from calibrator_custom.interpreter import Interpreter
from calibrator_custom.model.builder import ModelBuilder
from calibrator_custom.model.graph import Model, load_model
from conftest import MODELS_DIR, require_shared, shared_models
from images import calibration_images, model_input, norm_for
from vendor_oracle import calibration_inputs, compare_dump, ini_text, refusal_line, vendor  # noqa: F401 - the fixture
from vendor_singleops import CASES, SHAPE

SINGLE_OP_INI = ini_text(["x"], ["y"], 127.5, 127.5)


def _single_op(vendor, tmp_path_factory, case: str):  # noqa: F811
    path = tmp_path_factory.getbasetemp() / f"single_{case}.tflite"
    if not path.exists():
        CASES[case]().save(path)
    return vendor.convert(path, SINGLE_OP_INI, case)


def _ours(model: Model, feeds) -> dict[str, np.ndarray]:
    it = Interpreter(model)
    values = it.run(feeds, keep="all")
    return {it.graph.tensors[i].name: v for i, v in values.items()}


def _check_against_vendor(vendor, sim_path, x):  # noqa: F811
    ref = vendor.float_sim(sim_path, x)
    model = load_model(sim_path)
    assert model.is_vendor and model.dialect in ("sgs_float", "sgs_cmodel_float")
    # outputs through the public simulator
    sim = calibrator_custom.float_simulator(str(sim_path))
    sim.set_input(0, x)
    sim.invoke()
    outputs = {d["name"]: sim.get_output(d["index"]) for d in sim.get_output_details()}
    for name, got in outputs.items():
        assert got.dtype == np.float32 and got.shape == ref[name].shape, name
        assert name in ref["_dump"], f"output {name} missing from the vendor's dump"
    n, failures = compare_dump(outputs, {k: ref["_dump"][k] for k in outputs})
    assert n == len(outputs) and not failures, failures
    # every dumped tensor (every op's output) against our interpreter
    n, failures = compare_dump(_ours(model, [x]), ref["_dump"])
    assert not failures, failures[:10]
    assert n >= len(model.main.operators) // 2
    return model


# ------------------------------------------------------------------------------------ single ops
@pytest.mark.parametrize("case", sorted(CASES))
def test_single_op_matches_the_vendor_float_simulator(vendor, tmp_path_factory, case):  # noqa: F811
    sim_path = _single_op(vendor, tmp_path_factory, case)
    x = np.random.RandomState(7).uniform(-1, 1, SHAPE).astype(np.float32)
    _check_against_vendor(vendor, sim_path, x)


def test_bias_second_row_scales_conv_output(vendor, tmp_path_factory, tmp_path):  # noqa: F811
    """Row 1 of a vendor [2, C] bias multiplies the conv output per channel (here set to 2, -0.5, 0, 3)."""
    sim_path = _single_op(vendor, tmp_path_factory, "conv_same")
    model = load_model(sim_path)
    bias_t = next(t for t in model.main.tensors if t.shape == (2, 4))
    bias = model.tensor_data(bias_t)
    assert bias.dtype == np.float32 and np.all(bias[1] == 1.0)
    data = sim_path.read_bytes()
    raw = bytes(model.buffers[bias_t.buffer].data)
    assert data.count(raw) == 1
    patched = tmp_path / "factor_float.sim"
    factor = np.array([2.0, -0.5, 0.0, 3.0], np.float32)
    patched.write_bytes(data.replace(raw, bias[0].tobytes() + factor.tobytes()))
    x = np.random.RandomState(3).uniform(-1, 1, SHAPE).astype(np.float32)
    _check_against_vendor(vendor, patched, x)
    plain = vendor.float_sim(sim_path, x)["_dump"]["y"].reshape(1, 8, 8, 4)
    scaled = vendor.float_sim(patched, x)["_dump"]["y"].reshape(1, 8, 8, 4)
    np.testing.assert_allclose(scaled, plain * factor, rtol=1e-6, atol=1e-6)


def test_softmax_beta_zero_is_a_plain_softmax(vendor, tmp_path_factory):  # noqa: F811
    """The vendor simulates SoftmaxOptions.beta 0.0 as beta 1 (TFLite would give a uniform 1/C)."""
    sim_path = _single_op(vendor, tmp_path_factory, "softmax_beta_0")
    model = load_model(sim_path)
    sm = [op for op in model.main.operators if model.op_name(op) == "SOFTMAX"]
    assert len(sm) == 1 and sm[0].options.beta == 0.0
    x = np.random.RandomState(5).uniform(-1, 1, SHAPE).astype(np.float32)
    ref = vendor.float_sim(sim_path, x)["_dump"]["y"].reshape(SHAPE).astype(np.float64)
    e = np.exp(x.astype(np.float64) - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(ref, e / e.sum(axis=-1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_concatenation_inputs_of_another_rank(vendor, tmp_path_factory):  # noqa: F811
    model = load_model(_single_op(vendor, tmp_path_factory, "concat_reshaped"))
    g = model.main
    (cat,) = [op for op in g.operators if model.op_name(op) == "CONCATENATION"]
    assert [len(g.tensors[i].shape) for i in cat.inputs] == [4, 4] and len(g.tensors[cat.outputs[0]].shape) == 3


# ------------------------------------------------------------------------------ reading, writing
def test_vendor_files_round_trip(vendor, tmp_path_factory):  # noqa: F811
    sim_path = _single_op(vendor, tmp_path_factory, "concat_channels")
    data = sim_path.read_bytes()
    model = Model.from_bytes(data)
    assert model.to_bytes() == data  # unmodified: byte for byte
    assert model.extra["sgs_sdk_version"].startswith("1.1.5")
    t = model.main.tensors[model.main.inputs[0]]
    assert t.extra["sgs_role"] == 1 and t.extra["sgs_fixed_type"] == "UINT8"
    assert set(model.main.extra) >= {"sgs_arena_bytes", "sgs_tensor_flags", "sgs_op_flags"}
    assert len(model.main.extra["sgs_tensor_flags"]) == len(model.main.tensors)
    assert len(model.main.extra["sgs_op_flags"]) == len(model.main.operators)
    fresh = model.copy()
    fresh.source = None
    again = Model.from_bytes(fresh.to_bytes())  # re-encoded by our writer in the vendor's dialect
    assert again == model and again.dialect == "sgs_float"


def test_vendor_cmodel_float_and_fixed_files_are_read(vendor, tmp_path_factory, tmp_path):  # noqa: F811
    """The vendor's L1 calibrator output: cmodel_float.sim and fixed.sim, read and written back."""
    require_shared()
    float_sim = _single_op(vendor, tmp_path_factory, "conv_relu6_fused")
    images, pre = calibration_inputs(tmp_path, 8, 8)
    ini = tmp_path / "input_config.ini"
    ini.write_text(SINGLE_OP_INI)
    fixed = vendor.calibrate_l1(float_sim, images, pre, ini)
    cmodel = float_sim.with_name(float_sim.name.replace("_float.sim", "_cmodel_float.sim"))
    for path, dialect in ((cmodel, "sgs_cmodel_float"), (fixed, "sgs_fixed")):
        data = path.read_bytes()
        model = Model.from_bytes(data)
        assert model.dialect == dialect and model.to_bytes() == data
        g = model.main
        (conv,) = [op for op in g.operators if model.op_name(op) == "CONV_2D"]
        out_q = g.tensors[conv.outputs[0]].quantization
        assert out_q.min is not None and out_q.max is not None and out_q.min[0] <= out_q.max[0]
        bias = model.tensor_data(g.tensors[conv.inputs[2]])
        assert bias.shape == (2, 4)
        for t in g.tensors:
            if t.buffer:
                model.tensor_data(t)  # padded fixed buffers read at the tensor's size
        fresh = model.copy()
        fresh.source = None
        assert Model.from_bytes(fresh.to_bytes()) == model
    fixed_model = load_model(fixed)
    assert fixed_model.main.tensors[conv.outputs[0]].quantization.scale is not None
    x = np.random.RandomState(2).uniform(-1, 1, SHAPE).astype(np.float32)
    _check_against_vendor(vendor, cmodel, x)  # the cmodel_float.sim simulates like the float one
    with pytest.raises(ModelError, match="is a SigmaStar fixed model"):
        calibrator_custom.float_simulator(str(fixed))
    assert calibrator_custom.fixed_simulator(str(fixed)).class_type == "FIXED"  # the vendor's integer semantics


def test_the_runnable_copy_is_a_plain_tflite_model(vendor, tmp_path_factory, tmp_path):  # noqa: F811
    from calibrator_custom.model.sgs_lower import runnable

    vendor_model = load_model(_single_op(vendor, tmp_path_factory, "conv_same"))
    plain = runnable(vendor_model)
    assert plain.dialect == "tflite" and not plain.is_vendor and vendor_model.is_vendor
    assert not any(k.startswith("sgs_") for t in plain.main.tensors for k in t.extra)
    (conv,) = [op for op in plain.main.operators if plain.op_name(op) == "CONV_2D"]
    assert plain.main.tensors[conv.inputs[2]].shape == (4,)
    plain.save(tmp_path / "plain.tflite")
    again = load_model(tmp_path / "plain.tflite")
    assert again.dialect == "tflite" and again.main.tensors[conv.inputs[2]].shape == (4,)


def test_unknown_sigmastar_dialect_is_refused(vendor, tmp_path_factory):  # noqa: F811
    data = _single_op(vendor, tmp_path_factory, "relu").read_bytes()
    assert data.count(b"Sigmastar Float") == 1
    with pytest.raises(ModelError, match="unknown SigmaStar model dialect.*Sigmastar Flout"):
        Model.from_bytes(data.replace(b"Sigmastar Float", b"Sigmastar Flout"))


def test_vendor_description_over_a_tflite_layout_is_refused():
    b = ModelBuilder(description="Sigmastar Float")
    x = b.input("x", (1, 4))
    b.output(b.op("RELU", [x], name="y"))
    with pytest.raises(ModelError, match="unknown SigmaStar model dialect"):
        Model.from_bytes(b.build().to_bytes())


def test_the_file_name_does_not_decide(tmp_path):
    b = ModelBuilder()
    x = b.input("x", (1, 4))
    b.output(b.op("RELU", [x], name="y"))
    path = tmp_path / "looks_like_vendor_float.sim"
    b.save(path)
    assert load_model(path).dialect == "tflite"


def test_truncated_or_corrupted_vendor_file_gives_model_error(vendor, tmp_path_factory):  # noqa: F811
    data = _single_op(vendor, tmp_path_factory, "conv_same").read_bytes()
    rng = np.random.RandomState(11)
    cuts = sorted(set(rng.randint(0, len(data), 60).tolist()) | {0, 4, 8, 16, len(data) - 1})
    for n in cuts:
        with pytest.raises(ModelError):
            Model.from_bytes(data[:n])
    refused = 0
    for pos in rng.randint(0, len(data), 300).tolist():
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.randint(8))
        try:
            Model.from_bytes(bytes(bad))  # a flip in a weight or a name still gives a valid model
        except ModelError:
            refused += 1
        # anything else (IndexError, KeyError, struct.error ...) fails the test
    assert refused > 0
    root = struct.unpack_from("<I", data, 0)[0]
    with pytest.raises(ModelError):  # the root offset pointing past the end
        Model.from_bytes(struct.pack("<I", len(data) + 8) + data[4:])
    assert root < len(data)


# ------------------------------------------------------------------------------ real models
def _vendor_corpus_model(vendor, path):  # noqa: F811
    model = load_model(path)
    g = model.main
    mean, std = norm_for(path.name)
    ini = ini_text([g.tensors[i].name for i in g.inputs], [g.tensors[i].name for i in g.outputs], mean, std)
    try:
        return vendor.convert(path, ini, path.stem)
    except vendor.Error as e:
        pytest.skip(f"the vendor's convert_tool refuses {path.name}: {refusal_line(e)}")


@pytest.mark.slow
@pytest.mark.parametrize("path", shared_models(), ids=lambda p: p.name)
def test_real_model_matches_the_vendor_float_simulator(vendor, path):  # noqa: F811
    require_shared()
    sim_path = _vendor_corpus_model(vendor, path)
    shape = load_model(sim_path).main.tensors[0].shape
    for photo in calibration_images()[:2]:
        _check_against_vendor(vendor, sim_path, model_input(photo, shape, path.name))


@pytest.mark.slow
def test_calibration_path_on_a_vendor_float_model(vendor, tmp_path):  # noqa: F811
    """calibrator(vendor float.sim, ini) -> statistics, L1-L4 conversion, our fixed simulator, sgs-analyze."""
    require_shared()
    from calibrator_custom.cli.analyze import main as analyze_main
    from calibrator_custom.analysis import pooled_sqnr_db
    from calibrator_custom import utils

    source = MODELS_DIR / "face_detection_short_range.tflite"
    sim_path = _vendor_corpus_model(vendor, source)
    ini = tmp_path / "input_config.ini"
    g = load_model(sim_path).main
    ini.write_text(ini_text([g.tensors[i].name for i in g.inputs], [g.tensors[i].name for i in g.outputs],
                            127.5, 127.5))
    photos = [str(p) for p in calibration_images()[:3]]
    pre = utils.image_preprocess_func("face_detection_short_range")

    class Net(calibrator_custom.SIM_Calibrator):
        def __init__(self):
            super().__init__()
            self.model = calibrator_custom.calibrator(str(sim_path), str(ini))

        def forward(self, x):
            self.model.set_input(0, x[0])
            self.model.invoke()
            return [self.model.get_output(k) for k in range(2)]

    net = Net()
    details = net.model.get_tensor_details()
    assert any(d["name"] == "regressors" for d in details)
    float_sim = calibrator_custom.float_simulator(str(sim_path))
    tflite_sim = calibrator_custom.float_simulator(str(source))
    for level in ("L1", "L2", "L3", "L4"):  # L5 takes about a minute on this model
        fixed = tmp_path / f"face_{level}_fixed.sim"
        net.convert(utils.image_generator(photos, [pre], norm=True), num_process=1, quant_level=level,
                    fix_model=[str(fixed)])
        fixed_sim = calibrator_custom.fixed_simulator(str(fixed))
        refs, gots, tfl = [], [], []
        for p in photos:
            x = pre(p, norm=True)
            float_sim.set_input(0, x)
            float_sim.invoke()
            refs.append(float_sim.get_output(0))
            tflite_sim.set_input(0, x)
            tflite_sim.invoke()
            tfl.append(tflite_sim.get_output(0))
            fixed_sim.set_input(0, utils.convert_to_input_formats(pre(p, norm=False), fixed_sim.get_input_details()[0]))
            fixed_sim.invoke()
            gots.append(fixed_sim.get_output(0))
        assert pooled_sqnr_db(tfl, refs) > 100  # the vendor float model is the TFLite model
        assert pooled_sqnr_db(refs, gots) > 15, level
    images = tmp_path / "images"
    images.mkdir()
    for p in photos:
        (images / p.split("/")[-1]).write_bytes(open(p, "rb").read())
    pre_py = tmp_path / "pre.py"
    pre_py.write_text(
        "import cv2, numpy as np\n"
        "def image_preprocess(img_path, norm=True):\n"
        "    img = cv2.resize(cv2.imread(img_path)[:, :, ::-1], (128, 128))\n"
        "    return ((img.astype(np.float32) - 127.5) / 127.5)[None] if norm else np.ascontiguousarray(img)[None]\n")
    out = tmp_path / "report"
    assert analyze_main(["-m", str(sim_path), "--fixed", str(tmp_path / "face_L1_fixed.sim"), "-i", str(images),
                         "-n", str(pre_py), "-o", str(out), "--num_images", "2", "--gain_samples", "1",
                         "--input_config", str(ini)]) == 0
    assert (out / "report.json").is_file()
