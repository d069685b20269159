"""The ``ltnet`` command: ``train``, ``transfer``, ``distill`` and ``demo``.

Exit status 0 on success, 2 on bad input (one line on stderr naming the file
and the problem; the traceback only with ``--verbose``), 130 when stopped.
Options must be spelled in full: an abbreviation or a misspelt option is an
error naming it, shown with the usage of its command.
"""

import argparse
import difflib
import logging
import re
import sys
import warnings

from ltnet import __version__
from ltnet.commands import demo, distill, train, transfer
from ltnet.data.io import show_itk_warnings
from ltnet.errors import LTNetError

COMMANDS = {
    "train": (train, "train a model from one atlas and unlabeled scans"),
    "transfer": (transfer, "transfer the atlas labels onto scans"),
    "distill": (distill, "train a segmentation network on a model's transfers to its cohort"),
    "demo": (demo, "label the bundled sample scans with the bundled model"),
}
NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


class Parser(argparse.ArgumentParser):
    """An argument parser that names an unknown option before anything else (such as a missing required one)."""

    def parse_known_args(self, args=None, namespace=None):
        self._refuse_unknown_options(sys.argv[1:] if args is None else list(args))
        return super().parse_known_args(args, namespace)

    def _refuse_unknown_options(self, args: list[str]) -> None:
        """Options of this parser only: up to the command's name for the top level, all for a command."""
        known = list(self._option_string_actions)
        for arg in args:
            if arg == "--" or (self._subparsers is not None and not arg.startswith("-")):
                return
            if not arg.startswith("-") or arg == "-" or NEGATIVE_NUMBER.match(arg):
                continue
            option = arg.split("=", 1)[0]
            if option not in self._option_string_actions:
                close = difflib.get_close_matches(option, known, n=1)
                self.error(f"unknown option {option}" + (f" (did you mean {close[0]}?)" if close else ""))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ltnet", description="One-shot segmentation by label transfer (LT-Net).", allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"ltnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        module.add_arguments(sub)
        sub.add_argument("--verbose", action="store_true", help="show the full traceback and ITK's warnings on errors")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", module="monai")
    logging.getLogger("monai").setLevel(logging.ERROR)
    show_itk_warnings(args.verbose)
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
