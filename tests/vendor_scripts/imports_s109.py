# -*- coding: utf-8 -*-
"""The S1.0.9 tools' module-level API: imports, versions, constants and helpers, one check per line."""
import sys

import calibrator_custom
from calibrator_custom import printf
from calibrator_custom import utils
from calibrator_custom import SIM_calibrator
from calibrator_custom.SIM_simulator import SIM_Simulator
from calibrator_custom.versions import VERSION
import calibrator_custom.SIM_calibrator as sim_calibrator_module

printf('version', calibrator_custom.__version__, VERSION, utils.VERSION, utils.get_sdk_version())
printf('sth', SIM_calibrator.STH, SIM_calibrator.TARGET_TYPE, sim_calibrator_module is SIM_calibrator)
printf('simulator_class', SIM_Simulator is calibrator_custom.SIM_Simulator)
printf('suffix', utils.x64_extension_suffix, utils.i386_extension_suffix)
config = utils.CompilerConfig()
printf('passes', config.Float2CmodelFloatConfig(), config.CmodelFloat2FixedConfig(), config.MixedOptimConfig())
bar = utils.ShowProcess(3)
for _ in range(3):
    bar.show_process()
try:
    utils.ShowProcess(0)
except ValueError as e:
    printf('empty', e)
try:
    calibrator_custom.offline_simulator(sys.argv[1])
except ValueError as e:
    printf('offline', e)
