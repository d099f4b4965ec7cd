"""SIM_Simulator: the vendor's registration rules and ``net(inputs[, num_process=N])`` semantics."""
from __future__ import annotations

import os

import numpy as np
import pytest

import calibrator_custom
import simnets as sn


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("simsim")
    a, b = sn.model_a(d), sn.model_b(d)
    fixed = str(d / "a_fixed.sim")

    class Cal(calibrator_custom.SIM_Calibrator):
        def __init__(self):
            super().__init__()
            self.a = calibrator_custom.calibrator(*a)

        def forward(self, x):
            return sn.run(self.a, x)

    Cal().convert(iter([[sn.normalized(p)] for p in sn.pixels(4)]), num_process=1, quant_level="L1", fix_model=[fixed])
    return {"a": a, "b": b, "a_fixed": fixed}


class Chain(calibrator_custom.SIM_Simulator):
    """Float A then float B, in one forward; records the process that ran it."""

    def __init__(self, models):
        super().__init__()
        self.a = calibrator_custom.float_simulator(models["a"][0])
        self.b = calibrator_custom.float_simulator(models["b"][0])

    def forward(self, x, scale=1.0):
        (y,) = sn.run(self.a, x)
        (z,) = sn.run(self.b, y)
        return z * scale, os.getpid()


def _samples(n: int, seed: int = 0) -> list[list[np.ndarray]]:
    return [[sn.normalized(p)] for p in sn.pixels(n, seed)]


# ---------------------------------------------------------------------------------------- registration
def test_every_simulator_kind_is_registered_in_order(models):
    class Mixed(calibrator_custom.SIM_Simulator):
        def __init__(self):
            super().__init__()
            self.fixed = calibrator_custom.fixed_simulator(models["a_fixed"])
            self.float = calibrator_custom.float_simulator(models["a"][0])
            self.cal = calibrator_custom.calibrator(*models["b"])
            self.note = "plain attribute"

    net = Mixed()
    assert list(net._simulators) == ["fixed", "float", "cal"]
    assert net.fixed.class_type == "FIXED" and net.note == "plain attribute"
    text = repr(net)
    assert text.startswith("Mixed:\nfixed (\nInput(0):\n    index:\t0\n    name:\timg\n")
    assert "    input_formats:\tRGB\n" in text and "\ncal (\nInput(0):\n" in text


def test_unknown_attribute_is_a_value_error(models):
    net = Chain(models)
    with pytest.raises(ValueError, match=r"'Chain' object has no attribute 'c' \(registered simulators: a, b\)"):
        net.c  # noqa: B018


def test_register_with_a_non_str_name_is_a_type_error(models):
    net = Chain(models)
    with pytest.raises(TypeError, match="simulators name should be a string. Got <class 'int'>"):
        net.register_simulator(1, net.a)


def test_register_with_an_empty_name_is_a_key_error(models):
    net = Chain(models)
    with pytest.raises(KeyError) as info:
        setattr(net, "", net.a)
    assert info.value.args == ("simulators name can't be empty string \"\"",)


def test_assigning_before_super_init_is_an_attribute_error(models):
    class Early(calibrator_custom.SIM_Simulator):
        def __init__(self):
            self.a = calibrator_custom.float_simulator(models["a"][0])
            super().__init__()

    with pytest.raises(AttributeError, match=r"cannot assign simulators before Early.__init__\(\) call"):
        Early()


def test_forward_must_be_implemented():
    with pytest.raises(NotImplementedError, match="SIM_Simulator.forward is not implemented"):
        calibrator_custom.SIM_Simulator()(np.zeros(1))


# ---------------------------------------------------------------------------------------- calling
def test_call_runs_forward_on_arrays(models):
    net = Chain(models)
    (x,) = _samples(1)[0]
    z, pid = net(x)
    fa, fb = calibrator_custom.float_simulator(models["a"][0]), calibrator_custom.float_simulator(models["b"][0])
    (ref,) = sn.run(fb, sn.run(fa, x)[0])
    assert z.shape == (1, 8, 8, 2) and z.dtype == np.float32 and pid == os.getpid()
    np.testing.assert_array_equal(z, ref)
    z2, _ = net(x, scale=2.0)  # keyword arguments reach forward without num_process
    np.testing.assert_array_equal(z2, ref * 2.0)


def test_generator_with_two_processes_keeps_input_order(models, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    net = Chain(models)
    samples = _samples(5, seed=1)
    serial = [net.forward(*s)[0] for s in samples]
    results = net(iter(samples), num_process=2)
    assert isinstance(results, list) and len(results) == 5
    for got, ref in zip(results, serial):
        assert got[0].shape == ref.shape and got[0].dtype == ref.dtype
        np.testing.assert_array_equal(got[0], ref)
    pids = [pid for _, pid in results]
    assert len(set(pids)) == 2 and os.getpid() not in pids
    assert sum(p != q for p, q in zip(pids, pids[1:])) == 1  # two contiguous shards


def test_generator_with_one_process_runs_here(models):
    net = Chain(models)
    samples = _samples(3, seed=2)
    results = net(iter(samples), num_process=1)
    assert [pid for _, pid in results] == [os.getpid()] * 3
    for (got, _), s in zip(results, samples):
        np.testing.assert_array_equal(got, net.forward(*s)[0])


def test_arrays_with_two_processes_are_a_value_error(models, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    net = Chain(models)
    with pytest.raises(ValueError, match="^Multi process mode need data generator for input$"):
        net(_samples(1)[0][0], num_process=2)
    with pytest.raises(ValueError, match="^Multi process mode need data generator for input$"):
        net(_samples(3), num_process=2)  # a list is not a generator


@pytest.mark.parametrize("bad", [0, -2, 1.5, False])
def test_num_process_must_be_a_positive_integer(models, bad):
    with pytest.raises(ValueError, match="num_process must be an integer >= 1"):
        Chain(models)(iter(_samples(1)), num_process=bad)


def test_arrays_with_num_process_capped_to_one_run_forward(models, monkeypatch):
    """As the vendor: num_process is capped at the CPU count first, so one CPU means no error."""
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    net = Chain(models)
    (x,) = _samples(1)[0]
    z, pid = net(x, num_process=4)
    np.testing.assert_array_equal(z, net.forward(x)[0])


def test_forward_error_in_a_worker_is_raised(models, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)

    class Bad(Chain):
        def forward(self, x, scale=1.0):
            raise KeyError("no such output")

    with pytest.raises(KeyError, match="no such output"):
        Bad(models)(iter(_samples(2)), num_process=2)


def test_fixed_simulator_through_sim_simulator(models, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)

    class Fixed(calibrator_custom.SIM_Simulator):
        def __init__(self):
            super().__init__()
            self.m = calibrator_custom.fixed_simulator(models["a_fixed"])

        def forward(self, pixels):
            return sn.run(self.m, pixels)[0]

    px = sn.pixels(4, seed=3)
    results = Fixed()(iter([[p] for p in px]), num_process=2)
    direct = calibrator_custom.fixed_simulator(models["a_fixed"])
    for got, p in zip(results, px):
        assert got.dtype == np.float32 and got.shape == (1, 8, 8, 4)
        np.testing.assert_array_equal(got, sn.run(direct, p)[0])
