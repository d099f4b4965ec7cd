"""The fixed-model writer: a float model and a QuantPlan -> a fixed.sim (TFLite schema, identifier TFL3).

What the fixed model holds (docs/fixed_point.md, "The fixed.sim file"):

* every runtime tensor of the (constant-folded) float model under its own name, with the plan's
  integer type and ``QuantizationParameters`` (scale, zero_point, min, max, quantized_dimension);
* quantized constants (conv weights INT8/INT16 per channel, biases INT32/INT64, other float
  constants INT16) in their buffers;
* the float model's ops in order, with their options, plus the ops our semantics need:
  an ``InputNormalize`` custom op after every image input (raw UINT8 pixels -> the normalized
  tensor, named ``<input>_normalized``), a ``QUANTIZE`` after a RAWDATA_F32 input, a ``QUANTIZE``
  making the UINT8 copy (``<tensor>_u8``) of an INT16 tensor that 8-bit convolutions read, and a
  ``Fix2Float`` custom op for every output with ``dequantizations=TRUE`` (the INT16 tensor is
  renamed ``<output>_int16``; the float32 output keeps the name);
* the outputs of the detection post-processes (``TFLite_Detection_PostProcess``,
  ``TFLite_Detection_NMS``), which run in float, as float32 tensors without quantization (never
  behind a ``Fix2Float``); their float constant inputs (anchors, a class tensor) stay float32;
* metadata ``calibrator_custom_fixed`` (layout and reader in ``fixed/metadata.py``): JSON with the
  format version and every input's formats, mean/std, layout and alignment (not the quant level:
  a model re-made from its exported quant_param is the same model, byte for byte).

Writing is atomic (temp file + rename) and deterministic: the same plan gives the same bytes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from flatbuffers import flexbuffers

from ..config import IMAGE_FORMATS
from ..model import schema
from ..model.graph import Buffer, Model, Operator, OperatorCode, Quantization, Subgraph, Tensor
from ..plan import PlanInputs, QuantPlan, TensorQuant, quant_rule
from ..rounding import round_half_up_int
from .metadata import FORMAT_NAME, FORMAT_VERSION, METADATA_NAME, read_fixed_metadata  # noqa: F401 - re-exported


def _quantization(tq: TensorQuant) -> Quantization | None:
    if not tq.scale:
        return None
    return Quantization(scale=tuple(float(s) for s in tq.scale), zero_point=tuple(int(z) for z in tq.zero_point),
                        min=tuple(float(v) for v in tq.min) or None, max=tuple(float(v) for v in tq.max) or None,
                        quantized_dimension=int(tq.axis))


@dataclass
class _Out:
    tensors: list[Tensor] = field(default_factory=list)
    buffers: list[Buffer] = field(default_factory=lambda: [Buffer()])
    codes: list[OperatorCode] = field(default_factory=list)
    ops: list[Operator] = field(default_factory=list)

    def tensor(self, name, shape, dtype, quant: Quantization | None, data: np.ndarray | None = None) -> int:
        buf = 0
        if data is not None:
            self.buffers.append(Buffer(np.ascontiguousarray(data).tobytes()))
            buf = len(self.buffers) - 1
        self.tensors.append(Tensor(name, tuple(int(d) for d in shape), dtype, buf, quant))
        return len(self.tensors) - 1

    def opcode(self, name: str, like: OperatorCode | None = None) -> int:
        builtin = name if name in schema.ENUMS["BuiltinOperator"] else "CUSTOM"
        custom = None if builtin != "CUSTOM" else name
        for k, c in enumerate(self.codes):
            if c.builtin_code == builtin and c.custom_code == custom:
                return k
        if like is not None:
            self.codes.append(OperatorCode(like.builtin_code, like.custom_code, like.version,
                                           like.deprecated_builtin_code))
        else:
            self.codes.append(OperatorCode(builtin, custom, 1, min(schema.ENUMS["BuiltinOperator"][builtin], 127)))
        return len(self.codes) - 1

    def op(self, name: str, inputs, outputs, options=None, custom: dict | None = None,
           like: OperatorCode | None = None, extra: dict | None = None) -> None:
        raw = flexbuffers.Dumps(custom) if custom is not None else None
        self.ops.append(Operator(self.opcode(name, like), tuple(inputs), tuple(outputs), options, raw,
                                 dict(extra or {})))


def build_fixed_model(pi: PlanInputs, plan: QuantPlan) -> Model:
    """The fixed Model for ``plan`` (see the module docstring)."""
    from .kernels.quantize import fixed_input_shape, input_normalize_options

    g = pi.graph
    out = _Out()
    index: dict[int, int] = {}  # float tensor -> fixed tensor
    # ops that run in float (the detection post-processes): their outputs stay float32, whatever the plan says
    float_outs = {o for s in pi.interp.steps if quant_rule(s.op_name).float_outputs for o in s.outputs}

    def runtime(i: int, name: str | None = None) -> int:
        t = g.tensors[i]
        if i in plan.tensors and i not in float_outs:
            tq = plan.tensors[i]
            return out.tensor(name or t.name, t.shape, tq.qtype, _quantization(tq))
        return out.tensor(name or t.name, t.shape, t.dtype, None)

    # inputs (and the ops that bring them into the integer domain)
    fixed_inputs = []
    for i in g.inputs:
        t = g.tensors[i]
        spec = plan.input_specs.get(i)
        if spec is not None and spec.input_format in IMAGE_FORMATS:
            mean = np.asarray(spec.channel_mean(), np.float64)
            std = np.asarray(spec.channel_std(), np.float64)
            raw_q = Quantization(scale=tuple(float(np.float32(1 / s)) for s in std),
                                 zero_point=tuple(round_half_up_int(m) for m in mean),
                                 min=tuple(float(np.float32(-m / s)) for m, s in zip(mean, std)),
                                 max=tuple(float(np.float32((255 - m) / s)) for m, s in zip(mean, std)),
                                 quantized_dimension=len(t.shape) - 1)
            raw = out.tensor(t.name, fixed_input_shape(t.shape, spec), "UINT8", raw_q)
            index[i] = runtime(i, f"{t.name}_normalized")
            out.op("InputNormalize", [raw], [index[i]], custom=input_normalize_options(spec))
            fixed_inputs.append(raw)
        elif i in plan.tensors and (spec is None or spec.input_format == "RAWDATA_F32_NHWC"):
            raw = out.tensor(t.name, t.shape, "FLOAT32", None)
            index[i] = runtime(i, f"{t.name}_quantized")
            out.op("QUANTIZE", [raw], [index[i]])
            fixed_inputs.append(raw)
        else:  # RAWDATA_S16 (INT16 with its scale) and non-float inputs
            index[i] = runtime(i)
            fixed_inputs.append(index[i])

    for i, qc in plan.constants.items():
        t = g.tensors[i]
        index[i] = out.tensor(t.name, qc.data.shape, qc.quant.qtype, _quantization(qc.quant), qc.data)

    dequantized = {i for i in g.outputs
                   if plan.dequantize_outputs.get(i) and i in plan.tensors and i not in float_outs}
    u8_index: dict[int, int] = {}
    conv_data = {c.op_index: c for c in pi.convs}
    for s in pi.interp.steps:
        fop = g.operators[s.op_index]
        code = pi.model.operator_codes[fop.opcode_index]
        for o in s.outputs:
            if o not in index:
                index[o] = runtime(o, f"{g.tensors[o].name}_int16" if o in dequantized else None)
        ins = [-1 if i < 0 else index[i] for i in s.inputs]
        c = conv_data.get(s.op_index)
        if c is not None and c.data in plan.u8_views and plan.conv_bits[c.op_index] == 8:
            if c.data not in u8_index:
                tq = plan.u8_views[c.data]
                t = g.tensors[c.data]
                u8_index[c.data] = out.tensor(f"{t.name}_u8", t.shape, "UINT8", _quantization(tq))
                out.op("QUANTIZE", [index[c.data]], [u8_index[c.data]])
            pos = list(s.inputs).index(c.data)
            ins[pos] = u8_index[c.data]
        out.op(code.name, ins, [index[o] for o in s.outputs], fop.options,
               None, code, fop.extra)
        if fop.custom_options is not None:
            out.ops[-1].custom_options = bytes(fop.custom_options)

    fixed_outputs = []
    for i in g.outputs:
        if i in dequantized:
            t = g.tensors[i]
            f = out.tensor(t.name, t.shape, "FLOAT32", None)
            out.op("Fix2Float", [index[i]], [f])
            fixed_outputs.append(f)
        else:
            fixed_outputs.append(index[i])

    meta = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION,
        "inputs": [_input_meta(g.tensors[i].name, plan.input_specs.get(i)) for i in g.inputs],
        "outputs": [{"name": g.tensors[i].name, "dequantizations": i in dequantized} for i in g.outputs],
    }
    out.buffers.append(Buffer(json.dumps(meta, sort_keys=True).encode()))
    sg = Subgraph(out.tensors, tuple(fixed_inputs), tuple(fixed_outputs), out.ops, g.name)
    model = Model([sg], out.buffers, out.codes, version=3, description="calibrator_custom fixed model",
                  metadata=[(METADATA_NAME, len(out.buffers) - 1)])
    model.validate()
    read_fixed_metadata(model)  # what a fixed simulator will check when it loads the file
    return model


def _input_meta(name: str, spec) -> dict:
    if spec is None:
        return {"name": name, "input_formats": "RAWDATA_F32_NHWC", "training_input_formats": "RAWDATA_F32_NHWC"}
    return {"name": name, "input_formats": spec.input_format, "training_input_formats": spec.training_input_format,
            "quantizations": spec.quantization, "mean": list(spec.mean), "std": list(spec.std),
            "layouts": spec.layout, "input_width_alignment": spec.width_alignment,
            "input_height_alignment": spec.height_alignment}
