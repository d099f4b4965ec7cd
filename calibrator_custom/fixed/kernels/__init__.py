"""Importing this package registers every integer kernel (one module per op family)."""
from . import boundary, conv, elementwise, movement, nonlinear  # noqa: F401
from . import detection  # noqa: F401
