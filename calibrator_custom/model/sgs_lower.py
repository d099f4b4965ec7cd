"""A SigmaStar float model in TFLite's semantics, so the float kernels run it as the vendor's simulator does.

``runnable(model)`` returns a copy (tensor names and indices unchanged) in which each vendor quirk
is rewritten into its TFLite equivalent; what each quirk computes was established by running the
vendor's float simulator on converted models (``docs/model_format.md``):

* conv / depthwise biases of shape ``[2, C]``: ``y = (conv(x, W) + bias[0]) * bias[1]``, so the
  per-channel factor ``bias[1]`` is folded into the weights and the bias (nothing changes when
  it is all 1.0, as in every converted file).
* ``SoftmaxOptions.beta == 0.0``: the vendor simulates a plain softmax, i.e. beta 1.
* RELU / RELU6 / LOGISTIC / PRELU with the vendor's options types (200-202), PAD with its
  unfollowed PadOptions: these ops take no options in TFLite, so the options are dropped.
* CONCATENATION whose inputs have another rank than its output (the converter folded a RESHAPE
  or TRANSPOSE into it): each such input is reshaped to the output's rank keeping its element
  order (the vendor's row-major reinterpretation), with an explicit RESHAPE op.
* the converter's own custom ops around an input whose first consumer is not a convolution:
  ``DmaCoefMatrix`` (in float: the input zero-padded on the channel axis to the output's width)
  becomes PAD, ``Align`` (the identity) RESHAPE, ``Slice_Alias`` (input, begin, size) SLICE.

The copy is a plain TFLite model: the vendor-only fields (``sgs_*``) and options types are not
carried over (the vendor model itself keeps them).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ModelError
from . import options as opts, schema, sgs_dialect
from .graph import Buffer, Model, Operator, OperatorCode, Tensor

FLOAT_DIALECTS = frozenset({"sgs_float", "sgs_cmodel_float"})
_CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def check_simulatable(model: Model, what: str) -> None:
    """ModelError when ``model`` is a vendor fixed model (the float simulator and calibrator run float models;
    ``fixed_simulator`` dispatches vendor fixed models to ``vendor_fixed.simulator`` before this check)."""
    if model.is_vendor and model.dialect not in FLOAT_DIALECTS:
        raise ModelError(
            f"{what} is a SigmaStar fixed model (description {model.description!r}): calibrator_custom "
            f"simulates float models (the vendor's *_float.sim or *_cmodel_float.sim, or .tflite) and the "
            f"fixed models it writes itself; run calibrator_custom.calibrator on the float model to get one")
_NO_OPTIONS_OPS = ("RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC", "PRELU", "PAD", "TANH")


def runnable(model: Model) -> Model:
    """``model`` itself when it is plain TFLite or a vendor fixed model, else a TFLite-semantics copy.

    A vendor ``*_fixed.sim`` holds the vendor's integer program, which these rewrites do not
    describe; it is returned as read (:func:`check_simulatable` names the problem for simulators).
    """
    if model.dialect not in FLOAT_DIALECTS:
        return model
    m = model.copy()
    m.dialect = sgs_dialect.TFLITE
    m.source = None
    # a vendor description over TFLite's layout reads as an unknown dialect: say what the copy is
    m.description = f"calibrator_custom, in TFLite semantics, from: {model.description}"
    g = m.main
    _drop_vendor_fields(m)
    new_ops: list[Operator] = []
    for k, op in enumerate(g.operators):
        name = m.op_name(op)
        if op.options is not None and op.options.table_name not in schema.TABLES:
            op.options = None  # the vendor's own options types: no TFLite kernel reads them
        if name in _CONV_OPS and len(op.inputs) > 2 and op.inputs[2] >= 0:
            _fold_bias_factor(m, k, name, op)
        if name == "SOFTMAX" and op.options is not None and float(op.options.beta) == 0.0:
            op.options = dataclasses.replace(op.options, beta=1.0)
        elif name in _NO_OPTIONS_OPS and op.options is not None:
            op.options = None
        if name == "CONCATENATION":
            new_ops.extend(_reshape_concat_inputs(m, k, op))
        elif name in _VENDOR_CUSTOM:
            op = _VENDOR_CUSTOM[name](m, k, op)
        new_ops.append(op)
    g.operators = new_ops
    return m


def _drop_vendor_fields(m: Model) -> None:
    """The vendor-only slots (``sgs_*`` in ``extra``) do not exist in TFLite's schema: not carried over."""
    def keep(extra: dict) -> dict:
        return {k: v for k, v in extra.items() if not k.startswith("sgs_")}

    m.extra = keep(m.extra)
    for sg in m.subgraphs:
        sg.extra = keep(sg.extra)
        for i, t in enumerate(sg.tensors):
            q = t.quantization
            if q is not None:
                q = dataclasses.replace(q, extra=keep(q.extra))
            sg.tensors[i] = dataclasses.replace(t, extra=keep(t.extra), quantization=q)
        for op in sg.operators:
            op.extra = keep(op.extra)
            if op.options is not None:  # the vendor's options slots (and their layout) back to None / 0
                op.options = dataclasses.replace(op.options, **{
                    f.name: f.default for f in dataclasses.fields(op.options) if f.name.startswith("sgs_")})


def _fold_bias_factor(m: Model, k: int, name: str, op: Operator) -> None:
    g = m.main
    bt = g.tensors[op.inputs[2]]
    if len(bt.shape) != 2 or bt.shape[0] != 2:
        return
    bias = m.tensor_data(bt)
    wt = g.tensors[op.inputs[1]]
    weights = m.tensor_data(wt)
    if bias is None or weights is None:
        raise ModelError(f"op #{k} {name}: the vendor's [2, C] bias {bt.name!r} needs constant weights and bias")
    bias = np.asarray(bias, np.float32)
    offset, factor = bias[0], bias[1]
    if not np.all(factor == 1.0):
        axis = 0 if name == "CONV_2D" else weights.ndim - 1
        shape = [1] * weights.ndim
        shape[axis] = -1
        weights = (np.asarray(weights, np.float32) * factor.reshape(shape)).astype(np.float32)
        offset = (offset * factor).astype(np.float32)
        m.set_constant(op.inputs[1], weights)
    m.set_constant(op.inputs[2], np.ascontiguousarray(offset, np.float32))


def _reshape_concat_inputs(m: Model, k: int, op: Operator) -> list[Operator]:
    """RESHAPE ops bringing every CONCATENATION input to the output's rank (element order kept)."""
    g = m.main
    out = g.tensors[op.outputs[0]]
    rank = len(out.shape)
    axis = op.options.axis if op.options is not None else 0
    axis = axis + rank if axis < 0 else axis
    added: list[Operator] = []
    inputs = list(op.inputs)
    for j, i in enumerate(inputs):
        t = g.tensors[i]
        if len(t.shape) == rank:
            continue
        count = int(np.prod(t.shape, dtype=np.int64))
        rest = [d for a, d in enumerate(out.shape) if a != axis]
        rest_count = int(np.prod(rest, dtype=np.int64)) if rest else 1
        if rest_count == 0 or count % rest_count:
            raise ModelError(f"op #{k} CONCATENATION: input {t.name!r} of shape {list(t.shape)} cannot be "
                             f"reshaped to the output's rank {rank} (output {list(out.shape)})")
        shape = list(out.shape)
        shape[axis] = count // rest_count
        shape_const = len(g.tensors)
        m.buffers.append(Buffer(np.array(shape, np.int32).tobytes()))
        g.tensors.append(Tensor(name=f"{t.name}/sgs_concat_reshape/shape", shape=(rank,), dtype="INT32",
                                buffer=len(m.buffers) - 1))
        reshaped = len(g.tensors)
        g.tensors.append(Tensor(name=f"{t.name}/sgs_concat_reshape", shape=tuple(shape), dtype=t.dtype,
                                buffer=0))
        added.append(Operator(opcode_index=_opcode(m, "RESHAPE"), inputs=(i, shape_const), outputs=(reshaped,),
                              options=opts.make_options("RESHAPE", {"new_shape": shape})))
        inputs[j] = reshaped
    op.inputs = tuple(inputs)
    return added


def _opcode(m: Model, name: str) -> int:
    for i, c in enumerate(m.operator_codes):
        if c.builtin_code == name:
            return i
    m.operator_codes.append(OperatorCode(name))
    return len(m.operator_codes) - 1


def _const(m: Model, name: str, value: np.ndarray) -> int:
    """Index of a new constant tensor holding ``value``."""
    m.buffers.append(Buffer(np.ascontiguousarray(value).tobytes()))
    m.main.tensors.append(Tensor(name=name, shape=tuple(value.shape), dtype=_DTYPE_NAMES[value.dtype.name],
                                 buffer=len(m.buffers) - 1))
    return len(m.main.tensors) - 1


_DTYPE_NAMES = {"int32": "INT32", "float32": "FLOAT32"}


def _dma_coef_matrix(m: Model, k: int, op: Operator) -> Operator:
    g = m.main
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if len(src.shape) != len(dst.shape) or src.shape[:-1] != dst.shape[:-1] or dst.shape[-1] < src.shape[-1]:
        raise ModelError(f"op #{k} DmaCoefMatrix: input {list(src.shape)} and output {list(dst.shape)} differ "
                         f"other than by channel padding")
    pads = np.zeros((len(src.shape), 2), np.int32)
    pads[-1, 1] = dst.shape[-1] - src.shape[-1]
    p = _const(m, f"{dst.name}/sgs_pads", pads)
    return Operator(opcode_index=_opcode(m, "PAD"), inputs=(op.inputs[0], p), outputs=op.outputs)


def _align(m: Model, k: int, op: Operator) -> Operator:
    g = m.main
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if int(np.prod(src.shape)) != int(np.prod(dst.shape)):
        raise ModelError(f"op #{k} Align: input {list(src.shape)} and output {list(dst.shape)} sizes differ")
    shape = np.array(dst.shape, np.int32)
    s = _const(m, f"{dst.name}/sgs_shape", shape)
    return Operator(opcode_index=_opcode(m, "RESHAPE"), inputs=(op.inputs[0], s), outputs=op.outputs,
                    options=opts.make_options("RESHAPE", {"new_shape": shape.tolist()}))


def _slice_alias(m: Model, k: int, op: Operator) -> Operator:
    if len(op.inputs) != 3:
        raise ModelError(f"op #{k} Slice_Alias: expected inputs (input, begin, size), got {len(op.inputs)}")
    return Operator(opcode_index=_opcode(m, "SLICE"), inputs=op.inputs, outputs=op.outputs)


_VENDOR_CUSTOM = {"DmaCoefMatrix": _dma_coef_matrix, "Align": _align, "Slice_Alias": _slice_alias}
