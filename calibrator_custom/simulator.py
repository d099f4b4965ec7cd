"""``python -m calibrator_custom.simulator``: the vendor's ``simulator.py`` tool (see ``--help``).

Same as the ``sgs-simulator`` command; the code is in :mod:`calibrator_custom.cli.simulate`.
"""
import sys

from .cli.simulate import main

if __name__ == "__main__":
    sys.exit(main())
