"""Write the vendor fixed.sim of a vendor float.sim from our statistics, with no vendor-made template.

    >>> data = write_synthesized("net_float.sim", stats, config, "net_fixed.sim", ranges=plan_ranges)

The file is :func:`.synth.synthesize`'s, each conv's IPU program from the fitted rule
(:func:`.synth.rule_program`), encoded as the vendor lays files out (``Model.to_bytes(reencode=True)``,
tensor tags recomputed) and written atomically. The vendor's compiler takes it and its simulators
compute what ``fixed_simulator`` computes on it for the graphs of ``tests/test_vendor_fixed_synth*.py``
(docs/model_format.md, "Synthesizing the fixed file"); an op or input format the synthesizer has no
rule for is refused up front (:class:`~calibrator_custom.errors.UnsupportedOpError` naming the op),
before anything is written.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from ..errors import ModelError
from ..model.graph import Model, load_model
from . import synth
from .writer import image_normalization


def synthesis_inputs(stats) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(per-tensor (min, max), per-channel (min, max) arrays) by tensor name from calibration statistics
    (a ``calib.stats.StatsSet`` or its ``tensors`` mapping): the vendor L1's ranges, and the conv
    outputs' channel ranges its accumulator bounds come from."""
    tensors = getattr(stats, "tensors", stats)
    ranges = {name: (float(s.min), float(s.max)) for name, s in tensors.items()}
    channels = {name: (np.asarray(s.channel_min), np.asarray(s.channel_max)) for name, s in tensors.items()}
    return ranges, channels


def synthesize_model(float_model: str | os.PathLike | Model, stats, input_config,
                     ranges: Mapping[str, tuple[float, float]] | None = None,
                     program_for: synth.ProgramFor = synth.rule_program,
                     weight_scales: Mapping[str, Sequence[float]] | None = None,
                     input_means: Mapping[str, Sequence[float]] | None = None) -> Model:
    """The vendor fixed.sim model (dialect ``sgs_fixed``) of a vendor float.sim for our statistics.

    ``ranges``: per-tensor (min, max) by name overriding the statistics' (a level's choice);
    ``input_config``: an ``InputConfig`` (one image input: its format, three means, one std);
    ``weight_scales``: per conv weight name, one scale per output channel (default: per-tensor codes);
    ``input_means``: per conv weight name, its input's channel means: the bias corrected for the mean shift of
    the codes (:func:`.synth.synthesize`)."""
    model = float_model if isinstance(float_model, Model) else load_model(float_model)
    if model.dialect != "sgs_float":
        raise ModelError(f"the vendor fixed.sim is synthesized from a vendor float.sim (dialect sgs_float); "
                         f"this model's dialect is {model.dialect!r}")
    mean, std = image_normalization(input_config)
    chosen, channels = synthesis_inputs(stats)
    chosen.update(ranges or {})
    fmt = input_config.inputs[0].training_input_format
    return synth.synthesize(model, chosen, channels, mean, std, program_for, input_format=fmt,
                            weight_scales=weight_scales, input_means=input_means)


def write_synthesized(float_model: str | os.PathLike | Model, stats, input_config,
                      output_path: str | os.PathLike | None = None,
                      ranges: Mapping[str, tuple[float, float]] | None = None,
                      program_for: synth.ProgramFor = synth.rule_program,
                      weight_scales: Mapping[str, Sequence[float]] | None = None,
                      input_means: Mapping[str, Sequence[float]] | None = None) -> bytes:
    """The bytes of :func:`synthesize_model`'s file, written atomically to ``output_path`` when given."""
    from ..fileio import atomic_write

    model = synthesize_model(float_model, stats, input_config, ranges, program_for, weight_scales, input_means)
    data = model.to_bytes(reencode=True)
    if output_path is not None:
        atomic_write(output_path, data)
    return data
