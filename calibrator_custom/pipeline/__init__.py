"""The pipeline above calibration, planning and the fixed model: statistics -> plan -> fixed model ->
measure -> re-plan (``convert``, L5 in ``l5``), and quant_param export (``export``). See
docs/architecture.md."""
from .convert import convert
from .export import export_quant_param

__all__ = ["convert", "export_quant_param"]
