"""The fixed-point side: integer helpers, integer kernels, the planner's output and the fixed simulator."""
