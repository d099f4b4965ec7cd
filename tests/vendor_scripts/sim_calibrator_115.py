# -*- coding: utf-8 -*-
"""A 1.1.5-style sim_calibrator.py (from the manual's SIM_Calibrator example): the default output names,
convert() returning the written paths."""
import argparse

import calibrator_custom
from calibrator_custom import utils


class Net(calibrator_custom.SIM_Calibrator):
    def __init__(self, model, input_config):
        super().__init__()
        self.model = calibrator_custom.calibrator(model, input_config)

    def forward(self, x):
        for idx, data in enumerate(x):
            self.model.set_input(idx, data)
        self.model.invoke()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('-i', '--image', required=True)
    parser.add_argument('-m', '--model', required=True)
    parser.add_argument('--input_config', required=True)
    parser.add_argument('-n', '--preprocess', required=True)
    parser.add_argument('--quant_level', default='L2')
    parser.add_argument('--num_process', type=int, default=10)
    args = parser.parse_args()
    net = Net(args.model, args.input_config)
    print(net)
    img_gen = utils.image_generator(utils.all_path(args.image), [utils.image_preprocess_func(args.preprocess)])
    out = net.convert(img_gen, num_process=args.num_process, quant_level=args.quant_level)
    print('Fixed model at: {}'.format(out[0]))


if __name__ == '__main__':
    main()
