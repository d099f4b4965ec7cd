# -*- coding: utf-8 -*-
"""An S1.0.9-style conversion from an imported quant file only (no images): convert(quant_param=...)."""
import argparse
import json
import pickle

import calibrator_custom
from calibrator_custom import utils


class Net(calibrator_custom.SIM_Calibrator):
    def __init__(self, model, input_config):
        super().__init__()
        self.model = calibrator_custom.calibrator(model, input_config)

    def forward(self, x):
        self.model.set_input(0, x)
        self.model.invoke()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('-m', '--model', required=True)
    parser.add_argument('--input_config', required=True)
    parser.add_argument('--quant_file', required=True)
    parser.add_argument('-o', '--output', default=None)
    args = parser.parse_args()
    try:
        with open(args.quant_file, 'rb') as f:
            quant_param = pickle.load(f)
    except pickle.UnpicklingError:
        with open(args.quant_file, 'r') as f:
            quant_param = json.load(f)
    utils.check_quant_param(quant_param)
    net = Net(args.model, args.input_config)
    out_model = utils.get_out_model_name(args.model, args.output)
    result = net.convert(quant_param=quant_param, fix_model=[out_model])
    print('convert returned {}'.format(result))
    print('Fixed model at: {}'.format(out_model))


if __name__ == '__main__':
    main()
