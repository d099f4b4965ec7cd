"""Contiguous shards of a list of samples, run in forked worker processes (SIM_Calibrator, SIM_Simulator).

    >>> results = run_sharded(lambda start, stop, tick: [work(k) or tick() for k in range(start, stop)],
    ...                       num_items=30, num_process=4, tick=bar.update)

``run_shard(start, stop, tick)`` handles items ``[start, stop)`` and calls ``tick()`` after each one;
its results come back in shard order, so a caller that merges them in that order gets the same
answer for every ``num_process``. Workers are forked (they inherit the caller's objects, models and
samples: nothing is pickled on the way in; results and errors are pickled on the way back) and limit
OpenBLAS to one thread each. An exception in a worker is raised again in the caller (the same type
and message, with the worker's traceback as a note); a worker that dies without a result (killed,
out of memory) is a :class:`CalibratorError` naming the item it was working on. Without the 'fork'
start method the shards run here, one after the other (same results).

Workers never outlive the caller: each one asks Linux to kill it when its parent dies
(``prctl(PR_SET_PDEATHSIG)``) and, on every system, a watchdog thread exits it when the parent pid
changes. The same thread sends a heartbeat every ``HEARTBEAT_S``; a worker that sends nothing for
``SILENCE_S`` (stopped with SIGSTOP, frozen) is killed and reported, naming the worker and its item.

``gather`` is the result loop every worker pool here shares (also ``calib.parallel.collect_stats``,
which starts its own processes, possibly with 'spawn'); ``worker_setup`` is what a worker runs first;
``limit_blas_threads`` caps OpenBLAS in a worker.
"""
from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import pickle
import queue
import signal
import sys
import threading
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
#: seconds between a worker's heartbeats (and its checks that the parent is alive)
HEARTBEAT_S = 1.0
#: a worker silent (not even a heartbeat) for this many seconds is stopped and reported
SILENCE_S = 120.0
_PR_SET_PDEATHSIG = 1


def shard_bounds(num_items: int, num_shards: int) -> list[tuple[int, int]]:
    """``num_shards`` contiguous ``(start, stop)`` ranges covering ``range(num_items)``, sizes differing by <= 1."""
    bounds = np.linspace(0, num_items, num_shards + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def can_fork() -> bool:
    return "fork" in mp.get_all_start_methods()


def run_sharded(run_shard: ShardFn, num_items: int, num_process: int, tick: Callable[[], None] | None = None,
                what: str = "worker", describe: Callable[[int], str] | None = None) -> list[T]:
    """``[run_shard(start, stop, tick) for each shard]`` with ``min(num_process, num_items)`` shards.

    One shard runs in this process; several run in forked processes. ``what`` names the caller in
    error messages, ``describe(k)`` item ``k`` (default ``'sample #k'``).
    """
    n = max(1, min(int(num_process), num_items))
    bounds = shard_bounds(num_items, n)
    on_tick = tick or (lambda: None)
    if n == 1 or not can_fork():
        if n > 1:
            log.warning("%s: the 'fork' start method is not available; running %d shards in this process", what, n)
        return [run_shard(a, b, on_tick) for a, b in bounds]
    return _run_forked(run_shard, bounds, on_tick, what, describe or (lambda k: f"sample #{k}"))


def _set_pdeathsig() -> bool:
    """Linux: have the kernel SIGKILL this process when its parent dies; False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False  # the watchdog thread still works


def worker_setup(parent_pid: int, results: Any, shard_id: int) -> None:
    """First thing in a worker: die with the parent (PR_SET_PDEATHSIG where available, and a watchdog
    thread everywhere) and send ``('alive', shard_id, None)`` heartbeats on ``results``."""
    _set_pdeathsig()
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)

    def watchdog() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            try:
                results.put(("alive", shard_id, None))
            except (OSError, ValueError):  # the queue is closed: the worker is finishing
                return
            time.sleep(HEARTBEAT_S)

    threading.Thread(target=watchdog, name="parent-watchdog", daemon=True).start()


def item_counters(ctx: Any, num_workers: int) -> Any:
    """Shared memory: ``counters[k]`` = items worker ``k`` has finished. A worker updates it at once (a
    queue message may still sit in the worker's buffer when it is killed or stopped), so the parent
    knows which item a dead or stopped worker was on."""
    return ctx.RawArray("q", num_workers)


def ticker(results: Any, counters: Any, shard_id: int) -> Callable[[], None]:
    """In a worker: the ``tick()`` to call after each item (counts it, then tells the parent)."""
    def tick() -> None:
        counters[shard_id] += 1
        results.put(("tick", shard_id, None))
    return tick


def _child(run_shard: ShardFn, shard_id: int, start: int, stop: int, results: Any, parent_pid: int,
           counters: Any) -> None:
    """Worker entry: ('alive' | 'tick' | 'done' | 'error', shard_id, payload) messages on ``results``."""
    try:
        worker_setup(parent_pid, results, shard_id)
        limit_blas_threads(1)
        out = run_shard(start, stop, ticker(results, counters, shard_id))
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


def _reraise(payload: tuple[bytes | None, str, str], where: str) -> None:
    blob, message, text = payload
    if blob is not None:
        exc = pickle.loads(blob)  # noqa: S301 - our own worker's bytes
        if hasattr(exc, "add_note"):
            exc.add_note(f"({where}; its traceback:)\n{text.rstrip()}")
        else:
            log.error("%s:\n%s", where, text.rstrip())
        raise exc
    raise CalibratorError(f"{where}: {message}")


def _run_forked(run_shard: ShardFn, bounds: list[tuple[int, int]], tick: Callable[[], None], what: str,
                describe: Callable[[int], str]) -> list:
    ctx = mp.get_context("fork")
    results_q = ctx.Queue()
    me = os.getpid()
    counters = item_counters(ctx, len(bounds))
    procs = [ctx.Process(target=_child, args=(run_shard, k, a, b, results_q, me, counters), name=f"{what}-{k}",
                         daemon=True) for k, (a, b) in enumerate(bounds)]
    return gather(procs, results_q, bounds, tick, what, on_error=lambda payload, k, where: _reraise(payload, where),
                  describe=describe, counters=counters)


class _Watch:
    """What the parent knows of each worker: items finished, the time of its last message."""

    def __init__(self, procs: list[Any], bounds: list[tuple[int, int]], what: str, describe: Callable[[int], str],
                 counters: Any | None):
        self.procs, self.bounds, self.what, self.describe, self.counters = procs, bounds, what, describe, counters
        now = time.monotonic()
        self.done_items = [0] * len(bounds)
        self.last_seen = [now] * len(bounds)
        self.dead_polls = [0] * len(bounds)

    def doing(self, k: int) -> str:
        """'worker 1 (pid 123, working on image 'a.jpg')' or '... after its last item'."""
        start, stop = self.bounds[k]
        done = self.done_items[k] if self.counters is None else max(self.done_items[k], int(self.counters[k]))
        item = start + done
        pid = self.procs[k].pid
        task = f"working on {self.describe(item)}" if item < stop else "after its last item"
        return f"{self.what}: worker {k} (pid {pid}, {task})"

    def check(self, out: dict, silence_s: float) -> None:
        """Raise for a worker that exited without a result (after one more empty poll for messages in
        flight) or that has been silent for ``silence_s``."""
        now = time.monotonic()
        for k, p in enumerate(self.procs):
            if k in out:
                continue
            if p.exitcode is not None:
                self.dead_polls[k] += 1
                if self.dead_polls[k] > 1:
                    raise CalibratorError(f"{self.doing(k)} exited {_exit_text(p.exitcode)} without a result "
                                          "(killed, or out of memory?)")
            elif now - self.last_seen[k] > silence_s:
                raise CalibratorError(f"{self.doing(k)} sent nothing for {silence_s:g} s (stopped or frozen?); "
                                      "the workers were stopped")


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"on signal {signal.Signals(-code).name}"
        except ValueError:
            return f"on signal {-code}"
    return f"with code {code}"


def gather(procs: list[Any], results_q: Any, bounds: list[tuple[int, int]], tick: Callable[[], None], what: str,
           on_error: Callable[[Any, int, str], None], timeout_s: float | None = None,
           start_error: Callable[[Exception], Exception] | None = None,
           describe: Callable[[int], str] | None = None, counters: Any | None = None) -> list:
    """Start ``procs`` (worker k handles items ``bounds[k]``) and collect their results in shard order.

    Workers put ``('alive' | 'tick' | 'done' | 'error', k, payload)`` on ``results_q``: a tick (one
    item finished) calls ``tick()``, an error calls ``on_error(payload, k, where)`` (which raises;
    ``where`` names the worker and the item it was on, ``describe(item)``, read from the workers'
    ``counters`` (see :func:`item_counters`) when given, else from the ticks). A worker that exits
    without a result, sends nothing for ``SILENCE_S``, or no result within ``timeout_s`` is a
    :class:`CalibratorError`. ``start_error`` turns an exception from ``Process.start`` into the one
    to raise. Every worker is stopped (killed if it does not stop) and the queue closed on the way out.
    """
    out: dict[int, Any] = {}
    watch = _Watch(procs, bounds, what, describe or (lambda k: f"item #{k}"), counters)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        for p in procs:
            try:
                p.start()
            except Exception as e:  # noqa: BLE001 - e.g. 'spawn' cannot pickle a lambda
                if start_error is None:
                    raise
                raise start_error(e) from None
        watch.last_seen = [time.monotonic()] * len(procs)
        while len(out) < len(bounds):
            if deadline is not None and time.monotonic() > deadline:
                raise CalibratorError(f"{what}: no result after {timeout_s} s; the workers were stopped")
            try:
                kind, shard_id, payload = results_q.get(timeout=_POLL_S)
            except queue.Empty:
                watch.check(out, SILENCE_S)
                continue
            watch.last_seen[shard_id] = time.monotonic()
            if kind == "tick":
                watch.done_items[shard_id] += 1
                tick()
            elif kind == "done":
                out[shard_id] = payload
            elif kind == "error":
                on_error(payload, shard_id, watch.doing(shard_id))
            if results_q.empty():
                watch.check(out, SILENCE_S)
        for p in procs:
            p.join(_JOIN_S)
    finally:
        _stop(procs)
        results_q.close()
        results_q.join_thread()
    return [out[k] for k in range(len(bounds))]


def _stop(procs: list[Any]) -> None:
    """Terminate every live worker (continuing a stopped one first), then kill those still alive."""
    for p in procs:
        if p.pid is not None and p.is_alive():
            try:
                os.kill(p.pid, signal.SIGCONT)
            except (OSError, AttributeError):
                pass
            p.terminate()
    for p in procs:
        if p.pid is not None:
            p.join(_JOIN_S)
            if p.is_alive():
                p.kill()
                p.join(_JOIN_S)


def limit_blas_threads(num_threads: int) -> bool:
    """Cap this process's matrix-product threads (our pool and OpenBLAS) at ``num_threads``; True if
    OpenBLAS was set. Products give the same bits for every thread count (see :mod:`calibrator_custom.blas`);
    the cap only keeps workers from oversubscribing the CPUs."""
    return blas.limit_threads(num_threads)
