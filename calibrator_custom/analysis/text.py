"""The plain-text summary of an AnalysisReport (what ``sgs-analyze`` prints and writes to summary.txt)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .report import AnalysisReport, LayerRow

#: tensors with at least this share of values clipped are listed
CLIP_NOTE_SHARE = 0.001


def fmt_db(v: float | None) -> str:
    if v is None:
        return "-"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.2f}"


def _gain(r: LayerRow) -> str:
    c = r.conv
    if c is None:
        return ""
    if c.bits == 16:
        return "16-bit"
    if c.gain_db is not None:
        return f"+{c.gain_db:.2f} dB" if c.gain_db >= 0 else f"{c.gain_db:.2f} dB"
    if c.est_nsr is not None:
        return f"est. nsr {c.est_nsr:.3g}"
    return "8-bit"


def _clip_text(r: LayerRow) -> str:
    own = f"{100 * r.quant.clipped_share:.2f}%" if r.quant is not None else "-"
    return own if r.u8_view is None else f"{own} (u8 copy {100 * r.u8_view.clipped_share:.2f}%)"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    return ["  " + "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]


def summary_text(rep: AnalysisReport, n: int = 10) -> str:
    lines = [f"Accuracy analysis of {rep.fixed_model} against {rep.float_model} on {rep.num_samples} sample(s)", ""]
    outs = rep.outputs
    if outs:
        lines.append("Outputs (fixed model end to end vs float): SQNR dB, cosine")
        lines += _table([[r.name, fmt_db(r.accumulated.sqnr_db if r.accumulated else None),
                          f"{r.accumulated.cosine:.5f}" if r.accumulated else "-"] for r in outs])
        lines.append("")
    worst = rep.worst_layers(n)
    lines.append(f"The {len(worst)} worst layers by isolated error (the op alone in fixed point, fed the float "
                 "model's inputs):")
    table = [["#", "layer", "op", "isolated dB", "accumulated dB", "clipped", "type", "16-bit gain"]]
    for k, r in enumerate(worst, 1):
        table.append([str(k), r.name, r.op, fmt_db(r.isolated.sqnr_db),
                      fmt_db(r.accumulated.sqnr_db if r.accumulated else None),
                      _clip_text(r), r.dtype, _gain(r)])
    lines += _table(table) if worst else ["  (no layer could be compared)"]
    clipped = [r for r in rep.layers if r.clipped_share >= CLIP_NOTE_SHARE]
    if clipped:
        lines += ["", "Clipping (float values outside the range the fixed tensor can hold):"]
        for r in sorted(clipped, key=lambda r: -r.clipped_share)[:n]:
            for label, q in ((r.name, r.quant), (f"{r.name}_u8 (the UINT8 copy 8-bit convs read)", r.u8_view)):
                if q is not None and q.clipped_share >= CLIP_NOTE_SHARE:
                    lines.append(f"  {label}: {100 * q.clipped_share:.2f}% clipped; range [{q.range_min:.6g}, "
                                 f"{q.range_max:.6g}], observed [{q.observed_min:.6g}, {q.observed_max:.6g}]")
        lines.append("  A range much narrower than the observed one (e.g. an imported quant_param) clips; "
                     "recalibrate or widen it.")
    lines += ["", "Fused (no counterpart in the fixed model): " + (", ".join(rep.fused) or "none")]
    lines += ["", *suggestion_lines(rep)]
    if rep.notes:
        lines += ["", "Notes:"] + [f"  {t}" for t in rep.notes]
    return "\n".join(lines) + "\n"


def suggestion_lines(rep: AnalysisReport) -> list[str]:
    s = rep.suggestion
    if rep.gain_method == "off":
        return ["16-bit gains were not computed (gain_method='off')."]
    if s is None:
        return ["No [CONV_CONFIG] suggestion: no 8-bit convolution would remove a noticeable share of the output "
                "noise at 16 bit."]
    out = ["Suggested input_config.ini line (makes these convolutions 16-bit):", "  [CONV_CONFIG]",
           f"  {s.line()}",
           f"  upgrades {', '.join(s.convs)}; {100 * s.mac_share:.1f}% of conv MACs then at 16 bit"]
    if s.predicted_db is not None:
        out.append(f"  SQNR of {s.measured_on or 'the worst model output'} on {rep.gain_samples} sample(s): "
                   f"{fmt_db(s.base_db)} -> {fmt_db(s.predicted_db)} dB (measured)")
    out.append(f"  ({s.rule})")
    return out
