"""Inputs of the CWM readouts: a CWM run folder and the frames it reads out.

Two frame files, or a folder of frames, become a ``(2, 3, size, size)`` float32 tensor in [0, 1];
wrong sizes, missing files, a run of another family and unreadable weights are refused with a
message that names the file.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["load_cwm", "load_frames"]


def load_cwm(path: str, checkpoint: str | None = None, device: str = "cpu"):
    """Open a CWM run folder for the readouts.

    Parameters
    ----------
    path : str or path-like
        Run folder written by ``neurocwm fit --model cwm`` (or ``neurocwm import cwm``).
    checkpoint : str or None
        Weights file or checkpoint folder; default the run's final weights.
    device : str
        Where the model runs.

    Returns
    -------
    neurocwm.runs.Run
        The run, with ``model`` (a CWM) and ``config``.

    Raises
    ------
    FileNotFoundError
        No folder at ``path``, or a named file is missing.
    ValueError
        ``config.json`` is unreadable, the run is of a family without readouts, or the weights
        cannot be loaded (the message names the folder).
    """
    from safetensors import SafetensorError

    from neurocwm.families import family_name, family_names, get_family
    from neurocwm.runs import load_run

    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"no run folder at {p}")
    import json

    try:
        family = (
            family_name(json.loads((p / "config.json").read_text(encoding="utf-8")))
            if (p / "config.json").is_file()
            else None
        )
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise ValueError(f"{p / 'config.json'} is not a valid run configuration ({exc})") from None
    if family is not None and not (family in family_names() and get_family(family).readouts):
        raise ValueError(f"{p} is a {family} run, not a CWM; train one with `neurocwm fit --model cwm`")
    from neurocwm.train.checkpoint import CheckpointError

    try:
        run = load_run(p, checkpoint=checkpoint, device=device)
    except (SafetensorError, RuntimeError, OSError, CheckpointError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"cannot load the weights of {p}: {exc}") from None
    return run


def _image_files(paths: list[str], start: int, allow_single: bool, n_frames: int = 2) -> list[Path]:
    """The frame files: the given files, or ``n_frames`` sorted images of one folder from ``start``."""
    from neurocwm.images import IMAGE_EXTENSIONS

    ps = [Path(x) for x in paths]
    for x in ps:
        if not x.exists():
            raise FileNotFoundError(f"no such image or folder: {x}")
    if len(ps) == 1 and ps[0].is_dir():
        files = sorted(f for f in ps[0].iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if start < 0 or start + n_frames > len(files):
            raise ValueError(
                f"{ps[0]} holds {len(files)} image(s); frames {start} to {start + n_frames - 1} are needed"
            )
        return files[start : start + n_frames]
    if len(ps) == 1 and allow_single:
        return ps
    if len(ps) not in (2, n_frames) or any(x.is_dir() for x in ps):
        want = "two frame images (frame0 frame1)" + (f" or {n_frames} (context frames first)" if n_frames > 2 else "")
        raise ValueError(f"give {want} or one folder of frames, got {len(ps)} path(s)")
    return ps


def _read_image(path: Path, size: int, resize: bool):
    """One image ``(size, size, 3)`` float32 in [0, 1]; centre-cropped and resized only with ``resize``."""
    import numpy as np
    from PIL import Image

    from neurocwm.images import read_rgb

    img = Image.fromarray(read_rgb(path))
    w, h = img.size
    if (w, h) != (size, size):
        if not resize:
            raise ValueError(
                f"{path} is {w}x{h} px but the model takes {size}x{size}; pass --resize to centre-crop and resize"
            )
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s)).resize((size, size), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 255.0


def load_frames(
    paths: list[str], size: int, *, start: int = 0, resize: bool = False, allow_single: bool = False, n_frames: int = 2
):
    """Frames ``(2, 3, size, size)`` float32 in [0, 1] from two files or a folder (clear errors).

    With ``allow_single`` one image gives a static clip (frame 1 = frame 0). For a model of
    ``n_frames`` > 2, ``n_frames`` files (or a folder's ``n_frames`` frames) give
    ``(n_frames, 3, size, size)``: the context frames, then the readout's frames 0 and 1.

    Returns
    -------
    frames : torch.Tensor
        ``(n_frames, 3, size, size)`` float32 in [0, 1].
    files : list of str
        The image files read, in frame order.

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    ValueError
        Wrong number of files, too few frames in the folder, or an image of another size without
        ``resize``.
    """
    import numpy as np
    import torch

    from neurocwm.images import channels_first

    files = _image_files(paths, start, allow_single, n_frames)
    imgs = [_read_image(f, size, resize) for f in files]
    if len(imgs) == 2 and resize is False and imgs[0].shape != imgs[1].shape:  # pragma: no cover - sizes checked above
        raise ValueError(f"frames differ in size: {imgs[0].shape[:2]} and {imgs[1].shape[:2]}")
    if len(imgs) == 1:
        imgs = imgs * 2
    frames = torch.from_numpy(channels_first(np.stack(imgs)))
    return frames, [str(f) for f in files]
