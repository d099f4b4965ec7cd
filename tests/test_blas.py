"""Matrix products and the float interpreter give the same bits for every BLAS thread count."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calibrator_custom import _blas_kernel, blas
from conftest import MODELS_DIR, require_shared

ROOT = Path(__file__).resolve().parent.parent
# shapes of the kernels' products (conv im2col rows x taps x channels, FC, gemv); plain np.matmul of
# the first two gives other bits with OPENBLAS_NUM_THREADS=2 than with 1 on a 2-core AMD EPYC
SHAPES = [(4096, 27, 16), (2048, 288, 64), (1, 4096, 1000), (64, 4096, 1), (3, 5, 7)]

_DIGEST = """
import hashlib, sys
import numpy as np
from calibrator_custom import _blas_kernel, blas
rng = np.random.default_rng(0)
for m, k, n in {shapes!r}:
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    print(hashlib.sha256({product}.tobytes()).hexdigest())
"""


def _run(code: str, threads: str | None) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env.pop(var, None)
    if threads is not None:
        env["OPENBLAS_NUM_THREADS"] = threads
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_matmul_is_np_matmul():
    rng = np.random.default_rng(1)
    for m, k, n in SHAPES:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        got = blas.matmul(a, b)
        assert got.shape == (m, n) and got.dtype == np.float32
        np.testing.assert_allclose(got, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-3)
        out = np.empty((m, n), np.float32)
        assert blas.matmul(a, b, out=out) is out and np.array_equal(out, got)
    v = np.ones(5, np.float32)
    assert blas.matmul(np.arange(10, dtype=np.float32).reshape(2, 5), v).tolist() == [10.0, 35.0]


def test_matmul_bits_do_not_depend_on_openblas_threads():
    code = _DIGEST.format(shapes=SHAPES, product="blas.matmul(a, b)")
    runs = {t: _run(code, t) for t in (None, "1", "2")}
    assert len(runs[None].split()) == len(SHAPES)
    assert runs[None] == runs["1"] == runs["2"]


def test_the_callers_thread_count_is_restored():
    code = ("import numpy as np\nfrom calibrator_custom import blas\napi = blas._openblas()\n"
            "if api is None: print('none')\nelse:\n    api[0](2); blas.matmul(np.ones((64, 64)), np.ones((64, 64)))\n"
            "    with blas.single_threaded():\n        inside = api[1]()\n    print(inside, api[1]())\n")
    out = _run(code, "2").split()
    if out == ["none"]:
        pytest.skip("numpy here does not use an OpenBLAS with a thread control")
    assert out == ["1", "2"]


@pytest.mark.slow
def test_float_interpreter_bits_do_not_depend_on_openblas_threads():
    require_shared()
    code = (f"import hashlib, numpy as np\nfrom calibrator_custom import float_simulator\n"
            f"for name in ('face_detection_short_range', 'palm_detection_lite'):\n"
            f"    sim = float_simulator({str(MODELS_DIR)!r} + '/' + name + '.tflite')\n"
            f"    d = sim.get_input_details()[0]\n"
            f"    sim.set_input(0, np.random.default_rng(0).uniform(-1, 1, d['shape']).astype(np.float32))\n"
            f"    sim.invoke()\n"
            f"    for o in sim.get_output_details():\n"
            f"        print(name, hashlib.sha256(sim.get_output(o['index']).tobytes()).hexdigest())\n")
    one, two = _run(code, "1"), _run(code, "2")
    assert len(one.split()) >= 4
    assert one == two


_KERNEL = ("import sys\n{first}\nimport calibrator_custom, logging, os\nfrom calibrator_custom import blas\n"
           "logging.basicConfig(level=logging.WARNING, format='%(message)s')\n"
           "print(os.environ.get('OPENBLAS_CORETYPE'), blas.kernel())\n")


def _kernel_run(first: str, coretype: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("OPENBLAS_CORETYPE", None)
    if coretype is not None:
        env["OPENBLAS_CORETYPE"] = coretype
    return subprocess.run([sys.executable, "-c", _KERNEL.format(first=first)], capture_output=True, text=True,
                          timeout=120, env=env)


def test_importing_the_package_first_pins_the_reference_kernel():
    if not _blas_kernel.can_pin():
        pytest.skip("this CPU cannot run the reference kernel (not Linux x86-64 with AVX2 and FMA)")
    if blas.kernel() is None:
        pytest.skip("numpy here does not use an OpenBLAS that reports its kernel")
    r = _kernel_run("")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [_blas_kernel.REFERENCE_KERNEL] * 2
    assert "kernel" not in r.stderr
    # this test process too: conftest imports the package before numpy
    assert blas.kernel() == _blas_kernel.REFERENCE_KERNEL


def test_another_kernel_is_named_with_the_fix():
    if blas.kernel() is None:
        pytest.skip("numpy here does not use an OpenBLAS that reports its kernel")
    r = _kernel_run("", coretype="Sandybridge")  # an older kernel every x86-64 CPU with AVX runs
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Sandybridge", "Sandybridge"]
    assert "OpenBLAS runs its Sandybridge kernel here, not the Haswell kernel" in r.stderr
    if _blas_kernel.can_pin():
        assert "OPENBLAS_CORETYPE=Haswell" in r.stderr


def test_the_users_own_choice_is_kept_and_numpy_first_cannot_be_pinned():
    if not _blas_kernel.can_pin() or blas.kernel() is None:
        pytest.skip("needs Linux x86-64 with AVX2/FMA and an OpenBLAS that reports its kernel")
    r = _kernel_run("import numpy")
    assert r.returncode == 0, r.stderr
    # numpy loaded OpenBLAS before the package could choose: the CPU's own kernel, named in a warning
    # unless the CPU's own is the reference
    env_value, name = r.stdout.split()
    assert env_value == "None"
    assert (name == _blas_kernel.REFERENCE_KERNEL) == ("kernel here" not in r.stderr)
