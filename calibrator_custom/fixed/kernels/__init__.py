"""Importing this package registers every integer kernel (one module per op family, named as its float
module in ``ops/``)."""
from . import quantize, conv, elementwise, shape  # noqa: F401
from . import activation  # noqa: F401  (after shape, as before: registration order)
from . import detection, detection_nms  # noqa: F401
