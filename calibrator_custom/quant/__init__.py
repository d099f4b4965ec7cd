"""Quantization planning: integer types, bit widths, scales and quantized constants (``planner.build_plan``)
from statistics; what each quant level does is ``levels.Level``. The pipeline (``calibrator_custom.pipeline``)
turns plans into fixed models."""
