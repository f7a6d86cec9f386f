"""Progress bars that stay readable in a log file.

On a terminal :func:`progress_bar` is an ordinary ``tqdm`` bar. When its stream is not a
terminal (output redirected to a file, a batch job), a bar redrawn with carriage returns turns
into one long line of noise, so :class:`LineProgress` writes a plain line instead, at most every
``mininterval`` seconds (30 by default) and once at the end. Messages written with
``tqdm.write`` while a bar is open (e.g. "skipping unreadable image ...") are whole lines too.

Every long command (``fit``, ``score``, ``predict``, ``positions optimize``, ``figures``,
``fmri compare``, ``cwm eval`` / ``flow``, ``brainscore export``) draws its bars with
:func:`progress_bar`; downloads (``import``) print one line per 10 % when not on a terminal
(:mod:`neurocwm.hub`).
"""

from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["LineProgress", "progress_bar"]


class LineProgress(tqdm):
    """A ``tqdm`` that prints each update as its own line (for logs), ASCII only."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("mininterval", 30.0)
        kwargs.setdefault("ascii", True)
        kwargs["dynamic_ncols"] = False
        kwargs.setdefault("ncols", 100)
        self._last_line = None
        super().__init__(*args, **kwargs)

    def display(self, msg=None, pos=None):
        if self.disable:
            return True
        line = (self.__str__() if msg is None else msg).strip()
        if line and line != self._last_line:
            self.fp.write(line + "\n")
            self.fp.flush()
            self._last_line = line
        return True

    def clear(self, nolock=False):
        # tqdm.write() clears every bar on the stream first, with carriage returns; a line never needs it
        return

    def close(self):
        if self.disable:
            return
        # the final state, as one line (tqdm's own close would add a carriage return or newline)
        self.display()
        self.disable = True
        with self._lock:
            try:
                self._instances.remove(self)
            except (KeyError, AttributeError):
                pass


def progress_bar(*args, file=None, **kwargs) -> tqdm:
    """A ``tqdm`` bar on a terminal, a :class:`LineProgress` otherwise (same arguments)."""
    stream = sys.stderr if file is None else file
    isatty = getattr(stream, "isatty", None)
    cls = tqdm if callable(isatty) and isatty() else LineProgress
    return cls(*args, file=stream, **kwargs)
