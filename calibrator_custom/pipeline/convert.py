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
from .bias_check import checked_bias_correction
from .l5 import L5_SAMPLES, L5Options, refine_l5  # noqa: F401 - L5_SAMPLES re-exported
from .measure import _db, _e2e_nsr, _Measure, _PrepareMemo
from .options import PlanOverrides
from .sensitivity import analytic_gain, conv_macs, convs_by_data, pick_upgrades

log = logging.getLogger(__name__)


def convert(float_model: str | os.PathLike | Model, input_config: str | os.PathLike | InputConfig,
            stats: StatsSet, *, quant_level: str = "L5", quant_param: list | None = None,
            sensitivity_threshold: float = 0.002,
            calibration_feeds: Sequence[Sequence[np.ndarray]] | None = None,
            output_path: str | os.PathLike | None = None,
            progress: Reporter | Callable[[str], None] | None = None,
            vendor_template: str | os.PathLike | None = None, num_process: int = 1,
            fixed_dialect: str = "auto", vendor_float: Model | None = None,
            vendor_int16_convs: bool = True, statistics_of: Callable[[str], StatsSet] | None = None,
            equalize_channels: bool = True) -> Model:
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
    / INT16 activations, INT8 conv weights) with the level's and ``[CONV_CONFIG]``'s 16-bit convs that
    the dialect can carry written with INT16 input and weights, as the vendor's converter plans
    ``[CONV_CONFIG] tensor_arrays`` (:func:`vendor_int16_carriable`; the others stay 8-bit, logged). A
    level's own 16-bit choices (not forced by ``[CONV_CONFIG]``) are kept only if, run in the vendor's
    arithmetic on the calibration samples, they give a better worst-output SQNR than the same plan at 8
    bit (logged). ``vendor_int16_convs=False`` writes every conv at 8 bit (the vendor's compiler refuses
    some 16-bit files: docs/model_format.md).
    ``vendor_template``: a vendor fixed.sim of the same float.sim (made once with the SDK): the vendor's
    dialect is then written over that template (``vendor_fixed.writer``) instead of synthesized. The
    returned model is always our own dialect's (what our planner chose). When the vendor's dialect is
    written, L4's / L5's 16-bit choices are made among the convs it writes at 16 bit (none with
    ``vendor_int16_convs=False``).

    ``progress``: where each phase (planning, each L4/L5 measurement loop, writing) reports its count,
    elapsed time and ETA, and where the messages go: a :class:`~calibrator_custom.progress_display.Reporter`
    (``Reporter.auto()`` draws a bar on a terminal or a display in Jupyter), or a ``message(text)``
    callable for the messages alone; by default INFO log lines (in a Jupyter kernel: live displays of
    the phases), and INFO log lines for the phases with a callable.

    ``calibration_feeds``: normalised float inputs (the first calibration samples) that L5 measures on and
    that L2-L4 check their bias correction on (``pipeline.bias_check``: kept where a two-fold check in the
    written dialect's arithmetic shows it helps); without them L2-L4 make no bias correction.

    ``num_process``: forked worker processes for L5's measurements (capped at ``os.cpu_count()``); the
    fixed model is the same for every count.

    ``statistics_of``: ``statistics_of(float_model_path)``, the statistics of another float model over the same
    calibration samples (what the ``calibrator`` command and ``SIM_Calibrator.convert`` pass;
    ``calibrator.convert_fixed`` cannot run its inputs again). With it, and ``equalize_channels``, L2-L5
    written in the vendor's dialect (synthesized, no template, no ``quant_param``) first equalize the
    activation channels the 8-bit convs read (``pipeline.equalize``): the model is rescaled channel by
    channel through its conv weights, its outputs unchanged, and converted with its own statistics. The
    rescaled float model is written next to the fixed one (``<output stem>_equalized_float.sim``): its tensors
    are the fixed model's, layer by layer (those of the rescaled channels are the original's divided per
    channel).
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
    # the vendor's dialect will be written: 16-bit upgrades only where it carries them. (Planning its UINT8
    # activations per tensor as it stores them was measured worse: face_landmark's L5 26.50 dB against
    # 31.46 with the per-channel plan's union ranges, iris_landmark 29.92 against 30.03.)
    to_vendor = output_path is not None and (vendor_template is not None or _synthesizable(vendor_float, fixed_dialect))
    pi = PlanInputs.create(model, stats, config)
    _check_calibration_feeds(pi, calibration_feeds)
    equalized_file = None  # the rescaled float model, moved beside the fixed one once that is written
    if to_vendor and vendor_template is None and level.equalizes_channels and equalize_channels and not quant_param:
        equalized = _equalized(vendor_float, stats, pi, config, output_path, statistics_of, rep, vendor_int16_convs)
        if equalized is not None:
            vendor_float, stats, equalized_file = equalized
            raw_model = vendor_float
            model = sgs_lower.runnable(raw_model)
            pi = PlanInputs.create(model, stats, config)
    ov = import_quant_param(pi, quant_param) if quant_param else QuantParamOverrides()
    overrides = PlanOverrides.from_quant_param(ov)
    with rep.phase(f"{level.name} plan (tensors)", len(pi.runtime_tensors())) as phase:
        plan = overrides.plan(pi, level, tick=phase.update)
    # the convs a 16-bit upgrade is worth measuring for: those the written dialect carries at 16 bit
    carriable = vendor_int16_carriable(vendor_float, pi) if to_vendor and vendor_template is None and \
        vendor_int16_convs else None
    upgradable = None
    if to_vendor:
        upgradable = frozenset() if carriable is None else carriable
        if level.upgrades_16 != "none":
            log.info("%s: 16-bit upgrades only for the %d conv(s) the vendor's dialect carries at 16 bit%s", level.name,
                     len(upgradable), "" if vendor_int16_convs else " (none with vendor_int16_convs=False)")
    if level.upgrades_16 == "measured" and calibration_feeds:
        vendor = upgradable is not None  # the vendor's dialect: a tensor is stored once, at one scale
        options = L5Options(sensitivity_threshold, num_process=_workers(num_process), upgradable=upgradable,
                            shared_inputs=vendor, per_tensor_data=vendor)
        plan = refine_l5(pi, plan, calibration_feeds, overrides, options, rep)
    elif level.upgrades_16 != "none":
        if level.upgrades_16 == "measured":
            log.warning("%s needs calibration inputs to measure; falling back to the L4 estimates", level.name)
        with rep.phase(f"{level.name} conv sensitivity estimates", len(pi.convs)) as phase:
            gains = analytic_gain(pi, plan, phase.update)
        if upgradable is not None:
            gains = {k: v for k, v in gains.items() if k in upgradable}
        rec = pick_upgrades(gains, conv_macs(pi), sensitivity_threshold,
                            siblings=_conv_siblings(pi) if upgradable is not None else None)
        rep.message(f"{level.name}: {len(rec)} convolution(s) upgraded to 16 bit")
        plan = overrides.plan(pi, level, rec)
    synthesized: dict = {}  # the vendor files the bias correction's check wrote, by plan
    if level.bias_correction == "checked" and calibration_feeds and not quant_param:
        if to_vendor and vendor_template is not None:
            rep.message(f"{level.name}: bias correction not applied (the vendor template's writer carries none)")
        elif to_vendor and not _all_image_inputs(pi, plan):
            rep.message(f"{level.name}: bias correction not checked (the vendor's arithmetic is checked on image "
                        "inputs only); not applied")
        else:
            scorer = _vendor_scorer(vendor_float, stats, config, pi, plan, carriable, synthesized) if to_vendor \
                else _own_scorer(pi)
            plan = checked_bias_correction(pi, plan, overrides, calibration_feeds, scorer, rep,
                                           frozenset(k for k, b in plan.conv_bits.items() if b == 16))
    with rep.phase("writing the fixed model", 1 if output_path is None else 2) as phase:
        fixed = build_fixed_model(pi, plan)
        phase.update()
        if output_path is not None and vendor_template is not None:
            _write_vendor_dialect(vendor_float or raw_model, vendor_template, stats, config, output_path, pi, plan)
        elif output_path is not None and not _write_synthesized(vendor_float, fixed_dialect, stats, config,
                                                                 output_path, pi, plan, carriable,
                                                                 _check_feeds(calibration_feeds), synthesized):
            fixed.save(output_path)
        if equalized_file is not None:
            _keep_equalized(equalized_file, output_path)
        phase.update()
    return fixed


def equalized_float_path(output_path) -> str:
    """Where :func:`convert` writes the channel-equalized float model of a fixed model written to ``output_path``."""
    base = os.fspath(output_path)
    stem = base[:-4] if base.lower().endswith(".sim") else base
    return f"{stem}_equalized_float.sim"


def _keep_equalized(equalized_file, output_path) -> None:
    """Move the rescaled float model (``tempfile.TemporaryDirectory``, path) to :func:`equalized_float_path`."""
    from ..fileio import atomic_write
    folder, path = equalized_file
    with open(path, "rb") as f:
        atomic_write(equalized_float_path(output_path), f.read())
    folder.cleanup()


def _equalized(vendor_float: Model, stats: StatsSet, pi: PlanInputs, config: InputConfig, output_path,
               statistics_of: Callable[[str], StatsSet] | None, rep: Reporter,
               int16_convs: bool = True) -> tuple[Model, StatsSet, tuple] | None:
    """(the channel-equalized vendor float model, its statistics by ``statistics_of``, (the temporary folder, the
    path) it is written to until the fixed model is); None where nothing is rescaled or ``statistics_of`` is
    missing. The folder goes away with the conversion if that fails."""
    import tempfile
    from ..quant.qtypes import conv_bits
    from .equalize import equalize
    bits = conv_bits(pi.model, pi.convs, config.conv)
    written16 = vendor_int16_carriable(vendor_float, pi) if int16_convs else frozenset()
    names = pi.model.main.tensors  # the data of the convs written at 8 bit ([CONV_CONFIG]'s where not carried)
    measured = {names[c.data].name for c in pi.convs if bits.get(c.op_index, 8) == 8 or c.op_index not in written16}
    if not measured:
        return None
    if statistics_of is None:
        log.info("channel equalization skipped: it needs the statistics of the equalized model (convert(..., "
                 "statistics_of=)), which the calibrator command and SIM_Calibrator.convert pass")
        return None
    eq_model, eq = equalize(vendor_float, stats, sorted(measured))
    if not eq.scales:
        return None
    folder = tempfile.TemporaryDirectory(prefix="calibrator_custom_equalized_")
    path = os.path.join(folder.name, os.path.basename(equalized_float_path(output_path)))
    eq_model.save(path)
    rep.message(f"channel equalization: {eq.scaled_channels} channel(s) of {len(eq.scales)} tensor(s) rescaled "
                f"through {len(eq.convs)} conv(s) ({eq.groups} group(s)); the rescaled float model, whose tensors "
                f"the fixed model's are, goes to {equalized_float_path(output_path)}")
    with rep.phase("statistics of the equalized model", 1) as phase:
        eq_stats = statistics_of(path)
        phase.update()
    return load_model(path), eq_stats, (folder, path)


def _check_calibration_feeds(pi: PlanInputs, feeds) -> None:
    """``InputError`` naming the sample and the input when a calibration feed is not one array per graph input
    in that input's shape (a sample of another shape would run, on other data than the chip's)."""
    if not feeds:
        return
    g = pi.graph
    names = [g.tensors[i].name for i in g.inputs]
    shapes = [tuple(int(d) for d in g.tensors[i].shape) for i in g.inputs]
    for n, feed in enumerate(feeds):
        arrays = list(feed)
        if len(arrays) != len(shapes):
            raise InputError(f"calibration_feeds[{n}] holds {len(arrays)} array(s) but the model has {len(shapes)} "
                             f"input(s) ({', '.join(names)}): give one array per input, in that order")
        for k, (x, shape, name) in enumerate(zip(arrays, shapes, names)):
            got = tuple(np.shape(x))
            if got != shape:
                raise InputError(f"calibration_feeds[{n}][{k}] (input {name!r}) has shape {got}, the model takes "
                                 f"{shape}: preprocess each sample to the input's shape, batch axis included")


def _check_feeds(feeds) -> list | None:
    """The calibration samples the vendor-arithmetic check of a level's 16-bit convs runs on (L5's)."""
    return None if not feeds else [list(f) for f in list(feeds)[:L5_SAMPLES]]


#: what ``convert(fixed_dialect=...)`` takes
FIXED_DIALECTS = ("auto", "vendor", "calibrator_custom")


def _forced_16(pi: PlanInputs, config: InputConfig) -> bool:
    """Whether ``[CONV_CONFIG]`` (input_format, tensor_arrays) forces some conv to 16 bit."""
    from ..quant.qtypes import conv_bits
    return any(b == 16 for b in conv_bits(pi.model, pi.convs, config.conv).values())


def _all_image_inputs(pi: PlanInputs, plan: QuantPlan) -> bool:
    """Whether every graph input is an image (the check below feeds the fixed model raw pixels)."""
    from .l5 import _is_image_input
    return all(_is_image_input(plan, i) for i in pi.graph.inputs)


def _check_references(pi: PlanInputs, plan: QuantPlan, feeds) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    """Per check sample: (the fixed model's raw pixel inputs, the float model's outputs on the same pixels)."""
    from ..fixed.feeds import pixels_from_normalized
    from .l5 import on_pixel_grid
    g = pi.graph
    out = []
    for f in on_pixel_grid(pi, plan, feeds):
        ref = pi.interp.run(list(f))
        out.append(([pixels_from_normalized(x, plan.input_specs[i]) for x, i in zip(f, g.inputs)],
                    [ref[i] for i in g.outputs]))
    return out


def _vendor_file_sqnr(data: bytes, pi: PlanInputs, plan: QuantPlan, feeds=None, references=None) -> float:
    """The worst-output SQNR (dB, energies pooled over ``feeds``) of a synthesized vendor fixed file run by
    our simulator of the vendor's arithmetic, against the float model on the same pixels (``references``:
    :func:`_check_references` of the feeds, computed once for several files)."""
    return _program_sqnr(_vendor_program(data), pi,
                         _check_references(pi, plan, feeds) if references is None else references)


def _vendor_program(data: bytes):
    """A synthesized vendor fixed file prepared for our simulator of the vendor's arithmetic."""
    from ..vendor_fixed import engine
    return engine.prepare(Model.from_bytes(data), "the synthesized vendor fixed model")


def _per_plan(cache: dict, plan: QuantPlan, make: Callable[[], object], *key):
    """``make()`` once per plan (and ``key``) in ``cache``; the plan is held there so that its id stays its own."""
    k = (id(plan), *key)
    if k not in cache:
        cache[k] = (plan, make())
    return cache[k][1]


def _program_sqnr(program, pi: PlanInputs, refs) -> float:
    """The worst-output SQNR (dB, energies pooled over the samples) of a prepared vendor fixed program on
    :func:`_check_references`' samples."""
    n_out = len(pi.graph.outputs)
    signal = np.zeros(n_out)
    noise = np.zeros(n_out)
    for pixels, ref in refs:
        got = program.run(pixels)
        for k, (r, y) in enumerate(zip(ref, got)):
            r = np.asarray(r, np.float64).reshape(-1)
            y = np.asarray(y, np.float64).reshape(-1)[: r.size]
            signal[k] += float(r @ r)
            noise[k] += float((r - y) @ (r - y))
    return min(_db(n_ / sg_ if sg_ > 0 else (0.0 if n_ == 0 else float("inf"))) for sg_, n_ in zip(signal, noise))


def _synthesized_bytes(vendor_float: Model, stats: StatsSet, config: InputConfig, pi: PlanInputs, plan: QuantPlan,
                       inputs16=(), output_path=None, memo: dict | None = None) -> bytes:
    """The vendor's dialect of ``plan`` synthesized from the float.sim (``inputs16``: the conv inputs written at
    16 bit, :func:`_vendor_int16_conv_inputs`); also written (atomically) to ``output_path`` when given.
    ``memo``: the files already synthesized in this conversion, by plan (the bias correction's check writes
    the plan it may keep)."""
    from ..fileio import atomic_write
    from ..vendor_fixed.quantize_plan import with_int16_convs
    from ..vendor_fixed.synth_writer import write_synthesized
    def synthesize() -> bytes:
        ranges, weight_scales = _plan_ranges(pi, plan), _channel_weight_scales(pi, plan)
        return write_synthesized(with_int16_convs(vendor_float, inputs16) if inputs16 else vendor_float, stats,
                                 config, None, ranges=ranges, weight_scales=weight_scales,
                                 input_means=_channel_input_means(pi, plan, weight_scales))
    data = synthesize() if memo is None else _per_plan(memo, plan, synthesize, tuple(inputs16))
    if output_path is not None:
        atomic_write(output_path, data)
    return data


def _vendor_scorer(vendor_float: Model, stats: StatsSet, config: InputConfig, pi: PlanInputs, plan: QuantPlan,
                   carriable: frozenset[int] | None, memo: dict):
    """``make_scorer`` of ``bias_check`` for the synthesized vendor dialect: a plan's worst-output SQNR in the
    vendor's arithmetic (its file as written, 16-bit convs where ``carriable``; files kept in ``memo``)."""
    inputs16 = _vendor_int16_conv_inputs(carriable, pi, plan)[0] if carriable is not None else []
    programs: dict = {}

    def program(p: QuantPlan):
        return _per_plan(programs, p, lambda: _vendor_program(
            _synthesized_bytes(vendor_float, stats, config, pi, p, inputs16, memo=memo)))

    def make_scorer(feeds):
        refs = _check_references(pi, plan, feeds)
        return lambda p: _program_sqnr(program(p), pi, refs)
    return make_scorer


def _own_scorer(pi: PlanInputs):
    """``make_scorer`` of ``bias_check`` for our own dialect: a plan's worst-output SQNR in our fixed simulator
    (each plan's fixed model built once; the ops the plans share prepared once)."""
    prepared, models = _PrepareMemo(), {}

    def make_scorer(feeds):
        feeds = [list(f) for f in feeds]
        meas = _Measure.collect(pi, feeds)
        return lambda p: _db(_e2e_nsr(pi, _per_plan(models, p, lambda: build_fixed_model(pi, p)), feeds, meas,
                                      get_op=prepared))
    return make_scorer


def _write_synthesized(vendor_float: Model | None, fixed_dialect: str, stats: StatsSet, config: InputConfig,
                       output_path, pi: PlanInputs, plan: QuantPlan, carriable: frozenset[int] | None = None,
                       check_feeds=None, memo: dict | None = None) -> bool:
    """Write the vendor's dialect synthesized from the float.sim when ``fixed_dialect`` asks for it and it
    can be; True when written. ``"vendor"`` raises what stops it; ``"auto"`` logs it and returns False.
    ``carriable``: the convs whose 16-bit plan is written at 16 bit (:func:`vendor_int16_carriable`);
    None: every conv at 8 bit."""
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
    sixteen = sum(1 for bits in plan.conv_bits.values() if bits == 16)
    if carriable is not None:
        inputs16, dropped = _vendor_int16_conv_inputs(carriable, pi, plan)
    else:
        inputs16, dropped = [], []
        if sixteen:
            log.warning("%s: the vendor's dialect is written with 8-bit convs (vendor_int16_convs=False); the level's "
                        "%d 16-bit conv(s) are not carried", output_path, sixteen)
    written16 = False
    if inputs16:
        from ..fileio import atomic_write
        try:
            data16 = _synthesized_bytes(vendor_float, stats, config, pi, plan, inputs16, memo=memo)
            written16 = True
        except (UnsupportedOpError, ModelError) as e:
            log.warning("%s: the level's 16-bit convs cannot be written in the vendor's dialect (%s); they are "
                        "written at 8 bit", output_path, e)
            dropped = []
        if written16 and check_feeds and not _forced_16(pi, config) and _all_image_inputs(pi, plan):
            # the level chose them by measurements in our arithmetic: kept if the vendor's arithmetic agrees
            data8 = _synthesized_bytes(vendor_float, stats, config, pi, plan, memo=memo)
            refs = _check_references(pi, plan, check_feeds)
            db16, db8 = (_vendor_file_sqnr(d, pi, plan, references=refs) for d in (data16, data8))
            log.info("%s: the level's 16-bit convs in the vendor's arithmetic, worst-output SQNR on %d calibration "
                     "samples: %.2f dB with them, %.2f dB at 8 bit", output_path, len(check_feeds), db16, db8)
            if not db16 > db8:
                log.warning("%s: the level's %d 16-bit conv(s) are written at 8 bit: in the vendor's arithmetic they "
                            "do not improve the outputs on the calibration samples (%.2f dB, %.2f dB at 8 bit)",
                            output_path, len(inputs16), db16, db8)
                data16, dropped = data8, []
        if written16:
            atomic_write(output_path, data16)
    if not written16:
        try:
            _synthesized_bytes(vendor_float, stats, config, pi, plan, output_path=output_path, memo=memo)
        except (UnsupportedOpError, ModelError) as e:
            if fixed_dialect == "vendor":
                raise
            log.warning("the vendor's fixed dialect cannot be written for this model (%s), so %s is "
                        "calibrator_custom's own dialect (run by fixed_simulator, not loadable by the vendor's "
                        "compiler)", e, output_path)
            return False
    if dropped:
        log.warning("%s: %d of the level's 16-bit conv(s) are written at 8 bit in the vendor's dialect (%s%s): the "
                    "dialect's 16-bit convs are convs whose input is not the graph input, is made by a conv, an "
                    "ADD, a PRELU, a RELU6 fused into a conv or a RELU of an INT16 tensor, and is read by convs, "
                    "ADDs and pools or pads feeding ADDs only", output_path,
                    len(dropped),
                    ", ".join(dropped[:6]), ", ..." if len(dropped) > 6 else "")
    return True


#: the ops whose INT16 output (a 16-bit conv's input) the vendor's compiler takes in the synthesized file:
#: convs (ordinary, native depthwise, the depthwise-as-CONV_2D rewrite), ADDs and PRELUs (its tables for
#: an INT16 output: ``tests/test_vendor_fixed_int16_prelu.py``)
_INT16_PRODUCERS = ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "PRELU")
#: activations whose INT16 output counts as made by a conv where the synthesizer fuses them into it
#: (``synth.fuse_activations``: the activation alone reads the conv's output, neither a graph output);
#: the conv then clamps its own INT16 output (hand_landmark_lite's 32 RELU6s at ALL_INT16 and L5: the
#: vendor's compiler takes the file, its fixed simulator gives our codes on 10 photos). A standalone
#: RELU6 with an INT16 output is not established (a RELU of an INT16 tensor: the next constant).
_INT16_FUSED_PRODUCERS = ("RELU6",)
#: activations that write a 16-bit conv's INT16 input from an input the float.sim plans INT16 (an ADD's or a
#: conv's output): the vendor's own ALL_INT16 file of face_detection_short_range has 16 such INT16 -> INT16
#: RELUs between 16-bit convs, the synthesizer writes their tables (``tests/test_vendor_fixed_int16_acts.py``),
#: and files with RELU outputs as 16-bit conv inputs compile and run in the vendor's simulators as ours
#: (``tests/test_vendor_fixed_int16_relu.py``: ADD -> RELU; ``tests/test_pipeline_vendor_dialect.py``: conv -> RELU)
_INT16_PASSING_ACTIVATIONS = ("RELU",)
#: the ops that may read a 16-bit conv's INT16 input besides the conv; a MAX_POOL_2D or PAD reading it
#: writes INT16 too (``quantize_plan.INT16_PASSING_OPS``, as the vendor's converter plans it), so its
#: output may be read by these and ADDs only (a pool writing UINT8 from it made the vendor's compiler
#: fail on hand_landmark_lite: ``get_datatype_convert_param: Assertion ...``)
_INT16_READERS = ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "PAD")


def vendor_int16_carriable(vendor_float: Model, pi: PlanInputs) -> frozenset[int]:
    """The convs (op indices of ``pi``) the vendor's dialect can write at 16 bit (INT16 input and weights,
    as the vendor's ``[CONV_CONFIG] tensor_arrays``): a CONV_2D or DEPTHWISE_CONV_2D whose input is not a
    graph input, is made by one of :data:`_INT16_PRODUCERS` (or :data:`_INT16_FUSED_PRODUCERS` fused into
    a conv, or :data:`_INT16_PASSING_ACTIVATIONS` reading a tensor the float.sim plans INT16) and is read
    (as data) by
    :data:`_INT16_READERS` only, the pools and pads among them read in turn by ADDs, pools and pads only."""
    from ..vendor_fixed.quantize_plan import INT16_PASSING_OPS
    sg = vendor_float.main
    graph_inputs = {sg.tensors[i].name for i in sg.inputs}
    graph_outputs = {sg.tensors[i].name for i in sg.outputs}
    convs = ("CONV_2D", "DEPTHWISE_CONV_2D")
    readers: dict[str, list] = {}
    for op in sg.operators:
        for i in op.inputs[:1 if vendor_float.op_name(op) in convs else None]:
            if i >= 0:
                readers.setdefault(sg.tensors[i].name, []).append(op)

    def passes_int16(op) -> bool:  # a pool / pad output, INT16 once its input is, read by ADDs, pools, pads
        name = sg.tensors[op.outputs[0]].name
        return name not in graph_outputs and all(
            vendor_float.op_name(r) == "ADD" or (vendor_float.op_name(r) in INT16_PASSING_OPS and passes_int16(r))
            for r in readers.get(name, ()))

    def int16_readable(name: str) -> bool:
        for r in readers.get(name, ()):
            kind = vendor_float.op_name(r)
            if kind not in _INT16_READERS or (kind in INT16_PASSING_OPS and not passes_int16(r)):
                return False
        return True
    made_by = {sg.tensors[i].name: op for op in sg.operators for i in op.outputs}

    def makes_int16(op) -> bool:  # a producer, or an activation fused into the conv before it
        kind = vendor_float.op_name(op)
        if kind in _INT16_PRODUCERS:
            return True
        if kind in _INT16_PASSING_ACTIVATIONS:  # INT16 -> INT16, as between the vendor's own 16-bit convs
            return sg.tensors[op.inputs[0]].extra.get("sgs_fixed_type") == "INT16" and \
                sg.tensors[op.outputs[0]].name not in graph_outputs
        if kind not in _INT16_FUSED_PRODUCERS:
            return False
        src = sg.tensors[op.inputs[0]].name
        conv = made_by.get(src)
        return conv is not None and vendor_float.op_name(conv) in convs and \
            getattr(conv.options, "fused_activation_function", "NONE") == "NONE" and \
            readers.get(src) == [op] and src not in graph_outputs and \
            sg.tensors[op.outputs[0]].name not in graph_outputs
    out = set()
    for c in pi.convs:
        name = pi.model.main.tensors[c.data].name
        producer = made_by.get(name)
        if c.op_name in convs and name not in graph_inputs and producer is not None and \
                makes_int16(producer) and int16_readable(name):
            out.add(c.op_index)
    return frozenset(out)


def _conv_siblings(pi: PlanInputs) -> dict[int, frozenset[int]]:
    """Per conv (op index), the convs reading its data tensor, itself included: in the vendor's dialect a 16-bit
    conv's INT16 input is that tensor, so every conv reading it runs at 16 bit with it."""
    convs = pi.convs
    return {convs[r].op_index: frozenset(convs[j].op_index for j in rows)
            for rows in convs_by_data(convs).values() for r in rows}


def _vendor_int16_conv_inputs(carriable: frozenset[int], pi: PlanInputs,
                              plan: QuantPlan) -> tuple[list[str], list[str]]:
    """(names of the first inputs of the plan's 16-bit convs in ``carriable``, a description of each other
    16-bit conv)."""
    carried, dropped = set(), []
    for c in pi.convs:
        if plan.conv_bits.get(c.op_index, 8) != 16:
            continue
        name = pi.model.main.tensors[c.data].name
        if c.op_index in carriable:
            carried.add(name)
        else:
            dropped.append(f"{c.op_name} reading {name!r}")
    return sorted(carried), dropped


def _synthesizable(vendor_float: Model | None, fixed_dialect: str) -> bool:
    """Whether the fixed file will be the vendor's dialect synthesized from ``vendor_float`` (as far as its
    op kinds tell: the synthesizer may still refuse a case, then our own dialect is written)."""
    from ..vendor_fixed.synth_ops import OPS
    return (vendor_float is not None and fixed_dialect != "calibrator_custom"
            and all(vendor_float.op_name(op) in OPS for op in vendor_float.main.operators))


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


def _channel_input_means(pi: PlanInputs, plan: QuantPlan,
                         weight_scales: dict[str, tuple[float, ...]] | None) -> dict[str, np.ndarray] | None:
    """Per weight name of ``weight_scales``, the input channel means of the convs whose bias the plan
    corrects (L5's bias correction, ``QuantPlan.conv_input_means``), else None."""
    if not weight_scales or not plan.conv_input_means:
        return None
    names = pi.model.main.tensors
    return {names[c.weights].name: plan.conv_input_means[c.op_index] for c in pi.convs
            if c.op_index in plan.conv_input_means and names[c.weights].name in weight_scales} or None


def _channel_weight_scales(pi: PlanInputs, plan: QuantPlan) -> dict[str, tuple[float, ...]] | None:
    """Per weight name, the plan's per-channel scales of its 8-bit convs (L2 and up), else None; a conv
    planned at 16 bit gets the scales the level gives it at 8 bit (used where the file writes it at 8 bit)."""
    if get_level(plan.level).weight_scales == "per_tensor":
        return None
    from ..quant.planner import eight_bit_weight_scales
    scales = {}
    for c in pi.convs:
        const = plan.constants.get(c.weights)
        if const is None:
            continue
        if plan.conv_bits.get(c.op_index, 8) == 8:
            if len(const.quant.scale) > 1:
                scales[pi.model.main.tensors[c.weights].name] = const.quant.scale
        else:
            scales[pi.model.main.tensors[c.weights].name] = eight_bit_weight_scales(pi, c, plan.level)
    return scales
