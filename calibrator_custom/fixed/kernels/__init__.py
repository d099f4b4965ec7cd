"""Importing this package registers every integer kernel (one module per op family, named as its float
module in ``ops/``; ``_common.py`` holds shared prepare helpers)."""
from . import activation, conv, detection, detection_nms, elementwise, quantize, shape  # noqa: F401
