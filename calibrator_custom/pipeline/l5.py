"""L5: the plan refined by measurements in float on the float model's cached activations
(docs/quant_levels.md; ``pipeline.float_sim``: no fixed model is built or run).

Each 8-bit conv's arithmetic is simulated in float (its input rounded to its UINT8 grid, its weights
to their integers); the UINT8 range of each conv input is chosen between the fitted and the min/max
one by the conv's output error; each conv's noise is measured at every measured output with only that
conv at 8 bit (the float model run downstream of it), each sample quantized with the ranges of the
other calibration samples (leave-one-out, ``L5Options.leave_one_out``); the 16-bit convs are picked
by a knapsack on the noise removed per multiply-accumulate within ``MAX_16BIT_MAC_SHARE`` of all conv
MACs, among the convs whose sensitivity (the largest relative drop of any output's noise when that
conv alone is 16-bit, noise powers adding) exceeds the threshold (``quant.l5_search``); finally biases
are corrected for the mean shift of weight quantization (measured input means), kept only if the float
model with every remaining 8-bit conv simulated at once agrees better with the float outputs on other
calibration samples.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np

from .. import blas
from ..calib.stats import FIRST_SAMPLES_KEPT, channel_min_max
from ..config import IMAGE_FORMATS
from ..fixed.feeds import pixels_from_normalized
from ..plan import PlanInputs, QuantPlan, TensorQuant
from ..progress_display import Reporter
from ..quant import l5_search
from ..quant.planner import activation_quant
from ..quant.ranges import Range, minmax_range
from ..sim_workers import run_sharded
from ..vendor_fixed.pack import mean_shift
from .float_sim import _FloatSim, _Samples
from .measure import _db
from .options import PlanOverrides
from .sensitivity import MAX_16BIT_MAC_SHARE, _ticking, conv_macs, convs_by_data

log = logging.getLogger(__name__)

#: calibration samples used for L5 measurements (the first ones; all but the check ones for the bias
#: correction's input means)
L5_SAMPLES = 8
#: of which the choice of conv input ranges uses the first
L5_RANGE_SAMPLES = 3
#: and the per-conv error measurements (float runs downstream of each conv) at most the first
L5_NOISE_SAMPLES = 3
#: ... and no more than the float model's passes (in conv MACs: each conv's run downstream counts
#: its share of the model's MACs) this allows: the deep models measure on fewer samples
L5_NOISE_PASSES = 48
#: and the check of the bias correction (float passes with every 8-bit conv simulated) the next ones
L5_CHECK_SAMPLES = 3
#: INT16 activations get this much room around their calibrated range (other images exceed it; an
#: INT16 step 1.25 times coarser costs 1.9 dB of a resolution about 90 dB above the signal)
L5_INT16_HEADROOM = 1.25
#: each measured sample's 8-bit conv data quantized with the ranges of the other calibration samples
L5_LEAVE_ONE_OUT = True


@dataclass(frozen=True)
class L5Options:
    """How the L5 search measures: the sensitivity threshold of a 16-bit upgrade and how many samples."""

    sensitivity_threshold: float = 0.002
    #: calibration samples used for the measurements (the first ones)
    samples: int = L5_SAMPLES
    #: of which the choice of conv input ranges uses the first
    range_samples: int = L5_RANGE_SAMPLES
    #: the per-conv error measurements at most the first
    noise_samples: int = L5_NOISE_SAMPLES
    #: ... within this many float-model passes (counted in conv MACs)
    noise_passes: float = L5_NOISE_PASSES
    #: the bias correction's check the next ones
    check_samples: int = L5_CHECK_SAMPLES
    #: INT16 activations' ranges widened this many times (1: as calibrated)
    int16_headroom: float = L5_INT16_HEADROOM
    #: the convs (op indices) that may be upgraded to 16 bit; None: every conv (the fixed file's dialect
    #: may carry fewer: the vendor's)
    upgradable: frozenset[int] | None = None
    #: a 16-bit conv's input is its data tensor itself, so the convs reading one tensor are upgraded together
    #: (the vendor's dialect; ours gives 8-bit readers a UINT8 view of an INT16 tensor)
    shared_inputs: bool = False
    #: the 8-bit convs' UINT8 data measured with one scale per tensor (the union of a per-channel view's
    #: ranges), as the vendor's dialect stores it
    per_tensor_data: bool = False
    #: measure each sample with the 8-bit convs' UINT8 data ranges of the other calibration samples
    #: (leave-one-out: one more float pass, over the samples not cached, keeps their channel extremes)
    leave_one_out: bool = L5_LEAVE_ONE_OUT
    #: processes for the per-conv error measurements and the bias correction's two checks (forked
    #: workers, ``sim_workers.run_sharded``); the plan is the same for every count
    num_process: int = 1


def refine_l5(pi: PlanInputs, plan: QuantPlan, feeds, overrides: PlanOverrides, options: L5Options,
              rep: Reporter) -> QuantPlan:
    """The L5 measurements, all in float on cached float activations (``_FloatSim``); each loop is a
    phase of ``rep``. One plan is built at the end: no fixed model is built or run here.

    1. float activations of the first ``options.samples`` samples (every tensor kept);
    2. each 8-bit conv's UINT8 input range, fitted or min/max, by the conv's own output error with
       its 8-bit arithmetic simulated in float (quantized input and weights; with
       ``options.per_tensor_data`` the input at one scale per tensor, as the vendor's dialect stores it);
    3. each 8-bit conv's noise at every measured output with only that conv at 8 bit: its simulated
       output replaces the float one and the float model runs downstream of it (the upstream results
       are the cached ones); with ``options.leave_one_out`` each sample's conv data quantized with the
       ranges of the other calibration samples (``leave_one_out_ranges``: from the statistics'
       per-sample log, else one float pass over the samples not cached), here and in 5.'s check;
    4. the 16-bit set (with ``options.shared_inputs`` the convs reading one tensor are one item, measured
       in 3. at 8 bit together, their MACs counted together): among the items whose sensitivity
       (``l5_search.output_sensitivity``: the largest relative drop of any output's noise when that item
       alone is 16-bit, the items' noise powers adding) exceeds the threshold, the one a knapsack (and a
       greedy, the better kept) on the noise removed per MAC finds within 25% of the conv MACs
       (``l5_search.choose_upgrades``);
    5. bias correction for the mean shift of weight quantization (input means measured on the samples
       other than the check ones), kept only if the float model with every remaining 8-bit conv
       simulated at once (their noise accumulating) agrees better with the float outputs on the check
       samples.
    """
    threshold = options.sensitivity_threshold
    say = rep.message
    feeds = list(feeds)
    rest = feeds[options.samples:]
    feeds = on_pixel_grid(pi, plan, feeds[:options.samples])
    g = pi.graph
    eight = [c for c in pi.convs if plan.conv_bits.get(c.op_index) == 8 and pi.step_of(c.op_index) is not None]
    if not eight:
        say("L5: no 8-bit convolution to measure")
        return plan
    say(f"L5: measuring {len(eight)} 8-bit convolutions on {len(feeds)} samples")
    with rep.phase("L5 float activations (samples)", len(feeds)) as phase:
        sim = _FloatSim.collect(pi, plan, feeds, phase.update, range_samples=options.range_samples,
                                noise_samples=options.noise_samples, check_samples=options.check_samples)
    macs = conv_macs(pi)
    sim.n_noise = _noise_samples(pi, eight, macs, sim.n_noise, options.noise_passes)
    # 2. UINT8 input ranges: the plan's (fitted) or the statistics' min/max, per conv by its output error
    u8 = dict(overrides.u8_overrides)
    ranges = dict(overrides.range_overrides)
    given = set(u8) | set(ranges)  # ranges given (an imported quant_param): no leave-one-out for them
    dquant = {}  # conv op -> the UINT8 quantization of its data input it will have (as measured)
    dview = {}  # conv op -> the same as the plan holds it (per channel): what the bias correction's check runs
    chosen_mm = {}  # data tensor -> its min/max quantizations, where that won (the overrides are per tensor)
    measured = _per_tensor if options.per_tensor_data else (lambda q: q)
    with rep.phase("L5 conv input ranges (convs)", len(eight)) as phase:
        for c in _ticking(eight, phase.update):
            view = plan.u8_views.get(c.data) or plan.tensors[c.data]
            dq = dquant[c.op_index] = measured(view)
            dview[c.op_index] = view
            ts = pi.stats.tensors.get(g.tensors[c.data].name)
            imported = c.data in (u8 if c.data in plan.u8_views else ranges)
            if ts is None or imported or dq.qtype != "UINT8" or c.data in g.inputs:
                continue
            axis = len(g.tensors[c.data].shape) - 1 if len(view.scale) > 1 else None
            alt_view = activation_quant(minmax_range(ts.min, ts.max), "UINT8", ts.channel_min, ts.channel_max, axis)
            alt = measured(alt_view)
            if alt == dq:
                continue
            # the outputs on the samples the per-conv errors use are kept for them (the chosen one's)
            y_fit, y_mm = {}, {}
            e_fit = sum(sim.conv_error(c, n, dq, y_fit if n < sim.n_noise else None) for n in range(sim.n_range))
            e_mm = sum(sim.conv_error(c, n, alt, y_mm if n < sim.n_noise else None) for n in range(sim.n_range))
            if e_mm < e_fit:
                (u8 if c.data in plan.u8_views else ranges)[c.data] = minmax_range(ts.min, ts.max)
                chosen_mm[c.data] = (alt, alt_view)
            sim.keep_8bit(c, *((alt, y_mm) if e_mm < e_fit else (dq, y_fit)))
    for c in eight:  # a tensor read by several 8-bit convs: the first reader's choice holds for all
        if c.data in chosen_mm:
            dquant[c.op_index], dview[c.op_index] = chosen_mm[c.data]
    overrides = replace(overrides, u8_overrides=u8, range_overrides=ranges)
    if options.leave_one_out:  # from here on each sample is measured with the other samples' ranges
        with rep.phase("L5 leave-one-out ranges (samples)", len(rest)) as phase:
            sim.loo = leave_one_out_ranges(pi, plan, sim, eight, overrides, rest, phase.update, given=given)
        say(f"L5: {len(sim.loo)} conv data tensor(s) measured with leave-one-out ranges")
    if options.upgradable is not None and not any(c.op_index in options.upgradable for c in eight):
        # no conv may become 16-bit (the written dialect carries none): nothing to measure in 3. and 4.
        say("L5: no convolution can be upgraded to 16 bit in the written dialect; its noise is not measured")
        sim.drop_kept()
        return _bias_corrected_plan(pi, plan, overrides, sim, eight, dview, frozenset(), options, rep)
    # 3. each 8-bit conv's noise power at the measured outputs, the rest of the model exact (float)
    signal = sim.signal()
    items = _upgrade_items(eight, options.shared_inputs)
    with rep.phase("L5 conv errors at the outputs (convs)", len(items)) as phase:
        power = conv_noise_powers(sim, eight, dquant, options.num_process, phase.update, items)
    sim.drop_kept()
    # 4. the 16-bit set under the MAC budget: knapsack / greedy on the noise removed, the items' noise
    #    powers adding at each output (the cross terms of the error vectors, measured on so few
    #    samples, pick choices that do worse on other images); sensitivity above the threshold
    model = l5_search.independent(power)  # per output: the items' noise energies (diagonal)
    cost = np.array([sum(macs.get(eight[r].op_index, 0) for r in rows) for rows in items], np.float64)
    forced = [k for k, b in plan.conv_bits.items() if b == 16]
    budget = MAX_16BIT_MAC_SHARE * (sum(macs.values()) or 1) - sum(macs.get(k, 0) for k in forced)
    sens = l5_search.output_sensitivity(model, signal)
    eligible = sens > threshold
    if options.upgradable is not None:
        eligible &= np.array([all(eight[r].op_index in options.upgradable for r in rows) for rows in items], bool)
    pick = l5_search.choose_upgrades(model, signal, cost, budget, eligible=eligible)
    rec = frozenset(eight[r].op_index for k in pick for r in items[k])
    left = np.ones(len(items), bool)
    left[list(pick)] = False
    worst = [_db(float(l5_search.predicted_nsr(model, signal, x).max())) for x in (np.ones(len(items), bool), left)]
    say(f"L5: {len(rec)} convolution(s) upgraded to 16 bit ({cost[list(pick)].sum() / max(1, sum(macs.values())):.1%} "
        f"of the conv MACs; predicted worst-output SQNR on calibration data {worst[0]:.2f} -> {worst[1]:.2f} dB)")
    return _bias_corrected_plan(pi, plan, overrides, sim, eight, dview, rec, options, rep)


def _bias_corrected_plan(pi: PlanInputs, plan: QuantPlan, overrides: PlanOverrides, sim, eight, dquant, rec,
                         options: L5Options, rep: Reporter) -> QuantPlan:
    """Step 5 of :func:`refine_l5` and the one plan it returns, with the 16-bit convs ``rec``; ``dquant``: the
    8-bit convs' data quantizations as the plan holds them (per channel where it has a view: simulated at one
    scale per tensor, the check dropped hand_landmark_lite's correction, which its vendor file needs)."""
    say = rep.message
    # 5. bias correction (input means from the samples other than the check ones), kept if the float
    #    model with every remaining 8-bit conv simulated at once agrees better on the check samples
    still8 = [c for c in eight if c.op_index not in rec]
    means = _input_means(pi, _Samples([v for n, v in enumerate(sim.values) if n not in sim.check] or sim.values))
    deltas = {b: d for b, d in _bias_corrections(pi, plan, means).items()
              if any(c.bias == b for c in still8)}
    with rep.phase("L5 bias correction (float passes)", 2 * len(sim.check)) as phase:
        before, after = _joint_nsrs(sim, still8, dquant, ({}, deltas), options.num_process, phase.update)
    keep = after < before
    say(f"L5: bias correction {'kept' if keep else 'dropped'} (worst-output SQNR, 8-bit convs simulated, "
        f"on calibration data {_db(before):.2f} -> {_db(after):.2f} dB)")
    # the INT16 activations of the plan with these upgrades get their headroom, then the one plan is built
    room = int16_headroom(pi, overrides.activations(pi, plan.level, rec), overrides, options.int16_headroom)
    if room:
        overrides = replace(overrides, range_overrides={**overrides.range_overrides, **room})
    final = overrides.plan(pi, plan.level, rec, bias_deltas=deltas if keep else None)
    if not keep:
        return final
    return replace(final, conv_input_means={c.op_index: means[c.op_index] for c in still8
                                            if c.bias in deltas and c.op_index in means})


def leave_one_out_ranges(pi: PlanInputs, plan: QuantPlan, sim: _FloatSim, eight, overrides: PlanOverrides,
                         rest, tick=None, given=None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``_FloatSim.loo``: per UINT8 data tensor of the 8-bit convs ``eight`` (not model inputs, not in
    ``given``, default: the ranges ``overrides`` gives), the per-channel minima and maxima over the
    calibration samples other than each of ``sim``'s cached ones (``l5_search.leave_one_out``).

    The per-sample extremes come from the statistics' per-sample log when it holds them for the cached
    samples (statistics collected in this process: ``calib.stats.SampleExtremes``; nothing is run), else
    from ``rest``, the calibration samples after the cached ones, run once in float on the pixel grid
    (:func:`on_pixel_grid`) keeping only those tensors' channel extremes. Only when every such tensor's
    statistics count the samples used (the statistics are those of these feeds); otherwise (or with a
    single sample) nothing."""
    g = pi.graph
    given = set(overrides.u8_overrides) | set(overrides.range_overrides) if given is None else set(given)
    tensors = sorted({c.data for c in eight if c.data not in g.inputs and c.data not in given
                      and (plan.u8_views.get(c.data) or plan.tensors[c.data]).qtype == "UINT8"})
    if not tensors:
        return {}
    rows = _logged_extremes(pi, sim, tensors)
    if rows is None:
        rows = _rerun_extremes(pi, plan, sim, tensors, rest, tick)
    first = len(sim.values)
    out = {}
    for d, (lo, hi) in rows.items():
        a, b = l5_search.leave_one_out(lo, hi)
        out[d] = (a[:first], b[:first])
    return out


def _rerun_extremes(pi: PlanInputs, plan: QuantPlan, sim: _FloatSim, tensors, rest,
                    tick=None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per tensor, ``[samples, C]`` per-sample channel minima and maxima of the cached samples and of
    ``rest`` run once in float on the pixel grid, when the statistics count exactly those samples; else
    nothing."""
    total = len(sim.values) + len(rest)
    counts = {getattr(pi.stats.tensors.get(pi.graph.tensors[d].name), "num_samples", None) for d in tensors}
    if total < 2 or counts != {total}:
        if total >= 2:
            log.info("L5: no leave-one-out ranges: statistics of %s samples, %d calibration feeds, and no "
                     "per-sample extremes of the cached ones", sorted(counts, key=str), total)
        return {}
    lo = {d: [] for d in tensors}
    hi = {d: [] for d in tensors}
    for vals in sim.values:
        for d in tensors:
            a, b, _, _ = channel_min_max(vals[d])
            lo[d].append(a)
            hi[d].append(b)
    wanted = set(tensors)

    def keep(i: int, _name: str, v: np.ndarray) -> None:
        if i in wanted:
            a, b, _, _ = channel_min_max(v)
            lo[i].append(a)
            hi[i].append(b)

    for f in _ticking(on_pixel_grid(pi, plan, rest), tick):
        pi.interp.run(list(f), observers=(keep,))
    return {d: (np.stack(lo[d]), np.stack(hi[d])) for d in tensors}


#: the cached samples are taken to be the statistics' first ones when, for each cached sample, the median over
#: the tensors of the largest difference of its per-channel extremes from the logged ones is within this
#: share of the tensor's calibrated width: the cached inputs are on the pixel grid and the statistics'
#: may not be (measured on the shared models: medians 0.2-0.4% for the same photo, 20-30% for another)
LOGGED_EXTREMES_AGREE = 0.05


def _logged_extremes(pi: PlanInputs, sim: _FloatSim, tensors) -> dict[int, tuple[np.ndarray, np.ndarray]] | None:
    """Per tensor, ``[samples, C]`` per-sample channel minima and maxima of every calibration sample (the
    logged first ones, one row merging the later ones) from the statistics' per-sample log, if it holds
    them for all ``tensors`` over all the statistics' samples and the cached samples are its first ones;
    else None."""
    log_ = pi.stats.samples
    n = pi.stats.num_samples
    first = len(sim.values)
    if log_ is None or n < 2 or len(log_.labels) != n:
        return None
    out = {}
    diff = np.zeros((first, len(tensors)))
    for j, d in enumerate(tensors):
        ts = pi.stats.tensors.get(pi.graph.tensors[d].name)
        ext = log_.extremes.get(pi.graph.tensors[d].name)
        if ts is None or ext is None or ts.num_samples != n or ext.num_first < min(n, first) or \
                ext.num_first != min(n, FIRST_SAMPLES_KEPT):
            return None
        width = max(float(np.max(ts.channel_max - ts.channel_min)), 1e-30)
        for k, vals in enumerate(sim.values):
            a, b, _, _ = channel_min_max(vals[d])
            diff[k, j] = max(np.max(np.abs(a - ext.first_min[k])), np.max(np.abs(b - ext.first_max[k]))) / width
        if n > ext.num_first:
            out[d] = (np.concatenate([ext.first_min, ext.later_min[None]]),
                      np.concatenate([ext.first_max, ext.later_max[None]]))
        else:
            out[d] = (ext.first_min, ext.first_max)
    worst = float(np.median(diff, axis=1).max()) if tensors else 0.0
    if worst > LOGGED_EXTREMES_AGREE:
        log.info("L5: the cached samples are not the statistics' first ones (their extremes differ by %.1f%% of "
                 "the calibrated widths, median over the tensors); leave-one-out ranges from float runs of the "
                 "other samples, if given", 100 * worst)
        return None
    return out


def conv_noise_powers(sim: _FloatSim, eight, dquant: Mapping[int, object], num_process: int = 1,
                      tick=None, items: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """``power[r, t]``: the squared error at measured tensor ``t``, summed over the noise samples, with only
    item ``r`` at 8 bit (its convs' simulated outputs, the float model downstream of them). ``items``: tuples of
    indices into ``eight`` (default: each conv alone).

    The items are measured in ``num_process`` forked workers (``sim_workers.run_sharded``; each worker
    inherits the cached activations); a row is computed by the same code in any process and the rows
    are put back in order, so the result is bit-identical for every ``num_process``. The items are
    dealt out round-robin (the early convs, with the longest runs downstream, spread over the workers)."""
    items = [(r,) for r in range(len(eight))] if items is None else [tuple(rows) for rows in items]
    count = len(items)
    n = max(1, min(int(num_process), count))
    order = [r for k in range(n) for r in range(k, count, n)]
    width = len(sim.targets)

    def run_shard(start: int, stop: int, tick_one) -> np.ndarray:
        out = np.zeros((stop - start, width))
        for j in range(start, stop):
            convs = [eight[r] for r in items[order[j]]]
            for s in range(sim.n_noise):
                replaced = {sim.pi.step_of(c.op_index).outputs[0]: sim.conv_8bit_kept(c, s, dquant[c.op_index])
                            for c in convs}
                out[j - start] += sim.output_error(s, sim.downstream(s, replaced))
            tick_one()
        return out

    if not count:
        return np.zeros((0, width))
    rows = np.concatenate(run_sharded(run_shard, count, n, tick, "L5 conv errors",
                                      lambda j: "conv op(s) #" + ", #".join(str(eight[r].op_index)
                                                                          for r in items[order[j]])))
    power = np.empty_like(rows)
    power[order] = rows
    return power


def _per_tensor(dq: TensorQuant) -> TensorQuant:
    """A per-channel UINT8 quantization as one scale over the union of its channel ranges (``activation_quant``
    of that range); anything else unchanged."""
    if dq.qtype != "UINT8" or len(dq.scale) < 2:
        return dq
    return activation_quant(Range(min(dq.min), max(dq.max)), "UINT8")


def _upgrade_items(eight, shared_inputs: bool) -> list[tuple[int, ...]]:
    """The units of the 16-bit choice, as indices into ``eight``: each conv alone, or with ``shared_inputs``
    the 8-bit convs reading one data tensor together (a 16-bit input is that tensor itself: every conv
    reading it runs at 16 bit), in the order of their first conv."""
    if not shared_inputs:
        return [(r,) for r in range(len(eight))]
    return [tuple(rows) for rows in convs_by_data(eight).values()]


def _joint_nsrs(sim: _FloatSim, convs, dquant, delta_sets, num_process: int = 1, tick=None) -> list[float]:
    """``[sim.joint_nsr(convs, dquant, d) for d in delta_sets]``, one per worker (up to ``num_process``)."""
    sets = list(delta_sets)

    def run_shard(start: int, stop: int, tick_one) -> list[float]:
        return [sim.joint_nsr(convs, dquant, sets[k], tick_one) for k in range(start, stop)]

    parts = run_sharded(run_shard, len(sets), num_process, tick, "L5 bias correction check",
                        lambda k: f"check #{k} (0: without the bias correction, 1: with it)")
    return [x for part in parts for x in part]


def _is_image_input(plan: QuantPlan, i: int) -> bool:
    spec = plan.input_specs.get(i)
    return spec is not None and spec.input_format in IMAGE_FORMATS


def on_pixel_grid(pi: PlanInputs, plan: QuantPlan, feeds) -> list[list[np.ndarray]]:
    """``feeds`` as the chip sees them: each image input rounded to its uint8 pixels and normalized
    again (``fixed.feeds.pixels_from_normalized``; the fixed model takes raw pixels), other inputs as
    they are. The L5 measurements then see only the noise the plan can change: an image input's own
    UINT8 grid (offset from the pixels' when the mean is not an integer) is simulated as any conv data."""
    out = []
    for f in feeds:
        row = []
        for x, i in zip(f, pi.graph.inputs):
            if _is_image_input(plan, i):
                spec = plan.input_specs[i]
                x = np.asarray(x)
                pix = pixels_from_normalized(x, spec).astype(np.float32)
                v = (pix - np.asarray(spec.channel_mean(), np.float32)) / np.asarray(spec.channel_std(), np.float32)
                x = (np.transpose(v, (0, 3, 1, 2)) if spec.layout == "NCHW" and x.ndim == 4 else v).astype(x.dtype)
            row.append(x)
        out.append(row)
    return out


#: the values an op's output cannot leave (a bounded function), by op and by fused activation
_OP_BOUNDS = {"LOGISTIC": (0.0, 1.0), "TANH": (-1.0, 1.0), "SOFTMAX": (0.0, 1.0), "RELU6": (0.0, 6.0),
              "RELU_N1_TO_1": (-1.0, 1.0), "RELU_0_TO_1": (0.0, 1.0), "HARD_SIGMOID": (0.0, 1.0)}
_ACT_BOUNDS = {"RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0), "RELU": (0.0, np.inf)}


def value_bounds(pi: PlanInputs) -> dict[int, tuple[float, float]]:
    """Per tensor made by a bounded op (LOGISTIC, TANH, SOFTMAX, RELU6, ...) or an op with a bounded
    fused activation: the interval its values cannot leave."""
    out = {}
    for s in pi.interp.steps:
        b = _OP_BOUNDS.get(s.op_name)
        if b is None:
            act = getattr(pi.graph.operators[s.op_index].options, "fused_activation_function", "NONE")
            b = _ACT_BOUNDS.get(act)
        if b is not None:
            out.update({o: b for o in s.outputs})
    return out


def int16_headroom(pi: PlanInputs, plan: QuantPlan | Mapping[int, TensorQuant], overrides: PlanOverrides,
                   factor: float) -> dict[int, Range]:
    """Range overrides widening every INT16 activation of ``plan`` (or of its ``tensors``, a mapping
    tensor -> quantization: ``PlanOverrides.activations``) (not model inputs, not ranges given in
    ``overrides``) ``factor`` times around 0, but not beyond what the op making it can output
    (``value_bounds``: a sigmoid's [0, 1]): values beyond the calibration data's range then do not
    saturate, for at most 20*log10(factor) dB of the INT16 resolution. A bounded output gains nothing
    from room it cannot use and loses resolution where it matters (a sigmoid score near 0)."""
    if factor <= 1:
        return {}
    bounds = value_bounds(pi)
    out = {}
    tensors = plan if isinstance(plan, Mapping) else plan.tensors
    for i, q in tensors.items():
        if q.qtype != "INT16" or i in pi.graph.inputs or i in overrides.range_overrides or not q.min or not q.max:
            continue
        lo, hi = min(q.min), max(q.max)
        blo, bhi = bounds.get(i, (-np.inf, np.inf))
        wide_lo, wide_hi = min(lo, max(lo * factor, blo)), max(hi, min(hi * factor, bhi))
        if (wide_lo, wide_hi) != (lo, hi):
            out[i] = Range(wide_lo, wide_hi, "int16 headroom")
    return out


def _noise_samples(pi: PlanInputs, eight, macs: Mapping[int, int], most: int,
                   passes_allowed: float = L5_NOISE_PASSES) -> int:
    """How many samples the per-conv error runs use: at most ``most``, and within ``passes_allowed``
    float-model passes counted in conv MACs (the run downstream of conv k costs the MACs of k and
    of every conv it reaches, over the model's), at least 1."""
    total = sum(macs.values()) or 1
    steps = pi.interp.steps
    position = {s.op_index: k for k, s in enumerate(steps)}
    passes = 0.0
    for c in eight:
        k = position[c.op_index]
        dirty, cost = set(steps[k].outputs), macs.get(c.op_index, 0)
        for s in steps[k + 1:]:
            if any(i in dirty for i in s.inputs):
                dirty.update(s.outputs)
                cost += macs.get(s.op_index, 0)
        passes += cost / total
    return max(1, min(most, int(passes_allowed // max(passes, 1e-9))))


def _input_means(pi: PlanInputs, meas: _Samples) -> dict[int, np.ndarray]:
    """Conv op index -> the mean over the samples of each channel of its data input (last axis), for the
    CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED with a constant bias and their input in the samples."""
    out = {}
    for c in pi.convs:
        if c.bias < 0 or c.bias not in pi.interp.constants or c.op_name not in ("CONV_2D", "DEPTHWISE_CONV_2D",
                                                                                 "FULLY_CONNECTED"):
            continue
        xs = [smp[c.data] for smp in meas.samples if c.data in smp]
        if xs:
            out[c.op_index] = np.mean([x.reshape(-1, x.shape[-1]).mean(axis=0) for x in xs], axis=0)
    return out


def _bias_corrections(pi: PlanInputs, plan: QuantPlan, means: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Bias deltas ``-sum_k (w_q*s - w)[o, k] * mean(x)[channel of k]`` for the convs of ``means``
    (:func:`_input_means`: CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED; border positions, which see
    padding, are not modelled)."""
    out = {}
    for c in pi.convs:
        if c.op_index not in means:
            continue
        mean_x = means[c.op_index]
        w = np.asarray(pi.interp.constants[c.weights], np.float64)
        qc = plan.constants[c.weights]
        axis = qc.quant.axis
        s = np.asarray(qc.quant.scale, np.float64).reshape([-1 if a == axis else 1 for a in range(w.ndim)])
        dw = qc.data.astype(np.float64) * s - w
        if c.op_name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            if c.op_name == "CONV_2D" and dw.shape[3] != mean_x.size:
                continue  # grouped convolution: not modelled
            shift = mean_shift(dw, mean_x, c.op_name == "DEPTHWISE_CONV_2D")
        else:
            if dw.shape[1] != mean_x.size:
                continue
            shift = blas.matmul(dw, mean_x)
        out[c.bias] = -shift
    return out
