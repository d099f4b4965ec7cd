"""``python -m calibrator_custom.analyze``: the accuracy analysis tool, :mod:`calibrator_custom.cli.analyze`."""
import sys

from .cli.analyze import main

if __name__ == "__main__":
    sys.exit(main())
