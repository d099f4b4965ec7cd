# -*- coding: utf-8 -*-
"""An S1.0.9-style save_quant_param.py (from the manual): a fixed model's tensor details -> quant file."""
import argparse
import json
import pickle

import calibrator_custom


def arg_parse():
    parser = argparse.ArgumentParser(description='Save quant param')
    parser.add_argument('-m', '--model', type=str, required=True)
    parser.add_argument('--output_mode', type=str, default='JSON', choices=['JSON', 'Pickle'])
    return parser.parse_args()


def main():
    args = arg_parse()
    model = calibrator_custom.fixed_simulator(args.model)
    quant_param = []
    for tensor in model.get_tensor_details():
        if len(tensor['min']) == 0 or len(tensor['max']) == 0:
            continue
        item = dict(tensor)
        item.pop('quantization', None)
        item.pop('shape')
        dtype = item.pop('dtype')
        if dtype in ['UINT8', 'INT8']:
            item['bit'] = 8
        elif dtype in ['INT16', 'INT32', 'FLOAT32']:
            item['bit'] = 16
        elif dtype in ['UINT4', 'INT4']:
            item['bit'] = 4
        else:
            raise ValueError('Not support dtype: {}'.format(dtype))
        quant_param.append(item)
    if args.output_mode == 'JSON':
        out = args.model.replace('.sim', '.json')
        with open(out, 'w') as f:
            json.dump(quant_param, f, indent=4)
    else:
        out = args.model.replace('.sim', '.pkl')
        with open(out, 'wb') as f:
            pickle.dump(quant_param, f)
    print('Quant param saved in {}'.format(out))


if __name__ == '__main__':
    main()
