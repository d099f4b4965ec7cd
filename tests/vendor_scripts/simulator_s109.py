# -*- coding: utf-8 -*-
"""An S1.0.9-style SIM_Simulator script: float and fixed models side by side, print_model, batch_idx,
register_model_inputs/outputs, and the multi-process call on a generator."""
import argparse
import pickle

import numpy as np

import calibrator_custom
from calibrator_custom import utils


class Net(calibrator_custom.SIM_Simulator):
    def __init__(self, float_model, fixed_model):
        super().__init__()
        self.float_model = calibrator_custom.float_simulator(float_model)
        self.fixed_model = calibrator_custom.fixed_simulator(fixed_model)
        self.register_model_inputs('extra', [{'name': 'none'}])
        self.register_model_outputs('extra', [{'name': 'none'}])

    def forward(self, x_float, x_fixed):
        self.float_model.set_input(0, x_float)
        self.float_model.invoke()
        self.fixed_model.set_input(0, x_fixed, 0)
        self.fixed_model.invoke()
        outs = []
        for idx, detail in enumerate(self.fixed_model.get_output_details()):
            out = self.fixed_model.get_output(idx, 0)
            if 'quantization' in detail:
                out = out * detail['quantization'][0]
            outs.append((self.float_model.get_output(idx), out[..., :detail['shape'][-1]]))
        return outs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('-i', '--image', required=True)
    parser.add_argument('--float_model', required=True)
    parser.add_argument('--fixed_model', required=True)
    parser.add_argument('-n', '--preprocess', required=True)
    parser.add_argument('--num_process', type=int, default=1)
    args = parser.parse_args()
    net = Net(args.float_model, args.fixed_model)
    print(calibrator_custom.SIM_Simulator.print_model(net.fixed_model))
    print(net)
    pre = utils.image_preprocess_func(args.preprocess)
    images = utils.all_path(args.image)
    fixed_details = net.fixed_model.get_input_details()[0]

    def gen():
        for p in images:
            yield [pre(p, True), utils.convert_to_input_formats(pre(p, False), fixed_details)]

    results = net(gen(), num_process=args.num_process)
    worst = max(float(np.max(np.abs(f - q))) for r in results for f, q in r)
    with open('sim_results.pkl', 'wb') as f:
        pickle.dump(results, f)
    print('samples {} worst abs diff {:.6f}'.format(len(results), worst))
    try:
        net.fixed_model.get_output(0, 1)
    except ValueError as e:
        print('batch_idx 1: {}'.format(e))


if __name__ == '__main__':
    main()
