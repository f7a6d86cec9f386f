"""Help formatting shared by sub-commands."""

from __future__ import annotations

import argparse

__all__ = ["DefaultsHelpFormatter"]


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
