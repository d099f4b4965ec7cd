"""``accuracy_analysis``: where a fixed model loses accuracy against its float model, and what to do."""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..config import InputConfig, load_input_config
from ..errors import ConfigError, InputError, ModelError
from ..fixed.writer import read_fixed_metadata
from ..model import sgs_lower
from ..model.graph import Model, load_model
from .gains import conv_gains
from .mapping import config_from_metadata
from .report import GAIN_METHODS, AnalysisReport
from .run import SideBySide, run_samples

log = logging.getLogger(__name__)

#: samples the 16-bit gains are measured on (the first ones)
DEFAULT_GAIN_SAMPLES = 4

Progress = Callable[[str, int, int], None]


def _load(model: str | os.PathLike | Model) -> tuple[Model, str]:
    if isinstance(model, Model):
        return sgs_lower.runnable(model), "<Model>"
    return sgs_lower.runnable(load_model(model)), os.fspath(model)


def _samples(inputs: Iterable[Any], preprocess_funcs, model: Model) -> Iterator[list[np.ndarray]]:
    g = model.main
    ins = [g.tensors[i] for i in g.inputs]
    funcs = None
    if preprocess_funcs is not None:
        funcs = [preprocess_funcs] if callable(preprocess_funcs) else list(preprocess_funcs)
        if len(funcs) != len(ins):
            raise InputError(f"accuracy_analysis: {len(funcs)} preprocess function(s) for a model with {len(ins)} "
                             "input(s); give one per input")
    for k, item in enumerate(inputs):
        if funcs is not None:
            paths = list(item) if isinstance(item, (list, tuple)) else [item]
            if len(paths) != len(funcs):
                raise InputError(f"accuracy_analysis: sample #{k} names {len(paths)} image(s) for {len(funcs)} "
                                 "input(s); give one path per input")
            arrays = [f(os.fspath(p), True) for f, p in zip(funcs, paths)]
        else:
            arrays = [item] if isinstance(item, np.ndarray) else list(item)
            if len(arrays) != len(ins):
                raise InputError(f"accuracy_analysis: sample #{k} has {len(arrays)} array(s) for a model with "
                                 f"{len(ins)} input(s); pass one array per input (or paths with preprocess_funcs)")
        out = []
        for a, t in zip(arrays, ins):
            a = np.asarray(a)
            if tuple(a.shape) != tuple(t.shape):
                raise InputError(f"accuracy_analysis: sample #{k}, input {t.name!r}: shape {list(a.shape)}, the "
                                 f"model takes {list(t.shape)}")
            out.append(a.astype(t.np_dtype, copy=False))
        yield out


def accuracy_analysis(float_model: str | os.PathLike | Model, fixed_model: str | os.PathLike | Model,
                      inputs: Iterable[Any], *, preprocess_funcs: Callable | Sequence[Callable] | None = None,
                      input_config: str | os.PathLike | InputConfig | None = None, gain_method: str = "measured",
                      gain_samples: int = DEFAULT_GAIN_SAMPLES, num_samples: int | None = None,
                      progress: Progress | None = None) -> AnalysisReport:
    """Compare ``fixed_model`` with ``float_model`` layer by layer on ``inputs``.

    Args:
        float_model: the float model (path or Model) the fixed model was converted from.
        fixed_model: the fixed model (path or Model), written by calibrator_custom.
        inputs: image paths (per-input lists for multi-input models) with ``preprocess_funcs``
            (one ``image_preprocess(path, norm)`` per input), or float-model input arrays (one
            array, or a list with one per input, per sample). The fixed model gets the equivalent
            raw inputs (``fixed.feeds.raw_from_normalized``).
        input_config: the input_config.ini the model was converted with; by default the fixed
            model's own metadata (mean/std, formats, outputs) stands in for it.
        gain_method: 16-bit gains per conv: ``'measured'`` (re-planned and run; see
            ``analysis.gains``), ``'estimated'`` (analytic, no runs) or ``'off'``.
        gain_samples: how many of the first samples the measured gains use.
        num_samples: analyse at most this many samples.
        progress: ``progress(stage, done, total)``, stage ``'analysis'`` then ``'16-bit gains'``.

    Returns:
        An :class:`AnalysisReport`.
    """
    if gain_method not in GAIN_METHODS:
        raise ConfigError(f"gain_method {gain_method!r}; choose one of {', '.join(GAIN_METHODS)}")
    if gain_method == "measured" and int(gain_samples) < 1:
        raise ConfigError(f"gain_samples {gain_samples!r}: measured gains need at least 1 sample")
    fmodel, fname = _load(float_model)
    qmodel, qname = _load(fixed_model)
    if qmodel.dialect == "sgs_fixed":  # the vendor's own fixed model: its integer semantics, by tensor name
        from .vendor import vendor_accuracy_analysis
        items = list(inputs) if num_samples is None else list(inputs)[:max(0, int(num_samples))]
        if not items:
            raise InputError("accuracy_analysis: no inputs were given; pass image paths or arrays")
        return vendor_accuracy_analysis(fmodel, fname, qmodel, qname, items, preprocess_funcs, progress)
    meta = read_fixed_metadata(qmodel)
    if meta is None:
        raise ModelError(f"accuracy_analysis: {qname!r} is not a fixed model written by calibrator_custom (no "
                         "calibrator_custom_fixed metadata); pass the *_fixed.sim the converter wrote")
    if read_fixed_metadata(fmodel) is not None:
        raise ModelError(f"accuracy_analysis: {fname!r} is a fixed model; pass the float model first")
    if input_config is None:
        config = config_from_metadata(meta, f"{qname} (metadata)")
    elif isinstance(input_config, InputConfig):
        config = input_config
    else:
        config = load_input_config(input_config, fmodel)
    _check_pair(fmodel, qmodel, fname, qname)
    sbs = SideBySide(fmodel, qmodel, {s.name: s for s in config.inputs})
    items = list(inputs) if num_samples is None else list(inputs)[:max(0, int(num_samples))]
    if not items:
        raise InputError("accuracy_analysis: no inputs were given; pass image paths or arrays")
    tick = None if progress is None else (lambda d, t: progress("analysis", d, t))
    keep = gain_samples if gain_method == "measured" else 0
    kept = run_samples(sbs, _samples(items, preprocess_funcs, fmodel), keep, tick, len(items))
    rows = sbs.rows()
    notes = [f"isolated run of {name!r} failed: {why}" for name, why in sbs.failures.items()]
    fused = [r.name for r in rows if r.status == "fused"]
    if fused:
        notes.append(f"{len(fused)} float tensor(s) have no counterpart in the fixed model (fused): "
                     + ", ".join(fused[:20]) + (" ..." if len(fused) > 20 else ""))
    suggestion, used_samples, method = None, 0, gain_method
    tick = None if progress is None else (lambda d, t: progress("16-bit gains", d, t))
    try:
        gr = conv_gains(fmodel, qmodel, config, sbs.stats(), kept, gain_method, tick)
    except ConfigError as e:
        method = "off"
        notes.append(f"conv bits, MACs and 16-bit gains not computed: the fixed model's quant_param does not fit "
                     f"the float model ({e})")
    else:
        notes.extend(gr.notes)
        by_name = {gr.outputs[k]: ci for k, ci in gr.convs.items() if k in gr.outputs}
        rows = [r if r.name not in by_name else _with_conv(r, by_name[r.name]) for r in rows]
        suggestion, used_samples = gr.suggestion, gr.samples
    return AnalysisReport(fname, qname, sbs.num_samples, tuple(rows), method, used_samples, suggestion,
                          tuple(notes))


def _with_conv(row, conv):
    return replace(row, conv=conv)


def _check_pair(fmodel: Model, qmodel: Model, fname: str, qname: str) -> None:
    g, fg = fmodel.main, qmodel.main
    if len(g.inputs) != len(fg.inputs) or len(g.outputs) != len(fg.outputs):
        raise ModelError(f"accuracy_analysis: {fname!r} has {len(g.inputs)} input(s) and {len(g.outputs)} "
                         f"output(s) but {qname!r} has {len(fg.inputs)} and {len(fg.outputs)}; pass the float "
                         "model this fixed model was converted from")
    fixed_names = {t.name for t in fg.tensors}
    missing = [g.tensors[i].name for i in g.inputs if g.tensors[i].name not in fixed_names]
    if missing:
        raise ModelError(f"accuracy_analysis: the fixed model {qname!r} has no input named {missing[0]!r}; pass "
                         "the float model this fixed model was converted from")
