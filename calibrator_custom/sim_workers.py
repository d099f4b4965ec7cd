"""Contiguous shards of a list of samples, run in forked worker processes (SIM_Calibrator, SIM_Simulator).

    >>> results = run_sharded(lambda start, stop, tick: [work(k) or tick() for k in range(start, stop)],
    ...                       num_items=30, num_process=4, tick=bar.update)

``run_shard(start, stop, tick)`` handles items ``[start, stop)`` and calls ``tick()`` after each one;
its results come back in shard order, so a caller that merges them in that order gets the same
answer for every ``num_process``. Workers are forked (they inherit the caller's objects, models and
samples: nothing is pickled on the way in; results and errors are pickled on the way back) and limit
OpenBLAS to one thread each. An exception in a worker is raised again in the caller (the same type
and message, with the worker's traceback as a note); a worker that dies without a result (killed,
out of memory) is a :class:`CalibratorError`. Without the 'fork' start method the shards run here,
one after the other (same results).

``gather`` is the result loop every worker pool here shares (also ``calib.parallel.collect_stats``,
which starts its own processes, possibly with 'spawn'); ``limit_blas_threads`` caps OpenBLAS in a
worker.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import pickle
import queue
import time
import traceback
from typing import Any, Callable, TypeVar

import numpy as np

from . import blas
from .errors import CalibratorError

log = logging.getLogger(__name__)

T = TypeVar("T")
ShardFn = Callable[[int, int, Callable[[], None]], T]

_POLL_S = 0.2
_JOIN_S = 5.0


def shard_bounds(num_items: int, num_shards: int) -> list[tuple[int, int]]:
    """``num_shards`` contiguous ``(start, stop)`` ranges covering ``range(num_items)``, sizes differing by <= 1."""
    bounds = np.linspace(0, num_items, num_shards + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def can_fork() -> bool:
    return "fork" in mp.get_all_start_methods()


def run_sharded(run_shard: ShardFn, num_items: int, num_process: int, tick: Callable[[], None] | None = None,
                what: str = "worker") -> list[T]:
    """``[run_shard(start, stop, tick) for each shard]`` with ``min(num_process, num_items)`` shards.

    One shard runs in this process; several run in forked processes. ``what`` names the caller in
    error messages.
    """
    n = max(1, min(int(num_process), num_items))
    bounds = shard_bounds(num_items, n)
    on_tick = tick or (lambda: None)
    if n == 1 or not can_fork():
        if n > 1:
            log.warning("%s: the 'fork' start method is not available; running %d shards in this process", what, n)
        return [run_shard(a, b, on_tick) for a, b in bounds]
    return _run_forked(run_shard, bounds, on_tick, what)


def _child(run_shard: ShardFn, shard_id: int, start: int, stop: int, results: Any) -> None:
    """Worker entry: ('tick' | 'done' | 'error', shard_id, payload) messages on ``results``."""
    try:
        limit_blas_threads(1)
        out = run_shard(start, stop, lambda: results.put(("tick", shard_id, None)))
        results.put(("done", shard_id, out))
    except BaseException as e:  # noqa: BLE001 - the caller must learn why this worker stopped
        results.put(("error", shard_id, _error_payload(e)))


def _error_payload(e: BaseException) -> tuple[bytes | None, str, str]:
    """(pickled exception if it survives a round trip, 'Type: message', traceback text)."""
    text = traceback.format_exc()
    try:
        blob = pickle.dumps(e)
        pickle.loads(blob)  # noqa: S301 - our own bytes
    except Exception:  # noqa: BLE001 - not picklable: the caller gets the message instead
        blob = None
    return blob, f"{type(e).__name__}: {e}", text


def _reraise(payload: tuple[bytes | None, str, str], what: str, start: int, stop: int) -> None:
    blob, message, text = payload
    where = f"{what}: in the worker process for items #{start}..#{stop - 1}"
    if blob is not None:
        exc = pickle.loads(blob)  # noqa: S301 - our own worker's bytes
        if hasattr(exc, "add_note"):
            exc.add_note(f"({where}; its traceback:)\n{text.rstrip()}")
        else:
            log.error("%s:\n%s", where, text.rstrip())
        raise exc
    raise CalibratorError(f"{where}: {message}")


def _run_forked(run_shard: ShardFn, bounds: list[tuple[int, int]], tick: Callable[[], None], what: str) -> list:
    ctx = mp.get_context("fork")
    results_q = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(run_shard, k, a, b, results_q), name=f"{what}-{k}", daemon=True)
             for k, (a, b) in enumerate(bounds)]
    return gather(procs, results_q, bounds, tick, what,
                  on_error=lambda payload, k: _reraise(payload, what, *bounds[k]))


def gather(procs: list[Any], results_q: Any, bounds: list[tuple[int, int]], tick: Callable[[], None], what: str,
           on_error: Callable[[Any, int], None], timeout_s: float | None = None,
           start_error: Callable[[Exception], Exception] | None = None) -> list:
    """Start ``procs`` (worker k handles items ``bounds[k]``) and collect their results in shard order.

    Workers put ``('tick' | 'done' | 'error', k, payload)`` on ``results_q``: a tick calls ``tick()``,
    an error calls ``on_error(payload, k)`` (which raises). A worker that exits without a result, or no
    result within ``timeout_s``, is a :class:`CalibratorError`. ``start_error`` turns an exception from
    ``Process.start`` into the one to raise. Every worker is stopped and the queue closed on the way out.
    """
    out: dict[int, Any] = {}
    dead_polls = dict.fromkeys(range(len(bounds)), 0)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        for p in procs:
            try:
                p.start()
            except Exception as e:  # noqa: BLE001 - e.g. 'spawn' cannot pickle a lambda
                if start_error is None:
                    raise
                raise start_error(e) from None
        while len(out) < len(bounds):
            if deadline is not None and time.monotonic() > deadline:
                raise CalibratorError(f"{what}: no result after {timeout_s} s; the workers were stopped")
            try:
                kind, shard_id, payload = results_q.get(timeout=_POLL_S)
            except queue.Empty:
                _check_alive(procs, bounds, out, dead_polls, what)
                continue
            if kind == "tick":
                tick()
            elif kind == "done":
                out[shard_id] = payload
            else:
                on_error(payload, shard_id)
        for p in procs:
            p.join(_JOIN_S)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            if p.pid is not None:
                p.join(_JOIN_S)
        results_q.close()
        results_q.join_thread()
    return [out[k] for k in range(len(bounds))]


def _check_alive(procs: list, bounds: list[tuple[int, int]], out: dict, dead_polls: dict[int, int], what: str) -> None:
    """Raise when a worker exited without a result (after one more empty poll for messages in flight)."""
    for k, p in enumerate(procs):
        if k in out or p.exitcode is None:
            continue
        dead_polls[k] += 1
        if dead_polls[k] > 1:
            start, stop = bounds[k]
            raise CalibratorError(f"{what}: the worker process for items #{start}..#{stop - 1} exited with code "
                                  f"{p.exitcode} without a result (killed, or out of memory?)")


def limit_blas_threads(num_threads: int) -> bool:
    """Cap this process's matrix-product threads (our pool and OpenBLAS) at ``num_threads``; True if
    OpenBLAS was set. Products give the same bits for every thread count (see :mod:`calibrator_custom.blas`);
    the cap only keeps workers from oversubscribing the CPUs."""
    return blas.limit_threads(num_threads)
