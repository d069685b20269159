"""The ``ltnet`` command: ``train``, ``transfer`` and ``demo``.

Exit status 0 on success, 2 on bad input (one line on stderr naming the file
and the problem; the traceback only with ``--verbose``), 130 when stopped.
"""

import argparse
import logging
import sys
import warnings

from ltnet import __version__
from ltnet.commands import demo, train, transfer
from ltnet.errors import LTNetError

COMMANDS = {
    "train": (train, "train a model from one atlas and unlabeled scans"),
    "transfer": (transfer, "transfer the atlas labels onto scans"),
    "demo": (demo, "label the bundled sample scans with the bundled model"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ltnet", description="One-shot segmentation by label transfer (LT-Net).")
    parser.add_argument("--version", action="version", version=f"ltnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.add_argument("--verbose", action="store_true", help="show the full traceback on errors")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", module="monai")
    logging.getLogger("monai").setLevel(logging.ERROR)
    try:
        return COMMANDS[args.command][0].run(args)
    except LTNetError as error:
        if args.verbose:
            raise
        print(f"ltnet: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ltnet: interrupted", file=sys.stderr)
        return 130
