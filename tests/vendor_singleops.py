"""Single-op float models from our builder, one per op, for converting with the vendor's convert_tool.

Every model takes one RGB-like input ``x`` of shape [1, 8, 8, 3] (what the vendor's input config
describes) and has one output ``y``. ``CASES`` maps a case name to a function building the model.
Ops the vendor's tools refuse are not here; docs/model_format.md lists them with the vendor's message.
"""
from __future__ import annotations

import numpy as np

from calibrator_custom.model.builder import ModelBuilder

SHAPE = (1, 8, 8, 3)


def _rng(seed: int = 0) -> np.random.RandomState:
    return np.random.RandomState(seed)


def _f32(a) -> np.ndarray:
    return np.asarray(a, np.float32)


def _unary(op, options=None):
    def build():
        b = ModelBuilder()
        x = b.input("x", SHAPE)
        b.output(b.op(op, [x], options, name="y"))
        return b
    return build


def _binary_const(op, options=None, shape=(3,)):
    def build():
        b = ModelBuilder()
        x = b.input("x", SHAPE)
        c = b.constant("c", _f32(_rng(1).uniform(0.5, 1.5, shape)))
        b.output(b.op(op, [x, c], options, name="y"))
        return b
    return build


def _binary_self(op, options=None):
    """op(x, relu(x)): two activations (the vendor folds an op of two constants)."""
    def build():
        b = ModelBuilder()
        x = b.input("x", SHAPE)
        r = b.op("RELU", [x], name="r")
        b.output(b.op(op, [x, r], options, name="y"))
        return b
    return build


def _conv(stride=1, padding="SAME", act="NONE", dilation=1):
    def build():
        b = ModelBuilder()
        x = b.input("x", SHAPE)
        w = b.constant("w", _f32(_rng(2).randn(4, 3, 3, 3) * 0.3))
        bias = b.constant("bias", _f32(_rng(3).randn(4) * 0.1))
        b.output(b.op("CONV_2D", [x, w, bias], {"padding": padding, "stride_w": stride, "stride_h": stride,
                                              "fused_activation_function": act,
                                              "dilation_w_factor": dilation, "dilation_h_factor": dilation},
                      name="y"))
        return b
    return build


def _depthwise(stride=1, padding="SAME"):
    def build():
        b = ModelBuilder()
        x = b.input("x", SHAPE)
        w = b.constant("w", _f32(_rng(4).randn(1, 3, 3, 3) * 0.3))
        bias = b.constant("bias", _f32(_rng(5).randn(3) * 0.1))
        b.output(b.op("DEPTHWISE_CONV_2D", [x, w, bias],
                      {"padding": padding, "stride_w": stride, "stride_h": stride, "depth_multiplier": 1},
                      name="y"))
        return b
    return build


def _pool(op, padding="VALID", size=2, stride=2):
    return _unary(op, {"padding": padding, "stride_w": stride, "stride_h": stride, "filter_width": size,
                       "filter_height": size})


def _fully_connected():
    b = ModelBuilder()
    x = b.input("x", SHAPE)
    flat = b.op("RESHAPE", [x, b.constant("s", np.array([1, 192], np.int32))], {"new_shape": [1, 192]}, name="f")
    w = b.constant("w", _f32(_rng(6).randn(10, 192) * 0.1))
    bias = b.constant("bias", _f32(_rng(7).randn(10)))
    b.output(b.op("FULLY_CONNECTED", [flat, w, bias], {}, name="y"))
    return b


def _prelu():
    b = ModelBuilder()
    x = b.input("x", SHAPE)
    alpha = b.constant("alpha", _f32([[[0.1, 0.2, 0.3]]]))
    b.output(b.op("PRELU", [x, alpha], name="y"))
    return b


def _pad():
    b = ModelBuilder()
    x = b.input("x", SHAPE)
    p = b.constant("p", np.array([[0, 0], [1, 2], [2, 1], [0, 0]], np.int32))
    b.output(b.op("PAD", [x, p], name="y"))
    return b


def _concat_channels():
    b = ModelBuilder()
    x = b.input("x", SHAPE)
    r = b.op("RELU", [x], name="r")
    b.output(b.op("CONCATENATION", [x, r], {"axis": 3}, name="y"))
    return b


def _concat_reshaped():
    """RESHAPE both branches to [1, N, C'] then CONCATENATION on axis 1 (the converter folds the reshapes)."""
    b = ModelBuilder()
    x = b.input("x", SHAPE)
    c1 = b.op("CONV_2D", [x, b.constant("w1", _f32(_rng(8).randn(2, 1, 1, 3))), b.constant("b1", _f32([0.1, 0.2]))],
              {"padding": "SAME", "stride_w": 1, "stride_h": 1}, name="c1")
    c2 = b.op("CONV_2D", [x, b.constant("w2", _f32(_rng(9).randn(4, 1, 1, 3))),
                          b.constant("b2", _f32([0.1, 0.2, 0.3, 0.4]))],
              {"padding": "SAME", "stride_w": 2, "stride_h": 2}, name="c2")
    r1 = b.op("RESHAPE", [c1, b.constant("s1", np.array([1, 128, 1], np.int32))], {"new_shape": [1, 128, 1]},
              name="r1")
    r2 = b.op("RESHAPE", [c2, b.constant("s2", np.array([1, 64, 1], np.int32))], {"new_shape": [1, 64, 1]},
              name="r2")
    b.output(b.op("CONCATENATION", [r1, r2], {"axis": 1}, name="y"))
    return b


def _concat_transposed():
    """TRANSPOSE (NHWC -> NCHW) then RESHAPE to [1, N] before a CONCATENATION."""
    b = ModelBuilder()
    x = b.input("x", SHAPE)
    r = b.op("RELU", [x], name="r")
    perm = b.constant("perm", np.array([0, 3, 1, 2], np.int32))
    t1 = b.op("TRANSPOSE", [x, perm], name="t1")
    t2 = b.op("TRANSPOSE", [r, perm], name="t2")
    f1 = b.op("RESHAPE", [t1, b.constant("s1", np.array([1, 192], np.int32))], {"new_shape": [1, 192]}, name="f1")
    f2 = b.op("RESHAPE", [t2, b.constant("s2", np.array([1, 192], np.int32))], {"new_shape": [1, 192]}, name="f2")
    b.output(b.op("CONCATENATION", [f1, f2], {"axis": 1}, name="y"))
    return b


def _mean():
    b = ModelBuilder()
    x = b.input("x", SHAPE)
    b.output(b.op("MEAN", [x, b.constant("axes", np.array([1, 2], np.int32))], {"keep_dims": True}, name="y"))
    return b


def _reshape():
    b = ModelBuilder()
    x = b.input("x", SHAPE)
    r = b.op("RELU", [x], name="r")
    b.output(b.op("RESHAPE", [r, b.constant("s", np.array([1, 16, 12], np.int32))], {"new_shape": [1, 16, 12]},
                  name="y"))
    return b


def _transpose():
    b = ModelBuilder()
    x = b.input("x", SHAPE)
    r = b.op("RELU", [x], name="r")
    b.output(b.op("TRANSPOSE", [r, b.constant("perm", np.array([0, 2, 1, 3], np.int32))], name="y"))
    return b


def _resize(op, **opt):
    def build():
        b = ModelBuilder()
        x = b.input("x", SHAPE)
        b.output(b.op(op, [x, b.constant("size", np.array([16, 16], np.int32))], opt, name="y"))
        return b
    return build


def _strided_slice():
    b = ModelBuilder()
    x = b.input("x", SHAPE)
    c = lambda n, v: b.constant(n, np.array(v, np.int32))  # noqa: E731
    b.output(b.op("STRIDED_SLICE", [x, c("begin", [0, 1, 0, 0]), c("end", [1, 7, 8, 2]), c("strides", [1, 2, 1, 1])],
                  {}, name="y"))
    return b


def _softmax(beta=1.0):
    def build():
        b = ModelBuilder()
        x = b.input("x", SHAPE)
        b.output(b.op("SOFTMAX", [x], {"beta": beta}, name="y"))
        return b
    return build


CASES = {
    "conv_same": _conv(),
    "conv_valid_stride2": _conv(2, "VALID"),
    "conv_relu6_fused": _conv(act="RELU6"),
    "conv_dilated": _conv(dilation=2),
    "depthwise_same": _depthwise(),
    "depthwise_stride2": _depthwise(2),
    "fully_connected": _fully_connected,
    "max_pool": _pool("MAX_POOL_2D"),
    "max_pool_same3": _pool("MAX_POOL_2D", "SAME", 3, 1),
    "average_pool": _pool("AVERAGE_POOL_2D"),
    "relu": _unary("RELU"),
    "relu6": _unary("RELU6"),
    "logistic": _unary("LOGISTIC"),
    "tanh": _unary("TANH"),
    "softmax": _softmax(),
    "softmax_beta_0": _softmax(0.0),
    "prelu": _prelu,
    "leaky_relu": _unary("LEAKY_RELU", {"alpha": 0.2}),
    "exp": _unary("EXP"),
    "abs": _unary("ABS"),
    "neg": _unary("NEG"),
    "add_const": _binary_const("ADD"),
    "mul_const": _binary_const("MUL"),
    "sub_scalar_const": _binary_const("SUB", shape=(1,)),
    "sub_full_const": _binary_const("SUB", shape=(8, 8, 3)),
    "add": _binary_self("ADD"),
    "mul": _binary_self("MUL"),
    "sub": _binary_self("SUB"),
    "maximum": _binary_self("MAXIMUM"),
    "minimum": _binary_self("MINIMUM"),
    "pad": _pad,
    "concat_channels": _concat_channels,
    "concat_reshaped": _concat_reshaped,
    "concat_transposed": _concat_transposed,
    "mean": _mean,
    "reshape": _reshape,
    "transpose": _transpose,
    "resize_bilinear": _resize("RESIZE_BILINEAR"),
    "resize_bilinear_half_pixel": _resize("RESIZE_BILINEAR", half_pixel_centers=True),
    "strided_slice": _strided_slice,
}
