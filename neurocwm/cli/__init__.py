"""``neurocwm`` command line: a thin layer over the library.

Each sub-command lives in its own module with ``add_parser(subparsers)`` that registers it and
sets ``func`` to a handler ``handler(args) -> int``.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
import warnings

#: Sub-command modules, in help order.
COMMANDS = ["demo", "fit", "import", "positions", "score", "predict", "brainscore", "cwm", "fmri", "figures"]

#: Command names that are not module names (``import`` is a Python keyword).
MODULES = {"import": "imports"}


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``neurocwm CMD: error: ...``), exit code 2.
    Sub-command parsers inherit it."""

    def error(self, message: str):
        cmd = " ".join(self.prog.split()[:2])  # "neurocwm CMD", as the errors main() reports
        self.exit(2, f"{cmd}: error: {_one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from neurocwm import __version__

    from ._help import harden, number

    parser = OneLineParser(
        prog="neurocwm",
        description=(
            "Train topographic networks and counterfactual world models, map them onto cortex, "
            "score them against brain data."
        ),
    )
    parser.add_argument("--version", action="version", version=f"neurocwm {__version__}")
    parser.add_argument(
        "--threads",
        type=number(int, 1, 4096),
        default=None,
        metavar="N",
        help="CPU threads (default: OMP_NUM_THREADS if set, else the cores that other jobs running "
        "now leave free, at least 1); waiting threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"neurocwm.cli.{MODULES.get(name, name)}").add_parser(sub)
    harden(parser)  # every number finite and in range, every path non-empty, checked while parsing
    return parser


def _threads_from_argv(argv: list[str]) -> int | None:
    """``--threads N`` from the command line before it is parsed (it must act before torch starts);
    an invalid value is left to the parser to refuse."""
    for i, tok in enumerate(argv):
        val = tok.split("=", 1)[1] if tok.startswith("--threads=") else None
        if tok == "--threads" and i + 1 < len(argv):
            val = argv[i + 1]
        if val is not None:
            try:
                return int(val) if int(val) >= 1 else None
            except ValueError:
                return None
    return None


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


def _describe_os_error(exc: OSError) -> str:
    """An OSError in one line that names the file (disk full, permission denied, a file for a folder, ...)."""
    what = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        what = "no space left on the device"
    names = [n for n in (exc.filename, exc.filename2) if n]
    if names:
        return f"{what}: {' -> '.join(str(n) for n in names)}"
    return _one_line(str(exc)) or what


def _format_warning(message, category, filename, lineno, line=None) -> str:
    # one line per warning, no source line (a source line under a warning reads like a traceback)
    return f"neurocwm: warning: {_one_line(message)}\n"


def _anticipated() -> tuple[type[BaseException], ...]:
    """Error types that report bad input or a failing environment, not a bug (besides ValueError and OSError)."""
    kinds: list[type[BaseException]] = [FloatingPointError, OverflowError]
    try:
        from safetensors import SafetensorError

        kinds.append(SafetensorError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from PIL import Image

        kinds.append(Image.DecompressionBombError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(kinds)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Bad input and environment failures (a missing or damaged file, a full disk, a permission
    error, an invalid number) end with one line ``neurocwm CMD: error: ...`` and exit code 2;
    argparse errors also exit 2. Other exceptions are bugs and keep their traceback.
    """
    from neurocwm.threads import configure_threads

    argv = list(sys.argv[1:] if argv is None else argv)
    configure_threads(_threads_from_argv(argv))  # before torch starts its thread pool
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (2) returns its code, as every other error does; --help / --version exit
        if exc.code in (0, None):
            raise
        return exc.code if isinstance(exc.code, int) else 2
    warnings.simplefilter("default")
    old_format, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("neurocwm: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # FileNotFoundError, PermissionError, ENOSPC, IsADirectoryError, unreadable images, ...
        msg = _describe_os_error(exc)
    except (ValueError, *_anticipated()) as exc:  # bad input (incl. JSON / UTF-8 decode errors): one clear line
        msg = _one_line(str(exc))
        if isinstance(exc, UnicodeDecodeError):
            msg = f"a file is not valid UTF-8 text ({msg})"
    finally:
        warnings.formatwarning = old_format
    print(f"neurocwm {args.command}: error: {msg}", file=sys.stderr)
    return 2
