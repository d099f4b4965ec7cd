"""Float kernels, one function per TFLite op (see ``registry``)."""
from .registry import KERNELS, OpContext, OpDef, TensorInfo, get_op, register, supported_ops

__all__ = ["KERNELS", "OpContext", "OpDef", "TensorInfo", "get_op", "register", "supported_ops"]
