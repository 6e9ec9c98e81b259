"""Train, validate and predict with MaskFlownet-S and MaskFlownet.

    python main.py CONFIG [--dataset_cfg D] [-g 0,1,..] [-c RUN[:STEPS]] [--clear_steps]
                   [--debug | --valid | --predict] [--resize H,W]

CONFIG is a network config in config/ (e.g. MaskFlownet_S.yaml), D a dataset config
(default chairs.yaml; dataset: custom for list files of your own data, docs/own_data.md).
Dataset roots come from config/datasets.yaml or MASKFLOWNET_* variables.
"""
import sys

from common.cli import run
from common.devices import prepare_process
from common.environment import check_environment
from engine.distributed import check_launched
from engine.main_options import parse_args


def main(argv=None):
    args = parse_args(argv)
    prepare_process()

    def body():
        check_environment()
        check_launched(args.kvstore)   # before MXNet loads: a server process would start serving
        from engine.commands import main as work   # here: --help answers without MXNet
        print(work(args))
    return run(body)


if __name__ == '__main__':
    sys.exit(main())
