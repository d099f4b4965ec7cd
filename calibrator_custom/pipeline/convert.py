"""The pipeline: float model + statistics -> plan -> fixed model -> measure -> re-plan, at quant levels
L1..L5, with imported quant_param.

    >>> model = convert(float_path, "input_config.ini", stats, quant_level="L5",
    ...                 calibration_feeds=feeds, output_path="net_fixed.sim")

L1-L3 are one plan (``quant.planner.build_plan``). L4 adds 16-bit recommendations from an analytic
estimate of each convolution's 8-bit noise (``pipeline.sensitivity``). L5 measures instead, in float
on the float model's cached activations with its 8-bit convs simulated (``pipeline.l5``,
``pipeline.float_sim``). What each level does is its ``quant.levels.Level``.

The plans reuse the planner's searches (``PlanInputs.memo``). Every phase reports its progress to a
:class:`~calibrator_custom.progress_display.Reporter`.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Sequence

import numpy as np

from ..calib.stats import StatsSet
from ..config import InputConfig, load_input_config
from ..errors import ConfigError, InputError, ModelError, UnsupportedOpError
from ..fixed.writer import build_fixed_model
from ..model import sgs_lower
from ..model.graph import Model, load_model
from ..plan import PlanInputs, QuantPlan
from ..progress_display import Reporter, as_reporter
from ..quant.levels import get_level
from ..quant.qparam import QuantParamOverrides, import_quant_param
from ..vendor_fixed.writer import write_vendor_fixed
from .l5 import L5_SAMPLES, L5Options, refine_l5  # noqa: F401 - L5_SAMPLES re-exported
from .options import PlanOverrides
from .sensitivity import analytic_gain, conv_macs, pick_upgrades

log = logging.getLogger(__name__)


def convert(float_model: str | os.PathLike | Model, input_config: str | os.PathLike | InputConfig,
            stats: StatsSet, *, quant_level: str = "L5", quant_param: list | None = None,
            sensitivity_threshold: float = 0.002,
            calibration_feeds: Sequence[Sequence[np.ndarray]] | None = None,
            output_path: str | os.PathLike | None = None,
            progress: Reporter | Callable[[str], None] | None = None,
            vendor_template: str | os.PathLike | None = None, num_process: int = 1,
            fixed_dialect: str = "auto", vendor_float: Model | None = None) -> Model:
    """The fixed model of ``float_model`` (written atomically to ``output_path`` when given).

    What ``output_path`` receives (``fixed_dialect``):

    - ``"auto"`` (default): for a vendor float.sim (``float_model`` itself, or ``vendor_float``, the file
      as read when ``float_model`` is its runnable copy), the **vendor's fixed dialect**, synthesized
      from the float.sim (``vendor_fixed.synth_writer``): the vendor's compiler takes it and
      ``fixed_simulator`` computes it as the vendor's simulator does. When the synthesizer has no rule
      for one of the graph's ops (or the input format), calibrator_custom's own dialect, with a WARNING
      saying why (loaded by our ``fixed_simulator``, not by the vendor's compiler); for a plain TFLite
      model (the vendor's dialect needs the vendor converter's float.sim) our own dialect, said at INFO.
    - ``"vendor"``: the vendor's dialect or the synthesizer's error naming the op, nothing written.
    - ``"calibrator_custom"``: our own dialect (per-channel UINT8 activations, 16-bit convs as planned).

    The vendor dialect takes the level's activation ranges; its types are the float.sim's plan (UINT8
    / INT16 activations, INT8 conv weights), so a level's 16-bit conv choices are not carried (logged).
    ``vendor_template``: a vendor fixed.sim of the same float.sim (made once with the SDK): the vendor's
    dialect is then written over that template (``vendor_fixed.writer``) instead of synthesized. The
    returned model is always our own dialect's (what our planner chose).

    ``progress``: where each phase (planning, each L4/L5 measurement loop, writing) reports its count,
    elapsed time and ETA, and where the messages go: a :class:`~calibrator_custom.progress_display.Reporter`
    (``Reporter.auto()`` draws a bar on a terminal or a display in Jupyter), or a ``message(text)``
    callable for the messages alone; by default INFO log lines (in a Jupyter kernel: live displays of
    the phases), and INFO log lines for the phases with a callable.

    ``num_process``: forked worker processes for L5's measurements (capped at ``os.cpu_count()``); the
    fixed model is the same for every count.
    """
    raw_model = float_model if isinstance(float_model, Model) else load_model(float_model)
    if fixed_dialect not in FIXED_DIALECTS:
        raise ConfigError(f"fixed_dialect {fixed_dialect!r}: use one of {', '.join(FIXED_DIALECTS)}")
    if vendor_float is None and raw_model.dialect == "sgs_float":
        vendor_float = raw_model
    model = sgs_lower.runnable(raw_model)
    config = input_config if isinstance(input_config, InputConfig) else load_input_config(input_config, model)
    level = get_level(quant_level)
    rep = as_reporter(progress)
    pi = PlanInputs.create(model, stats, config)
    ov = import_quant_param(pi, quant_param) if quant_param else QuantParamOverrides()
    overrides = PlanOverrides.from_quant_param(ov)
    with rep.phase(f"{level.name} plan (tensors)", len(pi.runtime_tensors())) as phase:
        plan = overrides.plan(pi, level, tick=phase.update)
    if level.upgrades_16 == "measured" and calibration_feeds:
        options = L5Options(sensitivity_threshold, num_process=_workers(num_process))
        plan = refine_l5(pi, plan, calibration_feeds, overrides, options, rep)
    elif level.upgrades_16 != "none":
        if level.upgrades_16 == "measured":
            log.warning("%s needs calibration inputs to measure; falling back to the L4 estimates", level.name)
        with rep.phase(f"{level.name} conv sensitivity estimates", len(pi.convs)) as phase:
            gains = analytic_gain(pi, plan, phase.update)
        rec = pick_upgrades(gains, conv_macs(pi), sensitivity_threshold)
        rep.message(f"{level.name}: {len(rec)} convolution(s) upgraded to 16 bit")
        plan = overrides.plan(pi, level, rec)
    with rep.phase("writing the fixed model", 1 if output_path is None else 2) as phase:
        fixed = build_fixed_model(pi, plan)
        phase.update()
        if output_path is not None and vendor_template is not None:
            _write_vendor_dialect(vendor_float or raw_model, vendor_template, stats, config, output_path, pi, plan)
        elif output_path is not None and not _write_synthesized(vendor_float, fixed_dialect, stats, config,
                                                                 output_path, pi, plan):
            fixed.save(output_path)
        phase.update()
    return fixed


#: what ``convert(fixed_dialect=...)`` takes
FIXED_DIALECTS = ("auto", "vendor", "calibrator_custom")


def _write_synthesized(vendor_float: Model | None, fixed_dialect: str, stats: StatsSet, config: InputConfig,
                       output_path, pi: PlanInputs, plan: QuantPlan) -> bool:
    """Write the vendor's dialect synthesized from the float.sim when ``fixed_dialect`` asks for it and it
    can be; True when written. ``"vendor"`` raises what stops it; ``"auto"`` logs it and returns False."""
    if fixed_dialect == "calibrator_custom":
        return False
    if vendor_float is None:
        if fixed_dialect == "vendor":
            raise ConfigError("fixed_dialect 'vendor' needs a vendor float.sim (made by the vendor's converter); "
                              "this model is plain TFLite")
        log.info("the float model is plain TFLite, so the fixed model is calibrator_custom's own dialect "
                    "(run by fixed_simulator, not loadable by the vendor's compiler); convert it with the vendor's "
                    "converter to a *_float.sim to get the vendor's dialect")
        return False
    from ..vendor_fixed.synth_writer import write_synthesized
    try:
        write_synthesized(vendor_float, stats, config, output_path, ranges=_plan_ranges(pi, plan),
                          weight_scales=_channel_weight_scales(pi, plan))
    except (UnsupportedOpError, ModelError) as e:
        if fixed_dialect == "vendor":
            raise
        log.warning("the vendor's fixed dialect cannot be written for this model (%s), so %s is calibrator_custom's "
                    "own dialect (run by fixed_simulator, not loadable by the vendor's compiler)", e, output_path)
        return False
    sixteen = sorted(j for j, bits in plan.conv_bits.items() if bits == 16)
    if sixteen:
        log.warning("%s: the vendor's dialect is written with 8-bit conv weights; the level's %d 16-bit conv(s) "
                    "(ops %s) are not carried", output_path, len(sixteen), ", ".join(map(str, sixteen[:8])))
    return True


def _plan_ranges(pi: PlanInputs, plan: QuantPlan) -> dict[str, tuple[float, float]]:
    """The plan's per-tensor activation ranges by name (a per-channel range's union)."""
    return {pi.model.main.tensors[i].name: (min(q.min), max(q.max)) for i, q in plan.tensors.items() if q.min and q.max}


def _workers(num_process: int) -> int:
    if isinstance(num_process, bool) or not isinstance(num_process, (int, np.integer)) or num_process < 1:
        raise InputError(f"num_process must be an integer >= 1, got {num_process!r}")
    return min(int(num_process), os.cpu_count() or 1)


def _write_vendor_dialect(float_model: Model, template, stats: StatsSet, config: InputConfig, output_path,
                          pi: PlanInputs, plan: QuantPlan) -> None:
    """The vendor's fixed dialect for a vendor float.sim, from the plan's activation ranges and, where the
    level's conv weights are per channel (L2 and up), its 8-bit convs' per-channel weight scales.

    The level's activation ranges are used (per tensor: the union of a per-channel range); its types
    are not (the template fixes the vendor's types: UINT8 / INT16 activations, 8-bit convs)."""
    if not float_model.is_vendor or float_model.dialect != "sgs_float":
        raise ConfigError(f"vendor_template needs a vendor float.sim (dialect sgs_float), not {float_model.dialect!r}")
    write_vendor_fixed(float_model, template, stats, config, output_path, ranges=_plan_ranges(pi, plan),
                       weight_scales=_channel_weight_scales(pi, plan))


def _channel_weight_scales(pi: PlanInputs, plan: QuantPlan) -> dict[str, tuple[float, ...]] | None:
    """Per weight name, the plan's per-channel scales of its 8-bit convs (L2 and up), else None."""
    if get_level(plan.level).weight_scales == "per_tensor":
        return None
    scales = {}
    for c in pi.convs:
        const = plan.constants.get(c.weights)
        if const is not None and plan.conv_bits.get(c.op_index, 8) == 8 and len(const.quant.scale) > 1:
            scales[pi.model.main.tensors[c.weights].name] = const.quant.scale
    return scales
