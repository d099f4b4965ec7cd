# -*- coding: utf-8 -*-
"""An S1.0.9-style calibrator tool (written from the SDK manual's description of calibrator.py):
float model + images -> fixed model through SIM_Calibrator, -sth and -p set through the SIM_calibrator module."""
import argparse
import os
import pickle
import json

import calibrator_custom
from calibrator_custom import printf
from calibrator_custom import utils
from calibrator_custom import SIM_calibrator


class Net(calibrator_custom.SIM_Calibrator):
    def __init__(self, model_path, input_config):
        super().__init__()
        self.model = calibrator_custom.calibrator(model_path, input_config)

    def forward(self, x):
        out_details = self.model.get_output_details()
        for idx, data in enumerate(x):
            self.model.set_input(idx, data)
        self.model.invoke()
        result_list = []
        for idx in range(len(out_details)):
            result_list.append(self.model.get_output(idx))
        return result_list


def arg_parse():
    parser = argparse.ArgumentParser(description='Calibrator Tool')
    parser.add_argument('-i', '--image', type=str, required=True)
    parser.add_argument('-m', '--model', type=str, required=True)
    parser.add_argument('--input_config', type=str, required=True)
    parser.add_argument('-n', '--preprocess', type=str, required=True)
    parser.add_argument('-c', '--category', type=str, default='Unknown')
    parser.add_argument('--quant_level', type=str, default='L5', choices=['L1', 'L2', 'L3', 'L4', 'L5'])
    parser.add_argument('-sth', '--sensitivity_threshold', type=float, default=0.002)
    parser.add_argument('--quant_file', type=str, default=None)
    parser.add_argument('--show_log', default=False, action='store_true')
    parser.add_argument('--save_quant_info', default=False, action='store_true')
    parser.add_argument('--num_process', default=10, type=int)
    parser.add_argument('-o', '--output', default=None, type=str)
    parser.add_argument('--work_mode', type=str, default=None)
    parser.add_argument('-p', '--phase', type=str, default='Fixed', choices=['Fixed', 'Fixed_without_ipu_ctrl'])
    return parser.parse_args()


def main():
    args = arg_parse()
    if utils.get_sdk_version() in ['1', 'Q_0']:
        raise SystemExit('this script is for the S-series SDK, got VERSION {}'.format(utils.VERSION))
    SIM_calibrator.STH = args.sensitivity_threshold
    SIM_calibrator.TARGET_TYPE = args.phase
    if os.path.isdir(args.image):
        image_list = utils.all_path(args.image)
    else:
        image_list = [args.image]
    preprocess_funcs = [utils.image_preprocess_func(n) for n in args.preprocess.split(',')]
    quant_param = None
    if args.quant_file is not None:
        try:
            with open(args.quant_file, 'rb') as f:
                quant_param = pickle.load(f)
        except pickle.UnpicklingError:
            with open(args.quant_file, 'r') as f:
                quant_param = json.load(f)
    net = Net(args.model, args.input_config)
    printf(net)
    out_model = utils.get_out_model_name(args.model, args.output)
    img_gen = utils.image_generator(image_list, preprocess_funcs)
    net.convert(img_gen, num_process=args.num_process, quant_level=args.quant_level, quant_param=quant_param,
                fix_model=[out_model])
    printf('Fixed model at: {}'.format(out_model))


if __name__ == '__main__':
    main()
