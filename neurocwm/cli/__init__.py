"""``neurocwm`` command line: a thin layer over the library.

Each sub-command lives in its own module with ``add_parser(subparsers)`` that registers it and
sets ``func`` to a handler ``handler(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

#: Sub-command modules, in help order.
COMMANDS = ["fit", "import", "positions", "score", "predict", "brainscore", "cwm", "fmri", "figures"]

#: Command names that are not module names (``import`` is a Python keyword).
MODULES = {"import": "imports"}


def build_parser() -> argparse.ArgumentParser:
    from neurocwm import __version__

    parser = argparse.ArgumentParser(
        prog="neurocwm",
        description="Train topographic networks and counterfactual world models, map them onto cortex, score them against brain data.",
    )
    parser.add_argument("--version", action="version", version=f"neurocwm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"neurocwm.cli.{MODULES.get(name, name)}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.simplefilter("default")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("neurocwm: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FloatingPointError) as exc:
        # one clear line, no traceback, for bad input; bugs still raise other exceptions
        print(f"neurocwm {args.command}: error: {exc}", file=sys.stderr)
        return 2
