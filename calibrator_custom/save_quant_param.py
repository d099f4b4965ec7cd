"""``python -m calibrator_custom.save_quant_param``: :mod:`calibrator_custom.cli.save_quant_param`."""
import sys

from calibrator_custom.cli.save_quant_param import main

if __name__ == "__main__":
    sys.exit(main())
