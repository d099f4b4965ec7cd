"""quant_param files and lists: the restricted unpickler, JSON error positions, and item values."""
from __future__ import annotations

import json
import os
import pickle
import subprocess

import numpy as np
import pytest

from calibrator_custom.calib import collect_stats_arrays
from calibrator_custom.errors import ConfigError
from calibrator_custom.pipeline.convert import convert
from calibrator_custom.pipeline.export import export_quant_param
from calibrator_custom.quant.qparam import load_quant_param, restricted_pickle_loads, save_quant_param
from test_pipeline_convert import MEAN, STD, _ini, _small_net


# ------------------------------------------------------------------------------------------ pickles
class _System:
    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        return os.system, (f"touch {self.flag}",)


class _Popen:
    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        return subprocess.Popen, (["touch", str(self.flag)],)


class _Eval:
    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        return eval, (f"open({str(self.flag)!r}, 'w')",)


@pytest.mark.parametrize("payload", [_System, _Popen, _Eval])
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_a_malicious_pickle_is_refused_without_running(tmp_path, payload, protocol):
    flag = tmp_path / "ran"
    items = [{"name": "conv1", "min": [0.0], "max": [1.0], "bit": 16, "extra": payload(flag)}]
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(items, protocol=protocol))
    with pytest.raises(ConfigError, match="is a pickle that is not allowed: it names the global") as info:
        load_quant_param(path)
    assert str(path) in str(info.value) and "refused unrun" in str(info.value)
    assert not flag.exists()


def test_numpy_object_arrays_and_other_classes_are_refused(tmp_path):
    path = tmp_path / "obj.pkl"
    path.write_bytes(pickle.dumps([{"name": "w1", "min": [0.0], "max": [1.0], "bit": 8,
                                    "data": np.array([1, "x"], dtype=object)}]))
    with pytest.raises(ConfigError, match="object array"):
        load_quant_param(path)
    from collections import OrderedDict
    path.write_bytes(pickle.dumps([OrderedDict(name="w1", min=[0.0], max=[1.0], bit=8)]))
    with pytest.raises(ConfigError, match="collections.OrderedDict"):
        load_quant_param(path)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_items_round_trip_through_every_protocol(protocol):
    items = [{"name": "w", "min": [np.float32(-1.5), -2], "max": [np.float64(3.0), 4], "bit": 8,
              "data": np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]},
             {"name": "b", "min": [0.0], "max": [1.0], "bit": 32, "data": np.asfortranarray(np.ones((2, 3), np.int64)),
              "note": ("t", b"bytes", None, True)}]
    back = restricted_pickle_loads(pickle.dumps(items, protocol=protocol))
    assert [set(a) for a in back] == [set(a) for a in items]
    for a, b in zip(back, items):
        assert a["min"] == b["min"] and a["max"] == b["max"] and a["name"] == b["name"]
        assert a["data"].dtype == b["data"].dtype and a["data"].shape == b["data"].shape
        assert np.array_equal(a["data"], b["data"])
    assert back[1]["note"] == ("t", b"bytes", None, True)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("qpf")
    model = _small_net(d / "net_float.sim")
    rng = np.random.default_rng(1)
    feeds = [[(rng.integers(0, 256, (1, 12, 12, 3)).astype(np.float32) - MEAN) / STD] for _ in range(4)]
    stats = collect_stats_arrays(model, feeds)
    fixed = d / "net_fixed.sim"
    convert(model, _ini(d / "c.ini"), stats, quant_level="L1", output_path=fixed)
    return d, model, stats, fixed


def test_the_pickles_we_write_still_load(small):
    d, model, stats, fixed = small
    items = export_quant_param(fixed)
    assert any(isinstance(it.get("data"), np.ndarray) for it in items)  # biases carry data arrays
    save_quant_param(items, d / "qp.pkl")
    back = load_quant_param(d / "qp.pkl")
    assert [it["name"] for it in back] == [it["name"] for it in items]
    for a, b in zip(back, items):
        assert a["min"] == b["min"] and a["max"] == b["max"] and a["bit"] == b["bit"]
        if "data" in b:
            assert a["data"].dtype == b["data"].dtype and np.array_equal(a["data"], b["data"])
    again = d / "again_fixed.sim"
    convert(model, _ini(d / "c.ini"), stats, quant_level="L1", quant_param=back, output_path=again)
    assert again.read_bytes() == fixed.read_bytes()


# ------------------------------------------------------------------------------------------ JSON
@pytest.mark.parametrize("text, line, column", [
    ('[{"name": "gap",\n  "min": [0,],\n  "max": [1], "bit": 16}]', 2, 13),
    ('[\n{"name": "gap" "min": [0]}]', 2, 16),
    ('[{"name": "gap", "min": [0], "max": [1], "bit": 16}', 1, 52),
])
def test_json_errors_give_the_line_and_column(tmp_path, text, line, column):
    path = tmp_path / "qp.json"
    path.write_text(text)
    with pytest.raises(json.JSONDecodeError) as ref:  # the hand-counted position agrees with the json module
        json.loads(text)
    assert (ref.value.lineno, ref.value.colno) == (line, column)
    with pytest.raises(ConfigError, match=f"invalid JSON at line {line} column {column}: "):
        load_quant_param(path)


def test_json_without_the_suffix_is_still_read_as_json(tmp_path):
    path = tmp_path / "qp.txt"
    path.write_text('  [{"name": "gap", "min": [0], "max": [1], "bit": 16, "data": [[1, 2], [3, 4]]}]')
    items = load_quant_param(path)
    assert items[0]["data"].dtype == np.float64 and items[0]["data"].shape == (2, 2)
    path.write_text('[{"name": "gap", "min": [0], "max": [1], "bit": 16},]')
    with pytest.raises(ConfigError, match="invalid JSON at line 1 column 53"):
        load_quant_param(path)


# ------------------------------------------------------------------------------------------ item values
def _item(**kw):
    return {"name": "gap", "min": [-1.0], "max": [1.0], "bit": 16, **kw}


BAD_ITEMS = [
    ([_item(min=["a"])], r"quant_param\[0\] \(tensor 'gap'\): min must be a flat list of numbers.*'a'"),
    ([_item(max=[True])], r"quant_param\[0\] \(tensor 'gap'\): max must be a flat list"),
    ([_item(), _item(name="fc", min=[[0.0, 1.0], [2.0]])], r"quant_param\[1\] \(tensor 'fc'\): min .*nested list"),
    ([_item(name="fc", min=[0.0, 1.0], max=[1.0, 2.0, 3.0])], r"quant_param\[0\] \(tensor 'fc'\): min has 2 values"),
    ([_item(), _item(name="conv1"), _item()], r"quant_param\[2\] \(tensor 'gap'\) repeats quant_param\[0\]"),
    ([_item(name="w3", data=np.full((4, 8), np.nan))],
     r"quant_param\[0\] \(tensor 'w3'\): data holds nan at index \[0, 0\]"),
    ([_item(name="b3", data=np.array([0, 0, np.inf, 0]))],
     r"quant_param\[0\] \(tensor 'b3'\): data holds inf at index \[2\]"),
    ([_item(min=[-1e300])], r"quant_param\[0\] \(tensor 'gap'\): min holds -1e\+300; allowed: finite numbers from "
                            r"-1e\+20 to 1e\+20"),
    ([_item(max=[float("nan")])], r"quant_param\[0\] \(tensor 'gap'\): max holds nan"),
    ([_item(name="w3", data=np.full((4, 8), 1e300))], r"quant_param\[0\] \(tensor 'w3'\): data holds 1e\+300"),
]


@pytest.mark.parametrize("items, pattern", BAD_ITEMS)
def test_bad_items_are_config_errors_naming_index_and_tensor(small, items, pattern):
    d, model, stats, _ = small
    with pytest.raises(ConfigError, match=pattern):
        convert(model, _ini(d / "c.ini"), stats, quant_level="L1", quant_param=items)


@pytest.mark.parametrize("items, pattern", BAD_ITEMS)
def test_bad_items_in_files_name_the_file_index_and_tensor(tmp_path, items, pattern):
    path = tmp_path / "qp.pkl"
    save_quant_param(items, path)
    with pytest.raises(ConfigError, match=pattern) as info:
        load_quant_param(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text, pattern", [
    ('[{"name": "w3", "min": [0], "max": [1], "bit": 8, "data": [[1, 2], [3]]}]',
     r"quant_param\[0\] \(tensor 'w3'\): data must be a \(nested\) list of numbers .* ragged"),
    ('[{"name": "w3", "min": [0], "max": [1], "bit": 8, "data": [1, NaN]}]',
     r"quant_param\[0\] \(tensor 'w3'\): data holds nan at index \[1\]"),
    ('[{"name": "gap", "min": [-1e300], "max": [1], "bit": 16}]', r"min holds -1e\+300"),
])
def test_bad_json_items_name_the_index_and_tensor(tmp_path, text, pattern):
    path = tmp_path / "qp.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=pattern):
        load_quant_param(path)
