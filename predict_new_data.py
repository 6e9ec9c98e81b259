"""Optical flow for your own data with a MaskFlownet checkpoint.

    python predict_new_data.py OUT CONFIG --image_1 A --image_2 B -c CHECKPOINT [-g 0] [--resize H,W]
    python predict_new_data.py OUT.mp4 CONFIG --video_filepath IN.mp4 -c CHECKPOINT [-g 0]
        [--batch N] [--resize H,W] [--side_by_side]
    python predict_new_data.py OUT_DIR CONFIG (--frames DIR | --pairs LIST) -c CHECKPOINT
        [--format flo|npy|png|kitti] [--occ_mask] [--batch N] [--resize H,W] [-g 0]

For an image pair, OUT's extension picks the output: .png/.jpg colour flow image, .flo
Middlebury flow, .npy the raw H x W x 2 float32 array in (x, y) pixels.

For --frames, OUT_DIR/<NAME>.<ext> holds the flow from each frame of DIR (its images sorted by
name, numbers by value) to the next, NAME being the first frame's stem; for --pairs, the flow of
each line IMAGE1 IMAGE2 [NAME] of LIST (paths relative to the list's folder). --format picks
.flo (default), .npy, .png (flow colours) or KITTI's 16-bit .png; --occ_mask adds
NAME_occ.png. A restart skips the files that are complete; predict_settings.json in OUT_DIR
refuses to mix checkpoints, --resize or --format in one folder.

For a video, frame k of OUT (.mp4, .mkv, .mov or .avi, H.264) shows the flow from input frame k
to k+1 in flow_vis colours, at the input's frame rate; --side_by_side puts the input frame, the
flow colours and the occlusion mask next to each other. Frames are streamed, --batch pairs at a
time, so videos of any length fit in memory; OUT appears only once it is complete. An odd width
or height gets its last column or row repeated (H.264 in yuv420p, which every player takes).

Images, frames and --resize are limited to 32704 px per side (MXNet cannot resize to 32768).
Outputs are checked before any work starts; a failed or interrupted run (Ctrl-C: exit 130)
leaves the files that were at the output paths before as they were.
"""
import sys

from common.cli import ArgumentParser, add_checkpoint_options, run
from common.devices import prepare_process
from common.environment import check_environment
from common.options import DEFAULT_VIDEO_BATCH

FORMATS = ('flo', 'npy', 'png', 'kitti')   # --format; engine.predict.FORMATS writes them


def parse_args(argv=None):
    parser = ArgumentParser(
        description=__doc__.split('\n\n')[0],
        usage='%(prog)s OUT CONFIG (--image_1 A --image_2 B | --video_filepath V | --frames DIR | '
              '--pairs LIST) -c CHECKPOINT [options]')
    parser.add_argument('out', help='output path: .png/.jpg (flow colours), .flo or .npy for an image '
                                    'pair; .mp4, .mkv, .mov or .avi for a video; a folder for '
                                    '--frames and --pairs (made if missing)')
    parser.add_argument('config', help='network config: a name in config/ (MaskFlownet.yaml) or a path')
    parser.add_argument('--image_1', help='first image')
    parser.add_argument('--image_2', help='second image')
    parser.add_argument('--video_filepath', help='input video: the flow between consecutive frames')
    parser.add_argument('--frames', metavar='DIR',
                        help='a folder of frames: the flow from each frame to the next (frames '
                             'sorted by name, numbers by value), as OUT/<first frame stem>.<ext>')
    parser.add_argument('--pairs', metavar='LIST',
                        help='a list file of IMAGE1 IMAGE2 [NAME] lines (paths relative to the '
                             "list's folder): the flow of each pair as OUT/<NAME or IMAGE1 "
                             'stem>.<ext>; see docs/prediction.md')
    parser.add_argument('--format', choices=FORMATS, default=None,
                        help='--frames/--pairs: flo (Middlebury, default), npy (H x W x 2 float32), '
                             'png (flow colours) or kitti (16-bit KITTI PNG)')
    add_checkpoint_options(parser)
    parser.add_argument('-g', '--gpu_device', default='', help='GPU id(s), e.g. 0; CPU if omitted')
    parser.add_argument('--resize', default='',
                        help='network input size H,W (multiples of 64, at most 32704); '
                             'default: next multiple of 64')
    parser.add_argument('--occ_mask', default=None, nargs='?', const=True, metavar='MASK',
                        help='image pair: also write the learned occlusion mask as a grayscale '
                             'image at MASK; --frames/--pairs (a flag): as OUT/<NAME>_occ.png')
    parser.add_argument('--batch', type=int, default=None,
                        help='video, --frames, --pairs: pairs per network call (default %(gpu)d '
                             'on GPUs, %(cpu)d on the CPU)' % DEFAULT_VIDEO_BATCH)
    parser.add_argument('--side_by_side', action='store_true',
                        help='video: each frame is [input frame | flow colours | occlusion mask]')
    parser.add_argument('--backend', default='mxnet', choices=('mxnet', 'onnxruntime'),
                        help='run the network with MXNet (default) or with onnxruntime, from a '
                             'model exported once per image size and cached in weights/onnx/ '
                             '(docs/onnx.md)')
    parser.add_argument('--accept_short_video', action='store_true',
                        help='video: a video that ends before the frame count its container '
                             'announces is not an error; the flow of the frames that decode is '
                             'written, with a warning')
    args = parser.parse_args(argv)

    images = [args.image_1, args.image_2]
    modes = [name for name, given in (('--image_1/--image_2', any(i is not None for i in images)),
                                      ('--video_filepath', args.video_filepath is not None),
                                      ('--frames', args.frames is not None),
                                      ('--pairs', args.pairs is not None)) if given]
    if len(modes) > 1:
        parser.error('give either %s, not both' % ' or '.join(modes[:2]))
    if args.format is not None and not (args.frames or args.pairs):
        parser.error('--format is for --frames and --pairs (an image pair takes the kind from '
                     "OUT's extension)")
    if args.frames is not None or args.pairs is not None:
        if args.occ_mask not in (None, True):
            parser.error('--occ_mask is a flag with --frames and --pairs (the masks go to '
                         'OUT/<NAME>_occ.png), not a path: %s' % args.occ_mask)
        if args.batch is not None and args.batch < 1:
            parser.error('--batch %d: expected a positive number of pairs' % args.batch)
        if args.side_by_side or args.accept_short_video:
            parser.error('--side_by_side and --accept_short_video are for --video_filepath')
        return args
    if args.occ_mask is True:
        parser.error('--occ_mask needs a path for an image pair (--occ_mask MASK.png)')
    if args.video_filepath is not None:
        if args.occ_mask is not None:
            parser.error('--occ_mask is for an image pair; use --side_by_side to see the mask in a video')
        if args.batch is not None and args.batch < 1:
            parser.error('--batch %d: expected a positive number of frame pairs' % args.batch)
    else:
        if all(image is None for image in images):
            parser.error('give an image pair (--image_1 and --image_2), --video_filepath, '
                         '--frames or --pairs')
        if any(image is None for image in images):
            parser.error('--image_1 and --image_2 go together')
        if args.batch is not None or args.side_by_side or args.accept_short_video:
            parser.error('--batch, --side_by_side and --accept_short_video are for '
                         '--video_filepath (--batch also for --frames and --pairs)')
    return args


def main(argv=None):
    args = parse_args(argv)
    prepare_process()

    def body():
        check_environment()
        from engine.predict import predict_files, predict_folder   # here: --help without MXNet
        if args.frames is not None or args.pairs is not None:
            print(predict_folder(args.out, args.config, args.checkpoint, frames=args.frames,
                                 pairs=args.pairs, devices=args.gpu_device, resize=args.resize,
                                 fmt=args.format or 'flo', occ_mask=args.occ_mask is True,
                                 batch=args.batch, download=args.download,
                                 backend=args.backend))
            return
        print(predict_files(args.out, args.config, args.checkpoint, image_1=args.image_1,
                            image_2=args.image_2, video_path=args.video_filepath,
                            devices=args.gpu_device, resize=args.resize, occ_mask=args.occ_mask,
                            batch=args.batch, side_by_side=args.side_by_side,
                            download=args.download, accept_short_video=args.accept_short_video,
                            backend=args.backend))
    return run(body)


if __name__ == '__main__':
    sys.exit(main())
