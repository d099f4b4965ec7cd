"""Matrix products whose bits do not depend on the BLAS thread count (OPENBLAS_NUM_THREADS, num_process).

    >>> out = matmul(a, b)                 # np.matmul(a, b); the same bits for every thread count
    >>> limit_threads(1)                   # this process: OpenBLAS at one thread outside our products too

OpenBLAS splits one product across its threads in a way that depends on the thread count, and the
float sums then round differently in the last bit (a model converted with ``num_process=1`` and
``2`` differed). Every product of the kernels therefore runs with OpenBLAS held at one thread, through
its ``*openblas_set_num_threads*`` entry point found with ctypes in the library numpy loaded (numpy >= 2
wheels bundle scipy-openblas with prefixed symbols); the previous count is restored afterwards, so
the caller's own numpy code keeps its threads. (A fixed row split run on our own thread pool was
measured slower than one thread on 2 cores: Python-thread dispatch costs more than the products gain.)

The kernel matters too: OpenBLAS picks it by CPU and kernels sum in other orders. Importing the
package pins the ``Haswell`` kernel where it can (``_blas_kernel``); :func:`kernel` names the one in
use, and a warning says so once when it is another.

Without a controllable OpenBLAS (another BLAS, or none found) a warning says that the BLAS's own
threading may change the last bits.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import logging
import os
import threading
from typing import Callable, Iterator

import numpy as np

from ._blas_kernel import REFERENCE_KERNEL, can_pin

log = logging.getLogger(__name__)

_CORENAME_NAMES = ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                   "openblas_get_corename64_", "openblas_get_corename")
_SET_NAMES = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
              "openblas_set_num_threads64_", "openblas_set_num_threads")

_lock = threading.Lock()
_state: dict[str, int | None] = {"depth": 0, "saved": None}
_api: dict[str, object] = {}


def _candidate_libraries() -> list[str]:
    """OpenBLAS shared libraries mapped into this process (Linux), else the ones shipped with numpy."""
    libs: set[str] = set()
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
    except OSError:
        pass
    if not libs:
        root = os.path.dirname(os.path.dirname(np.__file__))
        for pattern in ("numpy.libs/*openblas*", "numpy/.dylibs/*openblas*", "numpy/.libs/*openblas*",
                        "scipy_openblas*/lib/*openblas*"):
            libs.update(glob.glob(os.path.join(root, pattern)))
    return sorted(libs)


def _find_openblas() -> tuple[Callable[[int], None], Callable[[], int], str | None] | None:
    """(set_num_threads, get_num_threads, kernel name or None) of the loaded OpenBLAS, or None."""
    for lib in _candidate_libraries():
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for name in _SET_NAMES:
            set_fn = getattr(handle, name, None)
            get_fn = getattr(handle, name.replace("_set_", "_get_"), None)
            if set_fn is not None and get_fn is not None:
                set_fn.argtypes, set_fn.restype = [ctypes.c_int], None
                get_fn.argtypes, get_fn.restype = [], ctypes.c_int
                return (lambda n, f=set_fn: f(int(n))), (lambda f=get_fn: int(f())), _corename(handle)
    return None


def _corename(handle: ctypes.CDLL) -> str | None:
    for name in _CORENAME_NAMES:
        fn = getattr(handle, name, None)
        if fn is not None:
            fn.argtypes, fn.restype = [], ctypes.c_char_p
            raw = fn()
            return raw.decode(errors="replace").strip() if raw else None
    return None


def kernel() -> str | None:
    """The name of the kernel the loaded OpenBLAS runs (``Haswell``, ``SkylakeX``, ...), or None if unknown."""
    api = _openblas()
    return None if api is None else api[2]


def _openblas() -> tuple[Callable[[int], None], Callable[[], int], str | None] | None:
    if "openblas" not in _api:
        found = _find_openblas()
        if found is None:
            log.warning("no OpenBLAS with a thread control was found in this process; the BLAS's own threading "
                        "may change the last bits of matrix products (set OPENBLAS_NUM_THREADS=1 and "
                        "OMP_NUM_THREADS=1 for results that do not depend on the thread count)")
        elif found[2] is not None and found[2].lower() != REFERENCE_KERNEL.lower():
            fix = (f"import calibrator_custom before numpy, or start Python with OPENBLAS_CORETYPE={REFERENCE_KERNEL}"
                   if can_pin() else "this CPU cannot run that kernel (it needs x86-64 with AVX2 and FMA)")
            log.warning("OpenBLAS runs its %s kernel here, not the %s kernel that gives every x86-64 machine the "
                        "same bits: float sums, ranges and fixed models may differ in the last bits from other "
                        "machines' (%s)", found[2], REFERENCE_KERNEL, fix)
        _api["openblas"] = found
    return _api["openblas"]  # type: ignore[return-value]


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Hold OpenBLAS at one thread inside the block (nestable, thread-safe); restores the old count."""
    api = _openblas()
    with _lock:
        if _state["depth"] == 0 and api is not None:
            saved = api[1]()
            _state["saved"] = saved
            if saved != 1:
                api[0](1)
        _state["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["depth"] -= 1
            if _state["depth"] == 0 and api is not None and _state["saved"] not in (None, 1):
                api[0](_state["saved"])


def limit_threads(n: int) -> bool:
    """Use at most ``n`` BLAS threads in this process (OpenBLAS now, and the usual environment variables
    for libraries loaded later); True if an OpenBLAS thread control was found. Our products run at one
    thread regardless; this only keeps worker processes from oversubscribing the CPUs."""
    n = max(1, int(n))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    api = _openblas()
    if api is None:
        return False
    with _lock:
        if _state["depth"] == 0:
            api[0](n)
        else:
            _state["saved"] = n
    return True


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out=out)`` with OpenBLAS at one thread: its bits do not depend on any thread count."""
    with single_threaded():
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
