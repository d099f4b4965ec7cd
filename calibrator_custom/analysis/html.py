"""The HTML form of an AnalysisReport: one self-contained page (inline CSS, JS and SVG, no external resource).

* a header with the outputs' SQNR and the ``[CONV_CONFIG]`` suggestion;
* an inline SVG chart of SQNR along the graph (layer position on x): accumulated (the fixed model run
  end to end) and isolated (each op alone), with a tooltip per point;
* a table of every layer, sortable by any column (click its header; click again to reverse).

The page needs no network: no ``src``/``href`` points outside it (the favicon is an empty data URL).
The script marks the report's root element ``data-ready="1"`` once the table is wired, which the
browser test reads back.
"""
from __future__ import annotations

import hashlib
import math
from html import escape
from typing import TYPE_CHECKING

from .text import fmt_db, suggestion_lines

if TYPE_CHECKING:
    from .report import AnalysisReport, LayerRow

CHART_W, CHART_H = 1300, 330
PAD_L, PAD_R, PAD_T, PAD_B = 56, 16, 16, 40
ACC_COLOR, ISO_COLOR = "#1f6fb4", "#e0731c"

CSS = """
.ccr{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:13px;color:#1d2430}
.ccr h1{font-size:20px;margin:8px 0}.ccr h2{font-size:16px;margin:16px 0 6px}
.ccr .meta{color:#555}.ccr pre{background:#f3f5f8;padding:8px 10px;border-radius:4px;overflow:auto}
.ccr table{border-collapse:collapse;width:100%}
.ccr th,.ccr td{border-bottom:1px solid #e3e6ea;padding:3px 6px;text-align:right;white-space:nowrap}
.ccr th{position:sticky;top:0;background:#eef1f5;cursor:pointer;user-select:none}
.ccr th.sorted-asc::after{content:" \\25B2"}.ccr th.sorted-desc::after{content:" \\25BC"}
.ccr td.l,.ccr th.l{text-align:left}.ccr tr.fused td{color:#999;font-style:italic}
.ccr tr.worst td:nth-child(2){font-weight:600}
.ccr .legend span{display:inline-block;margin-right:18px}.ccr .sw{display:inline-block;width:18px;height:3px;
vertical-align:middle;margin-right:5px}
.ccr .tablewrap{max-height:640px;overflow:auto;border:1px solid #e3e6ea}
.ccr svg.chart{display:block;max-width:1300px}
"""

JS = """
(function(){
  var root=document.getElementById('%(rid)s'); if(!root) return;
  var table=root.querySelector('table.layers'); var body=table.tBodies[0];
  var heads=table.tHead.rows[0].cells;
  function key(td){var v=td.getAttribute('data-v'); if(v===null) v=td.textContent;
    var n=parseFloat(v); return isNaN(n)?{s:v.toLowerCase()}:{n:n};}
  function cmp(a,b){if(a.n!==undefined&&b.n!==undefined) return a.n-b.n;
    if(a.n!==undefined) return -1; if(b.n!==undefined) return 1; return a.s<b.s?-1:(a.s>b.s?1:0);}
  Array.prototype.forEach.call(heads,function(th,col){
    th.addEventListener('click',function(){
      var asc=!th.classList.contains('sorted-asc');
      Array.prototype.forEach.call(heads,function(h){h.classList.remove('sorted-asc','sorted-desc');});
      th.classList.add(asc?'sorted-asc':'sorted-desc');
      var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(r1,r2){var c=cmp(key(r1.cells[col]),key(r2.cells[col])); return asc?c:-c;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  root.setAttribute('data-ready','1');
})();
"""


def _num(v: float | None) -> str:
    """A data-v sort key: numbers as repr, infinities as +-1e308, absent as empty (sorts last)."""
    if v is None:
        return ""
    if math.isinf(v):
        return "1e308" if v > 0 else "-1e308"
    return repr(float(v))


def _g(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "-"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits}g}"


def _cell(text: str, v: float | None = None, cls: str = "", title: str = "") -> str:
    attrs = f' data-v="{escape(_num(v))}"' if v is not None or cls != "l" else ""
    if cls:
        attrs += f' class="{cls}"'
    if title:
        attrs += f' title="{escape(title)}"'
    return f"<td{attrs}>{escape(text)}</td>"


def _db_style(v: float | None) -> str:
    """A background from red (<= 10 dB) to green (>= 50 dB)."""
    if v is None:
        return ""
    x = 1.0 if v == math.inf else max(0.0, min(1.0, (v - 10) / 40)) if math.isfinite(v) else 0.0
    return f"background:hsl({int(120 * x)},70%,88%)"


def _row_html(r: LayerRow, worst: set[str]) -> str:
    a, i, q, u, c = r.accumulated, r.isolated, r.quant, r.u8_view, r.conv
    cls = "fused" if r.status == "fused" else ("worst" if r.name in worst else "")
    cells = [
        _cell(str(r.position), r.position),
        _cell(r.name, cls="l", title=r.name),
        _cell(r.op, cls="l"),
        _cell(r.status, cls="l"),
        _cell(r.dtype, cls="l"),
        _cell("x".join(str(d) for d in r.shape), float(math.prod(r.shape)) if r.shape else 0.0),
        f'<td data-v="{_num(a.sqnr_db) if a else ""}" style="{_db_style(a.sqnr_db if a else None)}">'
        f'{escape(fmt_db(a.sqnr_db if a else None))}</td>',
        f'<td data-v="{_num(i.sqnr_db) if i else ""}" style="{_db_style(i.sqnr_db if i else None)}">'
        f'{escape(fmt_db(i.sqnr_db if i else None))}</td>',
        _cell(f"{a.cosine:.5f}" if a else "-", a.cosine if a else None),
        _cell(_g(a.mse) if a else "-", a.mse if a else None),
        _cell(_g(a.max_abs) if a else "-", a.max_abs if a else None),
        _cell(f"{100 * a.rel_max_abs:.3g}%" if a and math.isfinite(a.rel_max_abs) else _g(a.rel_max_abs if a else None),
              a.rel_max_abs if a else None),
        _cell(_g(q.scale) if q else "-", q.scale if q else None),
        _cell(f"[{_g(q.range_min)}, {_g(q.range_max)}]" if q else "-", q.range_max - q.range_min if q else None),
        _cell(f"[{_g(a.float_min)}, {_g(a.float_max)}]" if a else "-", a.float_max - a.float_min if a else None),
        _cell(f"{100 * q.clipped_share:.2f}%" if q else "-", q.clipped_share if q else None),
        _cell(f"{100 * u.clipped_share:.2f}% [{_g(u.range_min)}, {_g(u.range_max)}]" if u else "-",
              u.clipped_share if u else None),
        _cell(str(c.bits) if c else "", c.bits if c else None),
        _cell(f"{c.macs:,}" if c else "", c.macs if c else None),
        _cell(_gain_text(c), _gain_key(c)),
    ]
    return f'<tr class="{cls}">' + "".join(cells) + "</tr>"


def _gain_text(c) -> str:
    if c is None:
        return ""
    if c.bits == 16:
        return "16-bit"
    if c.gain_db is not None:
        return f"{c.gain_db:+.2f} dB ({100 * (c.noise_drop or 0):.1f}%)"
    if c.est_nsr is not None:
        return f"est. nsr {c.est_nsr:.3g}"
    return ""


def _gain_key(c) -> float | None:
    if c is None or c.bits == 16:
        return None
    return c.gain_db if c.gain_db is not None else c.est_nsr


HEADERS = [("#", ""), ("layer", "l"), ("op", "l"), ("status", "l"), ("type", "l"), ("shape", ""),
           ("accumulated SQNR dB", ""), ("isolated SQNR dB", ""), ("cosine", ""), ("MSE", ""), ("max |err|", ""),
           ("max |err| / range", ""), ("scale", ""), ("range used", ""), ("observed range", ""), ("clipped", ""),
           ("UINT8 copy: clipped, range", ""), ("conv bits", ""), ("MACs", ""), ("16-bit gain", "")]
TITLES = {
    "accumulated SQNR dB": "the fixed model run end to end vs the float model",
    "isolated SQNR dB": "the op alone in fixed point, fed the float model's inputs quantized, vs float",
    "16-bit gain": "worst-output SQNR gained if this conv alone were 16-bit (share of the output noise removed)",
    "clipped": "share of float values outside the range the fixed tensor holds",
}


def chart_svg(rep: AnalysisReport) -> str:
    """Inline SVG: accumulated and isolated SQNR (dB) against the layer position."""
    pts = [(r.position, r.accumulated.sqnr_db if r.accumulated else None,
            r.isolated.sqnr_db if r.isolated else None, r) for r in rep.layers]
    finite = [v for _, a, i, _ in pts for v in (a, i) if v is not None and math.isfinite(v)]
    lo = min(finite, default=0.0)
    hi = max(finite, default=60.0)
    lo, hi = math.floor(min(lo, 0.0) / 10) * 10, math.ceil((hi + 5) / 10) * 10
    n = max(len(pts) - 1, 1)
    w, h = CHART_W - PAD_L - PAD_R, CHART_H - PAD_T - PAD_B

    def x(p: int) -> float:
        return PAD_L + w * p / n

    def y(v: float) -> float:
        v = hi if v == math.inf else lo if v == -math.inf else v
        return PAD_T + h * (hi - v) / (hi - lo)

    out = [f'<svg class="chart" viewBox="0 0 {CHART_W} {CHART_H}" width="100%" role="img" '
           f'xmlns="http://www.w3.org/2000/svg" aria-label="SQNR along the graph">',
           f'<rect x="{PAD_L}" y="{PAD_T}" width="{w}" height="{h}" fill="#fafbfc" stroke="#ccd"/>']
    step = 10 if hi - lo <= 120 else 20
    for v in range(int(lo), int(hi) + 1, step):
        out.append(f'<line x1="{PAD_L}" x2="{PAD_L + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e4e7eb"/>'
                   f'<text x="{PAD_L - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v}</text>')
    tick = max(1, round(n / 20))
    for p in range(0, n + 1, tick):
        out.append(f'<text x="{x(p):.1f}" y="{PAD_T + h + 15}" text-anchor="middle" font-size="11">{p}</text>')
    out.append(f'<text x="{PAD_L + w / 2}" y="{CHART_H - 4}" text-anchor="middle" font-size="12">layer position '
               'in the graph (table column #)</text>'
               f'<text x="14" y="{PAD_T + h / 2}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 14 {PAD_T + h / 2})">SQNR (dB)</text>')
    for idx, color, label in ((1, ACC_COLOR, "accumulated"), (2, ISO_COLOR, "isolated")):
        seq = [(p[0], p[idx]) for p in pts if p[idx] is not None]
        if seq:
            line = " ".join(f"{x(p):.1f},{y(v):.1f}" for p, v in seq)
            out.append(f'<polyline class="{label}" fill="none" stroke="{color}" stroke-width="1.6" points="{line}"/>')
        for p, v in seq:
            r = pts[p][3]
            out.append(f'<circle cx="{x(p):.1f}" cy="{y(v):.1f}" r="2.6" fill="{color}"><title>'
                       f'{escape(f"#{p} {r.name} ({r.op}): {label} {fmt_db(v)} dB")}</title></circle>')
    out.append("</svg>")
    return "".join(out)


def report_html(rep: AnalysisReport, full_page: bool = True) -> str:
    """The report as HTML: a whole page, or (``full_page=False``) a fragment for Jupyter."""
    rid = "ccr" + hashlib.sha1(rep.to_json().encode()).hexdigest()[:10]
    worst = {r.name for r in rep.worst_layers(10)}
    heads = "".join(f'<th class="{c}" title="{escape(TITLES.get(t, ""))}">{escape(t)}</th>' for t, c in HEADERS)
    rows = "\n".join(_row_html(r, worst) for r in rep.layers)
    outs = "".join(f"<li>{escape(r.name)}: {escape(fmt_db(r.accumulated.sqnr_db if r.accumulated else None))} dB, "
                   f"cosine {r.accumulated.cosine:.5f}</li>" if r.accumulated else f"<li>{escape(r.name)}: -</li>"
                   for r in rep.outputs)
    worst_txt = ", ".join(escape(r.name) for r in rep.worst_layers(10))
    notes = "".join(f"<li>{escape(t)}</li>" for t in rep.notes)
    body = f"""<div class="ccr" id="{rid}">
<h1>Accuracy analysis</h1>
<p class="meta">fixed <b>{escape(rep.fixed_model)}</b> against float <b>{escape(rep.float_model)}</b>,
{rep.num_samples} sample(s); 16-bit gains: {escape(rep.gain_method)}
{f"on {rep.gain_samples} sample(s)" if rep.gain_samples else ""}.</p>
<h2>Outputs (end to end)</h2><ul>{outs}</ul>
<h2>Suggestion</h2><pre>{escape(chr(10).join(suggestion_lines(rep)))}</pre>
<p>Worst layers by isolated error: {worst_txt or "-"}.{" Fused (no counterpart): " + escape(", ".join(rep.fused))
                                                      if rep.fused else ""}</p>
<h2>SQNR along the graph</h2>
<div class="legend"><span><i class="sw" style="background:{ACC_COLOR}"></i>accumulated (fixed model end to
end)</span><span><i class="sw" style="background:{ISO_COLOR}"></i>isolated (the op alone)</span>
<span>infinite SQNR (exact) is drawn at the top</span></div>
{chart_svg(rep)}
<h2>Layers</h2><p class="meta">Click a column header to sort.</p>
<div class="tablewrap"><table class="layers"><thead><tr>{heads}</tr></thead><tbody>
{rows}
</tbody></table></div>
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
<script>{JS % {"rid": rid}}</script>
</div>"""
    if not full_page:
        return f"<style>{CSS}</style>{body}"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<link rel="icon" href="data:,"><title>Accuracy analysis: {escape(rep.fixed_model)}</title>'
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")
