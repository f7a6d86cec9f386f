"""Shared docstring fragments: a parameter described once, in every docstring that takes it.

As nilearn's ``fill_doc``: a line that holds only ``{name}`` in a docstring is replaced by the
fragment ``name``, indented as that line. The filled docstring is what ``help()`` and the API
reference show.
"""

from __future__ import annotations

import re
import textwrap

__all__ = ["fill_doc"]

_MARK = re.compile(r"^(?P<indent>[ \t]*)\{(?P<name>\w+)\}[ \t]*$", re.MULTILINE)


def fill_doc(**fragments: str):
    """A decorator that fills the ``{name}`` lines of a function's docstring from ``fragments``.

    Raises
    ------
    KeyError
        A ``{name}`` line names no fragment (at import time, so a typo cannot ship).
    """

    def fill(func):
        def one(m: re.Match) -> str:
            text = textwrap.dedent(fragments[m.group("name")]).strip("\n")
            return textwrap.indent(text, m.group("indent"))

        if func.__doc__:
            func.__doc__ = _MARK.sub(one, func.__doc__)
        return func

    return fill
