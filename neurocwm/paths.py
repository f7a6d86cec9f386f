"""Where the toolkit finds data that is not shipped with it."""

from __future__ import annotations

import os
from pathlib import Path

ENV_SHARED = "NEUROCWM_SHARED_DATA"


def shared_data_dir(path: str | os.PathLike | None = None) -> Path:
    """Return the folder of real datasets (fLoc, Ringach 2002, Cowley V4, natural images).

    Resolution order: the explicit ``path`` argument, then ``$NEUROCWM_SHARED_DATA``,
    then ``../shared/data`` relative to the current working directory.
    The folder is not required to exist; callers check the files they need.
    """
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(ENV_SHARED)
    if env:
        return Path(env).expanduser()
    return Path("..") / "shared" / "data"
