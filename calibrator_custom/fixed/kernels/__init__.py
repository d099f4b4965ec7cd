"""Importing this package registers every integer kernel (one module per op family)."""
from . import boundary, conv, elementwise, movement  # noqa: F401
from . import activation  # noqa: F401  (after movement, as before: registration order)
from . import detection  # noqa: F401
