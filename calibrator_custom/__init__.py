"""calibrator_custom: an open re-implementation of SigmaStar's calibrator_custom module.

Public names mirror the vendor's (``float_simulator``, ``calibrator``, ``utils``, ...); see docs/
for the user guide.
"""
from __future__ import annotations

from . import _blas_kernel  # noqa: F401  (first: it pins OpenBLAS's kernel before numpy loads it)

import logging  # noqa: E402
import sys  # noqa: E402

from . import sim_calibrator, sim_simulator, utils, versions
from .calibration import calibrator
from .errors import CalibratorError, ConfigError, InputError, ModelError, UnsupportedOpError
from .printing import printf
from .sim_calibrator import SIM_Calibrator
from .sim_simulator import SIM_Simulator
from .simulators import fixed_simulator, float_simulator, offline_simulator

#: the SDK's module names for the SIM_* modules (``from calibrator_custom import SIM_calibrator``,
#: ``calibrator_custom.SIM_calibrator.STH = ...``): the same module objects as sim_calibrator / sim_simulator
SIM_calibrator = sim_calibrator
SIM_simulator = sim_simulator
sys.modules[f"{__name__}.SIM_calibrator"] = sim_calibrator
sys.modules[f"{__name__}.SIM_simulator"] = sim_simulator

#: the SDK's form: '<SDK generation>_calibrator_custom_<package version>' (see calibrator_custom.versions)
__version__ = versions.VERSION
__all__ = ["calibrator", "fixed_simulator", "float_simulator", "offline_simulator", "printf", "utils", "versions",
           "SIM_Calibrator", "SIM_Simulator", "SIM_calibrator", "SIM_simulator",
           "CalibratorError", "ConfigError", "InputError", "ModelError", "UnsupportedOpError", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
