"""Imports every float kernel module so that their ``@register`` decorators run."""
from . import activation, conv, detection, elementwise, pool, quantize, reduce, resize, shape  # noqa: F401
from . import detection_nms  # noqa: F401
