"""calibrator_custom: an open re-implementation of SigmaStar's calibrator_custom module.

Public names mirror the vendor's (``float_simulator``, ``calibrator``, ``utils``, ...); see docs/
for the user guide.
"""
from __future__ import annotations

import logging

from . import utils
from .calibration import calibrator
from .errors import CalibratorError, ConfigError, InputError, ModelError, UnsupportedOpError
from .sim_calibrator import SIM_Calibrator
from .sim_simulator import SIM_Simulator
from .simulators import fixed_simulator, float_simulator

__version__ = "0.1.0"
__all__ = ["calibrator", "fixed_simulator", "float_simulator", "utils", "SIM_Calibrator", "SIM_Simulator",
           "CalibratorError", "ConfigError", "InputError", "ModelError", "UnsupportedOpError", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
