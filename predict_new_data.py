"""Optical flow for your own data with a MaskFlownet checkpoint.

    python predict_new_data.py OUT CONFIG --image_1 A --image_2 B -c CHECKPOINT [-g 0] [--resize H,W]

OUT's extension picks the output: .png/.jpg colour flow image, .flo Middlebury flow, .npy the
raw H x W x 2 float32 array in (x, y) pixels.
"""
import argparse
import sys

from network.errors import UserError
from network.runtime import use_all_cores


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='output path: .png/.jpg (flow colours), .flo or .npy')
    parser.add_argument('config', help='network config: a name in config/ (MaskFlownet.yaml) or a path')
    parser.add_argument('--image_1', required=True, help='first image')
    parser.add_argument('--image_2', required=True, help='second image')
    parser.add_argument('-c', '--checkpoint', required=True,
                        help='a .params file, or a run id prefix in weights/ with optional :STEPS')
    parser.add_argument('-g', '--gpu_device', default='', help='GPU id(s), e.g. 0; CPU if omitted')
    parser.add_argument('--resize', default='',
                        help='network input size H,W (multiples of 64); default: next multiple of 64')
    parser.add_argument('--occ_mask', default=None,
                        help='also write the learned occlusion mask as a grayscale image here')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    use_all_cores()
    try:
        # Imported here so that --help answers without loading MXNet.
        from network.pipeline import parse_devices, parse_resize
        from network.predict import load_pipeline, predict_image_pair
        from reader.flowio import check_flow_output_path
        check_flow_output_path(args.out)
        resize = parse_resize(args.resize)
        ctx = parse_devices(args.gpu_device)
        pipe, checkpoint = load_pipeline(args.config, args.checkpoint, ctx)
        flow, _ = predict_image_pair(pipe, args.image_1, args.image_2, args.out,
                                     occ_mask_path=args.occ_mask, resize=resize)
    except UserError as error:
        print('error: %s' % error, file=sys.stderr)
        return 2
    print('%s: flow %dx%d from %s, max |flow| %.2f px' % (
        args.out, flow.shape[1], flow.shape[0], checkpoint, abs(flow).max()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
