"""Help formatting shared by sub-commands."""

from __future__ import annotations

import argparse

__all__ = [
    "NONNEG_INT",
    "POSITIVE_INT",
    "SEED",
    "DefaultsHelpFormatter",
    "command",
    "command_group",
    "nonempty",
    "number",
    "out_folder",
]


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
        if (
            default is None
            or isinstance(default, bool)
            or default is argparse.SUPPRESS
            or "default" in text.lower()
            or action.required
        ):
            return text
        return super()._get_help_string(action)


def command(sub, name: str, help: str, description: str | None = None, run=None, epilog: str | None = None):
    """Register the sub-command ``name`` under the sub-parsers ``sub`` and return its parser.

    Every sub-command shares :class:`DefaultsHelpFormatter`; ``description`` defaults to ``help``
    and ``run`` (``handler(args) -> int``) becomes the parser's ``func`` when given.
    """
    p = sub.add_parser(
        name, help=help, description=description or help, epilog=epilog, formatter_class=DefaultsHelpFormatter
    )
    if run is not None:
        p.set_defaults(func=run)
    return p


def command_group(sub, name: str, help: str, description: str | None = None, *, dest: str, metavar: str):
    """Register ``name`` as a command made of sub-commands; return their (required) sub-parsers.

    The chosen sub-command is stored as ``args.<dest>``; ``metavar`` names it in the usage line.
    """
    actions = command(sub, name, help, description).add_subparsers(dest=dest, metavar=metavar)
    actions.required = True
    return actions


def number(
    kind: type = float,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
):
    """An argparse ``type`` that parses a finite ``kind`` (int or float) within ``[lo, hi]`` (open ends
    with ``lo_open`` / ``hi_open``), so that NaN, inf and out-of-range values are refused while the
    command line is parsed, before any work (one line: ``argument --x: must be ...``)."""
    import argparse
    import math

    def parse(text: str):
        try:
            value = int(text) if kind is int else float(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
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
FRACTION = number(float, 0, 1, lo_open=True, hi_open=True)

#: Range of every numeric option of every sub-command, by its ``dest`` (checked while parsing).
#: A numeric option not listed still refuses NaN and inf; ``(command, dest)`` keys override.
NUMBER_RULES = {
    "batch_size": POSITIVE_INT,
    "seed": SEED,
    "split_seed": SEED,
    "per_category": POSITIVE_INT,
    "wiring_images": POSITIVE_INT,
    "dim_images": number(int, 2),
    "steps": POSITIVE_INT,
    "steps_per_window": POSITIVE_INT,
    "warmup_steps": POSITIVE_INT,
    "swap_steps": POSITIVE_INT,
    "test_size": FRACTION,
    "n_splits": number(int, 2, 100),
    "max_units": NONNEG_INT,
    "visual_degrees": number(float, 0, 360, lo_open=True),
    "field_of_view": number(float, 0, 360, lo_open=True),
    "n_masks": POSITIVE_INT,
    "n_pairs": POSITIVE_INT,
    "points_per_pair": POSITIVE_INT,
    "n_samples": POSITIVE_INT,
    "min_move": POSITIVE_INT,
    "max_move": POSITIVE_INT,
    "k": POSITIVE_INT,
    "n_candidates": POSITIVE_INT,
    "stride": POSITIVE_INT,
    "flow_stride": POSITIVE_INT,
    "tracers_per_image": POSITIVE_INT,
    "smoothness_samples": POSITIVE_INT,
    "visible_fraction": FRACTION,
    "zoom_iters": number(int, 0, 20),
    "start": NONNEG_INT,
    "n_visible": NONNEG_INT,
    "calibration_pairs": NONNEG_INT,
    "n_segments": NONNEG_INT,
    "n_keypoint_pairs": NONNEG_INT,
    "workers": NONNEG_INT,
    "threads": number(int, 1, 4096),
    ("demo", "alpha"): number(float, 0, 1e6),  # fit's range, checked before the demo's first stage writes
}
#: Options naming files or folders: an empty string is refused (it would silently mean "the default").
PATH_DESTS = {
    "run",
    "checkpoint",
    "floc",
    "ringach",
    "images",
    "neural",
    "responses",
    "metadata",
    "data_root",
    "weights_url",
    "weights_out",
    "identifier",
    "region_layer_map",
    "human",
    "maps",
    "subjects",
    "layer",
    "data",
    "positions",
    "init_from",
    "arch",
}
#: Output folders: not empty, not a file, not below a file (``brainscore export --out`` is a zip file).
OUT_FOLDER_COMMANDS = {"positions", "score", "cwm", "fmri", "figures", "fit", "demo"}


def harden(parser, command: str | None = None) -> None:
    """Give every option of ``parser`` and its sub-commands a checked ``type``: numbers finite and
    in the range :data:`NUMBER_RULES` gives, paths not empty, output folders not files.

    Options that already have a custom ``type`` keep it. Applied once by
    :func:`neurocwm.cli.build_parser`, so a new option is covered without code of its own.
    """
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                harden(sub, command or name)
            continue
        if not action.option_strings and action.dest not in PATH_DESTS or action.nargs == 0:
            continue
        dest = action.dest
        if action.type in (int, float):
            rule = NUMBER_RULES.get((command, dest)) or NUMBER_RULES.get(dest) or number(action.type)
            if action.type is float and getattr(rule, "__name__", "") == "int":
                rule = number(float)
            action.type = rule
        elif action.type in (None, str) and action.choices is None:
            if dest == "out" and command in OUT_FOLDER_COMMANDS:
                action.type = out_folder
            elif dest in PATH_DESTS or dest == "out":
                action.type = nonempty
