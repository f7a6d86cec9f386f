"""Help formatting shared by sub-commands."""

from __future__ import annotations

import argparse

__all__ = ["DefaultsHelpFormatter", "number", "nonempty", "out_folder", "SEED", "POSITIVE_INT", "NONNEG_INT"]


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show ``(default: X)`` only where it tells something.

    Unlike :class:`argparse.ArgumentDefaultsHelpFormatter` it leaves out defaults that are
    ``None``, ``False`` or ``True`` (flags), suppressed, or already written in the help text
    (``default:`` / ``default ``), so no option reads ``(default: x) (default: None)``.
    A description or epilog with explicit line breaks (examples) keeps them.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (default is None or isinstance(default, bool) or default is argparse.SUPPRESS
                or "default" in text.lower() or action.required):
            return text
        return super()._get_help_string(action)


def number(kind: type = float, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False):
    """An argparse ``type`` that parses a finite ``kind`` (int or float) within ``[lo, hi]`` (open ends
    with ``lo_open`` / ``hi_open``), so that NaN, inf and out-of-range values are refused while the
    command line is parsed, before any work (one line: ``argument --x: must be ...``)."""
    import argparse
    import math

    def parse(text: str):
        try:
            value = int(text) if kind is int else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise argparse.ArgumentTypeError(f"must be {'>' if lo_open else '>='} {lo:g}, got {text}")
        if hi is not None and (value > hi or (hi_open and value == hi)):
            raise argparse.ArgumentTypeError(f"must be {'<' if hi_open else '<='} {hi:g}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def nonempty(text: str) -> str:
    """An argparse ``type`` for paths and names: an empty string is refused instead of meaning "not given"."""
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def out_folder(text: str) -> str:
    """An argparse ``type`` for an output folder: not empty, not an existing file, not below a file."""
    import argparse
    from pathlib import Path

    nonempty(text)
    p = Path(text).expanduser()
    for parent in [p, *p.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{parent} is a file, not a folder")
            break
    return text


#: Common argument types.
SEED = number(int, 0, 2**32 - 1)
POSITIVE_INT = number(int, 1)
NONNEG_INT = number(int, 0)
