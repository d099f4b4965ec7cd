"""Collect calibration statistics over many images, in one or several processes.

    >>> stats = collect_stats("model_float.sim", ["a.jpg", "b.jpg"], preprocess, num_process=2)
    >>> stats = collect_stats_arrays("model_float.sim", [[x0], [x1]])       # in-process, arrays ready

``collect_stats`` splits the image items into ``num_process`` contiguous shards. Each worker loads
the model once, preprocesses its own images, feeds them to an :class:`~calibrator_custom.interpreter.Interpreter` with ``float_simulator.set_input`` rules
(shape and dtype must match the model input exactly), and sends back its :class:`StatsSet`; the parent
merges them in shard order. Merging is exact, so the result is identical to the single-process one.
A failure in a worker (missing image, preprocess exception, wrong shape or dtype, model error) is
raised in the parent as :class:`InputError` naming the image and the cause; the other workers are
stopped. A worker that dies, or is silent past ``sim_workers.SILENCE_S``, is a :class:`CalibratorError`
naming the worker and the image it was on; workers exit when the parent dies. Workers use the 'fork' start
method where available (else 'spawn', which needs picklable, module-level preprocess functions) and limit
OpenBLAS to ``worker_blas_threads`` threads each. The shards, the worker setup and the result loop are
``sim_workers``'; the processes are started here, not by ``sim_workers.run_sharded``, because that one
forks only (without 'fork' it runs the shards in-process), has no time limit and always uses one
OpenBLAS thread.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import InputError, naming_the_file
from ..interpreter import Interpreter, checked_feed
from ..model import sgs_lower
from ..model.graph import load_model
from ..sim_workers import gather, item_counters, limit_blas_threads, shard_bounds, ticker, worker_setup
from .collector import Collector, weight_stats
from .histogram import DEFAULT_NUM_BINS
from .stats import CollectConfig, StatsSet, model_sha256

log = logging.getLogger(__name__)

Preprocess = Callable[[Any], np.ndarray]
#: ``progress(done, total)`` is called in the calling process after each image
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class _Shard:
    """Items [start, start + len(items)) of the full list, for one worker."""

    shard_id: int
    start: int
    items: tuple[tuple[Any, ...], ...]


class _ItemError(Exception):
    """Raised inside a shard; its message already names the image and the cause."""


def _describe(item: tuple[Any, ...]) -> str:
    parts = [repr(os.fspath(p)) if isinstance(p, (str, os.PathLike)) else type(p).__name__ for p in item]
    return ("image " + parts[0]) if len(parts) == 1 else ("images " + ", ".join(parts))


def _fail(item: tuple[Any, ...], k: int, what: str, e: BaseException) -> _ItemError:
    cause = f"{type(e).__name__}: {e}" if not isinstance(e, InputError) else str(e)
    missing = [os.fspath(p) for p in item if isinstance(p, (str, os.PathLike)) and not os.path.exists(p)]
    hint = f" (file {missing[0]!r} does not exist)" if missing else ""
    return _ItemError(f"collect_stats: {_describe(item)} (item #{k}): {what}: {cause}{hint}")


class _FloatRun:
    """The float model of ``model_path`` on an :class:`Interpreter`, fed with ``float_simulator.set_input``
    rules (the same checks and messages; model errors name the file, as the simulator's do)."""

    def __init__(self, model_path: str):
        self.model = model_path
        model = load_model(model_path)
        sgs_lower.check_simulatable(model, repr(model_path))
        self.model_obj = sgs_lower.runnable(model)
        with naming_the_file(model_path):
            self.interp = Interpreter(self.model_obj)
        self.observers: list[Callable[[int, str, np.ndarray], None]] = []

    @property
    def num_inputs(self) -> int:
        return len(self.interp.input_indices)

    def add_observer(self, observer: Callable[[int, str, np.ndarray], None]) -> None:
        self.observers.append(observer)


def _feed_and_run(sim: _FloatRun, arrays: Sequence[Any]) -> None:
    feeds = [checked_feed(j, a, sim.interp.graph) for j, a in enumerate(arrays)]
    if len(feeds) < sim.num_inputs:
        g = sim.interp.graph
        names = ", ".join(f"{k} ({g.tensors[g.inputs[k]].name!r})" for k in range(len(feeds), sim.num_inputs))
        raise InputError(f"invoke: set_input was not called for input(s) {names}")
    with naming_the_file(sim.model):
        sim.interp.run(feeds, sim.observers, ())


def _run_shard(model_path: str, shard: _Shard, funcs: tuple[Preprocess, ...], num_bins: int, sha: str,
               on_image: Callable[[], None]) -> StatsSet:
    """Statistics of one shard (activations only); raises _ItemError naming the failing image."""
    sim = _FloatRun(model_path)
    collector = Collector(num_bins)
    sim.add_observer(collector.observe)
    for k, item in enumerate(shard.items, start=shard.start):
        collector.begin_sample(_describe(item))
        arrays = []
        for j, (f, p) in enumerate(zip(funcs, item)):
            try:
                arrays.append(f(p))
            except Exception as e:  # noqa: BLE001 - any preprocess failure is reported with its image
                raise _fail(item, k, f"preprocess of input {j} failed", e) from None
        try:
            _feed_and_run(sim, arrays)
        except InputError as e:
            raise _fail(item, k, "cannot feed the model", e) from None
        except Exception as e:  # noqa: BLE001 - a model failure is reported with its image
            raise _fail(item, k, "model run failed", e) from None
        on_image()
    return collector.finalize(model_sha256=sha, model_name=os.path.basename(model_path))


def _worker_main(model_path: str, shard: _Shard, funcs: tuple[Preprocess, ...], num_bins: int, sha: str,
                 blas_threads: int | None, results: Any, parent_pid: int, counters: Any) -> None:
    """Process entry: run the shard, put ('alive'|'tick'|'done'|'error', shard_id, payload) on ``results``."""
    try:
        worker_setup(parent_pid, results, shard.shard_id)
        if blas_threads is not None:
            limit_blas_threads(blas_threads)
        stats = _run_shard(model_path, shard, funcs, num_bins, sha, ticker(results, counters, shard.shard_id))
        results.put(("done", shard.shard_id, stats))
    except _ItemError as e:
        results.put(("error", shard.shard_id, str(e)))
    except BaseException as e:  # noqa: BLE001 - the parent must learn why this worker stopped
        results.put(("error", shard.shard_id, f"failed: {type(e).__name__}: {e}"))


def _context() -> mp.context.BaseContext:
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def _shards(items: list[tuple[Any, ...]], n: int) -> list[_Shard]:
    return [_Shard(s, a, tuple(items[a:b])) for s, (a, b) in enumerate(shard_bounds(len(items), n))]


def _normalise_items(image_items: Iterable[Any], num_inputs: int) -> list[tuple[Any, ...]]:
    items = []
    for k, item in enumerate(image_items):
        tup = tuple(item) if isinstance(item, (list, tuple)) else (item,)
        if len(tup) != num_inputs:
            raise InputError(f"collect_stats: item #{k} {item!r} has {len(tup)} image(s) but there are "
                             f"{num_inputs} preprocess function(s) (one per model input)")
        items.append(tup)
    if not items:
        raise InputError("collect_stats: the list of images is empty; give at least one image")
    return items


def _normalise_funcs(preprocess_funcs: Preprocess | Sequence[Preprocess], num_inputs: int,
                     model_path: str) -> tuple[Preprocess, ...]:
    funcs = (preprocess_funcs,) if callable(preprocess_funcs) else tuple(preprocess_funcs)
    bad = [k for k, f in enumerate(funcs) if not callable(f)]
    if bad:
        raise InputError(f"collect_stats: preprocess function #{bad[0]} is a {type(funcs[bad[0]]).__name__}, "
                         f"not a callable preprocess(path) -> ndarray")
    if len(funcs) != num_inputs:
        raise InputError(f"collect_stats: model {model_path!r} has {num_inputs} input(s) but "
                         f"{len(funcs)} preprocess function(s) were given; give one per input")
    return funcs


def collect_stats(model_path: str | os.PathLike, image_items: Iterable[Any],
                  preprocess_funcs: Preprocess | Sequence[Preprocess], *, num_process: int = 1,
                  num_bins: int = DEFAULT_NUM_BINS, progress: Progress | None = None,
                  timeout_s: float | None = None, worker_blas_threads: int | None = 1) -> StatsSet:
    """Statistics of a float model over images, optionally in several processes.

    Args:
        model_path: float model (.sim / .tflite).
        image_items: one item per sample: a path (single-input models) or a sequence with one path
            per model input.
        preprocess_funcs: ``preprocess(path) -> ndarray`` (one, or one per model input); its result
            must have exactly the input's shape and dtype.
        num_process: worker processes (capped at the CPU count and the number of items); 1 runs here.
        num_bins: maximum histogram bins per tensor.
        progress: ``progress(done, total)`` called here after each image.
        timeout_s: with worker processes, give up (and stop them) after this many seconds; None
            waits as long as the workers are alive.
        worker_blas_threads: OpenBLAS threads per worker process (None leaves them alone).

    Returns:
        The merged :class:`StatsSet`, with weight statistics; identical for every ``num_process``.
    """
    model_path = os.fspath(model_path)
    model = sgs_lower.runnable(load_model(model_path))
    num_inputs = len(model.main.inputs)
    funcs = _normalise_funcs(preprocess_funcs, num_inputs, model_path)
    items = _normalise_items(image_items, num_inputs)
    if isinstance(num_process, bool) or not isinstance(num_process, (int, np.integer)) or num_process < 1:
        raise InputError(f"collect_stats: num_process must be an integer >= 1, got {num_process!r}")
    num_bins = CollectConfig(num_bins).num_bins
    n = max(1, min(int(num_process), os.cpu_count() or 1, len(items)))
    sha = model_sha256(model_path)
    weights = weight_stats(model)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(items))

    shards = _shards(items, n)
    if n == 1:
        try:
            merged = _run_shard(model_path, shards[0], funcs, num_bins, sha, tick)
        except _ItemError as e:
            raise InputError(str(e)) from None
    else:
        results = _run_workers(model_path, shards, funcs, num_bins, sha, worker_blas_threads, tick, timeout_s)
        merged = results[0]
        for r in results[1:]:
            merged = merged.merge(r)
    log.info("collected statistics of %d tensors over %d samples in %d process(es)", len(merged.tensors),
             merged.num_samples, n)
    return merged.with_weights(weights)


def _run_workers(model_path: str, shards: list[_Shard], funcs: tuple[Preprocess, ...], num_bins: int, sha: str,
                 blas_threads: int | None, tick: Callable[[], None], timeout_s: float | None) -> list[StatsSet]:
    ctx = _context()
    results_q = ctx.Queue()
    me = os.getpid()
    counters = item_counters(ctx, len(shards))
    procs = [ctx.Process(target=_worker_main,
                         args=(model_path, s, funcs, num_bins, sha, blas_threads, results_q, me, counters),
                         name=f"collect_stats-{s.shard_id}", daemon=True) for s in shards]
    items = [it for s in shards for it in s.items]
    bounds = [(s.start, s.start + len(s.items)) for s in shards]

    def start_error(e: Exception) -> InputError:
        hint = ("; with the 'spawn' start method preprocess functions must be picklable (module-level)"
                if ctx.get_start_method() == "spawn" else "")
        return InputError(f"collect_stats: cannot start a worker process ({type(e).__name__}: {e}){hint}")

    def on_error(message: str, shard_id: int, where: str) -> None:
        # an item's failure already names its image; anything else gets the worker and its image
        raise InputError(message if message.startswith("collect_stats: ") else f"{where}: {message}")

    def describe(k: int) -> str:
        return f"{_describe(items[k])} (item #{k})"

    return gather(procs, results_q, bounds, tick, "collect_stats", on_error, timeout_s, start_error, describe,
                  counters)


def collect_stats_arrays(model_path: str | os.PathLike, samples: Iterable[Any], *,
                         num_bins: int = DEFAULT_NUM_BINS, progress: Progress | None = None) -> StatsSet:
    """Statistics over ready-made inputs, in this process: each sample is a list of per-input arrays
    (or one array for a single-input model), fed with ``set_input`` rules. Memory stays constant for
    a lazy iterable (e.g. a generator)."""
    model_path = os.fspath(model_path)
    sim = _FloatRun(model_path)
    num_inputs = sim.num_inputs
    collector = Collector(num_bins)
    sim.add_observer(collector.observe)
    total = len(samples) if hasattr(samples, "__len__") else 0
    count = 0
    for k, sample in enumerate(samples):
        arrays = [sample] if isinstance(sample, np.ndarray) else list(sample)
        if len(arrays) != num_inputs:
            raise InputError(f"collect_stats_arrays: sample #{k} has {len(arrays)} array(s); model {model_path!r} "
                             f"has {num_inputs} input(s)")
        try:
            _feed_and_run(sim, arrays)
        except InputError as e:
            raise InputError(f"collect_stats_arrays: sample #{k}: {e}") from None
        count += 1
        if progress is not None:
            progress(count, total)
    if count == 0:
        raise InputError("collect_stats_arrays: no samples were given")
    stats = collector.finalize(model_sha256=model_sha256(model_path), model_name=os.path.basename(model_path))
    return stats.with_weights(weight_stats(sim.model_obj))
