"""Command-line tools: ``sgs-calibrator``, ``sgs-simulator``, ``sgs-save-quant-param``, ``sgs-analyze``.

Each tool is a module here with ``main(argv=None) -> int``; ``python -m calibrator_custom.<tool>``
runs the same function. Exit codes (every tool): 0 success, 1 a user error (missing file, bad
model, bad ini, bad list line...; one line on stderr naming the thing and the fix), 2 a usage error
(argparse: missing or unknown flag), 130 interrupted.
"""
