# -*- coding: utf-8 -*-
"""The calibrator's staged API and SIM_Calibrator's advanced methods as the S1.0.9 SIM_Calibrator drives
them (written from the SDK's documented method list): statistics modes, get/set of ranges, dumps,
update, cmodel/fixed conversion, op details, forward_all/forward_skip, convert_fixed,
convert_optim_model, optimize, and convert's keywords. Prints one 'ok <what>' line per step."""
import argparse
import copy
import os

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
        return [self.model.get_output(i) for i in range(len(self.model.get_output_details()))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('-i', '--image', required=True)
    parser.add_argument('-m', '--model', required=True)
    parser.add_argument('--input_config', required=True)
    parser.add_argument('-n', '--preprocess', required=True)
    parser.add_argument('-o', '--output', required=True)
    args = parser.parse_args()
    images = utils.all_path(args.image)
    pre = [utils.image_preprocess_func(args.preprocess)]
    out = lambda name: os.path.join(args.output, name)

    # ---- the calibrator's own stages
    cal = calibrator_custom.calibrator(args.model, args.input_config)
    assert cal.model_type == 'Float'
    cal.set_statistics_mode('minmax')
    for item in utils.image_generator(images, pre):
        cal.set_input(0, item[0][0])
        cal.invoke()
    minmax, chn, inter = cal.get_minmax(), cal.get_chn(), cal.get_intermediate()
    print('ok minmax {} chn {} intermediate {}'.format(len(minmax), len(chn), len(inter)))
    cal.set_statistics_mode('statistics')
    statistics = cal.get_statistics()
    print('ok statistics {} bins {}'.format(len(statistics), len(statistics[0]['bin'])))
    cal.set_minmax(minmax)
    cal.set_intermediate(inter)
    cal.set_chn(chn)
    cal.set_statistics(statistics)
    weights, stats = cal.dump_weights(), cal.dump_statistics()
    print('ok dumps weights {} statistics {}'.format(len(weights), len(stats)))
    convs = cal.get_op_details(['CONV_2D', 'DEPTHWISE_CONV_2D'])
    print('ok op_details {} first {} bits {}'.format(len(convs), convs[0]['op_type'], convs[0]['ib_allowed_bits']))
    cal.update([{'name': convs[0]['input_tensors'][1], 'min': convs[0]['weights_min'],
                 'max': convs[0]['weights_max'], 'bit': 16}])
    config = utils.CompilerConfig()
    cmodel = cal.convert_cmodel_float(config.Float2CmodelFloatConfig(), out('net_cmodel_float.sim'))
    fixed = cal.convert_fixed(config.CmodelFloat2FixedConfig(), out('net_stage_fixed.sim'), 'Fixed')
    sim = calibrator_custom.fixed_simulator(fixed)
    wname = convs[0]['input_tensors'][1]
    wtype = [t['dtype'] for t in sim.get_tensor_details() if t['name'] == wname]
    print('ok staged {} {} {} weights {}'.format(os.path.basename(cmodel), cal.model_type, os.path.basename(fixed),
                                                  wtype))

    # ---- SIM_Calibrator's methods
    net = Net(args.model, args.input_config)
    per_sample = net.forward_all(utils.image_generator(images, pre))
    print('ok forward_all {} {}'.format(len(per_sample), sorted(per_sample[0]['model'])))
    results = net.forward_skip(utils.image_generator(images, pre))
    print('ok forward_skip {}'.format(len(results)))
    paths = net.convert_fixed(fix_model=[out('net_convert_fixed.sim')])
    print('ok convert_fixed {}'.format([os.path.basename(p) for p in paths]))
    conv8_info = net.convert_optim_model(utils.image_generator(images, pre), num_process=1)
    float_result = net.forward_skip(utils.image_generator(images, pre))
    quant_infos = net.optimize(utils.image_generator(images, pre), conv8_info, float_result, [0.0, 0.5, 1.0])
    bits = [sorted({q['bit'] for q in qi}) for qi in quant_infos]
    sixteen = [sum(q['bit'] == 16 for q in qi) for qi in quant_infos]
    print('ok optimize {} bits {} sixteen {}'.format(len(quant_infos), bits, sixteen))
    for qi in quant_infos:  # one item per tensor, even where a tensor feeds several convs
        assert len({q['name'] for q in qi}) == len(qi), [q['name'] for q in qi]
    paths = net.convert(quant_param=copy.deepcopy(quant_infos[1]), fix_model=[out('net_optim_fixed.sim')])
    print('ok convert quant_param {}'.format([os.path.basename(p) for p in paths]))
    paths = net.convert(utils.image_generator(images, pre), num_process=1, quant_level='L1', mixed_precision='mp',
                        show_log=False, fix_model=[out('net_kw_fixed.sim')])
    print('ok convert keywords {}'.format([os.path.basename(p) for p in paths]))


if __name__ == '__main__':
    main()
