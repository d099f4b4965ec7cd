"""``python -m calibrator_custom.calibrator``: the calibrator command (:mod:`calibrator_custom.cli.calibrate`).

``calibrator_custom.calibrator`` is also the package's public *class*. Importing this module the
usual way (``import calibrator_custom.calibrator``) would overwrite that package attribute with the
module, so on import the module puts the class in its place in ``sys.modules``: afterwards
``calibrator_custom.calibrator`` is still the class. Run as ``__main__`` it runs the command.
"""
import sys

if __name__ == "__main__":
    from calibrator_custom.cli.calibrate import main

    sys.exit(main())
else:
    from .calibration import calibrator as _calibrator_class

    sys.modules[__name__] = _calibrator_class
