"""From parsed options to a library call: the CLI stays a thin layer over the library."""

from __future__ import annotations

import argparse
import inspect

__all__ = ["call"]


def call(func, args: argparse.Namespace, *positional, **given):
    """Call ``func(*positional, **kwargs)`` with the options of ``args`` that ``func`` takes.

    Each parameter of ``func`` after the positional ones is passed as a keyword: its value in
    ``given`` where the caller names it (a renamed or converted option), else the option of the
    same name in ``args``; a parameter ``args`` lacks keeps ``func``'s default. So an option and
    the library parameter it sets share one name, and a new option needs no forwarding code.

    Raises
    ------
    TypeError
        ``given`` names a parameter ``func`` does not take.
    """
    params = list(inspect.signature(func).parameters.values())[len(positional) :]
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(given) - names)
    if unknown:
        raise TypeError(f"{func.__name__} takes no parameter {', '.join(unknown)}")
    kwargs = {name: getattr(args, name) for name in names if hasattr(args, name)}
    kwargs.update(given)
    return func(*positional, **kwargs)
