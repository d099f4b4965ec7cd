"""Quantization planning: integer types, bit widths, scales (issue 4 builds the planner here)."""
