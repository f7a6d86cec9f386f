"""Image input and output, in one place: reading files, the image extensions, the channel layout
flip, the resize for a model and the ImageNet constants.

* :data:`IMAGENET_MEAN`, :data:`IMAGENET_STD` - the per-channel statistics of ImageNet that
  torchvision's models (and ours: He et al. 2016's ResNet in the TDANN of Margalit et al. 2024,
  the ViT encoders of the CWMs of Bear et al. 2023 and Venkatesh et al. 2024) normalise with.
* :data:`IMAGE_EXTENSIONS`, :func:`is_image_file` - the file suffixes read as images everywhere.
* :func:`read_rgb` - one image file (or bytes) as an ``(H, W, 3)`` uint8 array, one-line errors
  (:func:`to_rgb`: any Pillow mode to 8-bit RGB, 16-bit greyscale scaled rather than clipped).
* :func:`channels_first` - ``(..., H, W, 3)`` -> ``(..., 3, H, W)``, contiguous (the frame-layout
  flip between image files and torch).
* :func:`resize_images` - the resize :func:`neurocwm.features.layer_responses` (so ``score``,
  ``predict``, ``positions``, ``fmri``) gives an image not already at the model's size: bilinear,
  antialiased (low-pass filtered first, so frequencies above the new Nyquist limit are removed
  instead of aliased). Data loaders that resize while reading (fLoc, still-image folders, the
  training crops) do so with Pillow's antialiased filters at read time.
* :func:`normalize` - ImageNet normalisation of ``(B, 3, H, W)`` images in [0, 1].
* :class:`StimulusImages` - the images of a stimulus set, read lazily batch by batch at a model's
  input size (what :func:`neurocwm.features.layer_responses` takes).

>>> import numpy as np
>>> channels_first(np.zeros((2, 5, 7, 3), np.uint8)).shape
(2, 3, 5, 7)
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used: the constants and readers stay light
    import torch

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_EXTENSIONS",
    "READ_ERRORS",
    "to_rgb",
    "is_image_file",
    "read_rgb",
    "channels_first",
    "channels_last",
    "resize_images",
    "normalize",
    "StimulusImages",
]

#: ImageNet per-channel mean of RGB in [0, 1] (torchvision's constants).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
#: ImageNet per-channel standard deviation of RGB in [0, 1] (torchvision's constants).
IMAGENET_STD = (0.229, 0.224, 0.225)

#: File suffixes (lower case) that are read as images.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


def _read_errors() -> tuple[type[BaseException], ...]:
    from PIL import Image, UnidentifiedImageError

    return (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)


#: What reading an image can raise for a bad file (Pillow, the OS, a decompression bomb).
READ_ERRORS = _read_errors()

#: 16-bit and 32-bit integer modes Pillow opens greyscale PNG / TIFF files in; RGB conversion would clip them.
_WIDE_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}


def to_rgb(im):
    """An 8-bit RGB copy of a Pillow image; 16-bit greyscale is scaled (``v * 255 / 65535``)
    instead of being clipped at 255 as ``Image.convert("RGB")`` does.

    Parameters
    ----------
    im : PIL.Image.Image
        Any mode; ``I`` (32-bit) is read as 16-bit data, the only depth PNG and TIFF use for it.

    Returns
    -------
    PIL.Image.Image
        Mode ``RGB``.
    """
    from PIL import Image

    top = _WIDE_MODES.get(im.mode)
    if top is None:
        return im.convert("RGB")
    a = np.asarray(im, dtype=np.float64)
    a8 = np.clip(np.round(a * (255.0 / top)), 0, 255).astype(np.uint8)
    return Image.fromarray(a8, mode="L").convert("RGB")


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a file with an image suffix (:data:`IMAGE_EXTENSIONS`, any case)."""
    p = Path(path)
    return p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()


def read_rgb(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """One image as RGB.

    Parameters
    ----------
    source : path or bytes
        An image file, or its bytes (e.g. a member of a zip archive).
    name : str, optional
        What to call the image in an error (default: the path, or ``"image bytes"``).

    Returns
    -------
    numpy.ndarray, shape (H, W, 3), uint8
        Greyscale, palette and RGBA images are converted with Pillow's ``convert("RGB")``;
        16-bit greyscale is scaled to 8 bits (:func:`to_rgb`).

    Raises
    ------
    ValueError
        ``cannot read NAME as an image (...)`` when Pillow cannot decode it.
    FileNotFoundError
        When the path does not exist.
    """
    from PIL import Image

    if isinstance(source, (bytes, bytearray)):
        label = name or "image bytes"
        fh = io.BytesIO(source)
    else:
        label = name or str(source)
        if not Path(source).is_file():
            raise FileNotFoundError(f"no such image: {source}")
        fh = source
    try:
        with Image.open(fh) as im:
            im.load()
            rgb = to_rgb(im)
    except READ_ERRORS as exc:
        raise ValueError(f"cannot read {label} as an image ({type(exc).__name__}: {exc})") from None
    return np.asarray(rgb, dtype=np.uint8)


def channels_first(images: np.ndarray) -> np.ndarray:
    """Move the channel axis from last to third-last: ``(..., H, W, C)`` -> ``(..., C, H, W)``.

    The layout of image files and video frames (height, width, channel) against torch's
    (channel, height, width). The dtype is kept; the result is C-contiguous, so
    ``torch.from_numpy`` takes it without a copy.

    Parameters
    ----------
    images : numpy.ndarray, shape (..., H, W, C), at least 3-D

    Returns
    -------
    numpy.ndarray, shape (..., C, H, W)
    """
    a = np.asarray(images)
    if a.ndim < 3:
        raise ValueError(f"images must have shape (..., H, W, C), got shape {a.shape}")
    return np.ascontiguousarray(np.moveaxis(a, -1, -3))


def channels_last(images) -> np.ndarray:
    """Move the channel axis from third-last to last: ``(..., C, H, W)`` -> ``(..., H, W, C)``.

    The inverse of :func:`channels_first`, for writing or drawing what a model produced. A torch
    tensor is moved to the CPU first; the result is a C-contiguous numpy array of the same dtype.

    Parameters
    ----------
    images : numpy.ndarray or torch.Tensor, shape (..., C, H, W), at least 3-D

    Returns
    -------
    numpy.ndarray, shape (..., H, W, C)
    """
    a = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)  # a torch tensor
    if a.ndim < 3:
        raise ValueError(f"images must have shape (..., C, H, W), got shape {a.shape}")
    return np.ascontiguousarray(np.moveaxis(a, -3, -1))


def resize_images(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize ``(B, 3, H, W)`` float images to ``size`` for a model: bilinear, antialiased.

    Downscaling low-pass filters first (torch's ``antialias=True``: the bilinear kernel widened by
    the scale factor, as Pillow does), so a grating above the new Nyquist frequency fades instead
    of folding into a false low frequency at another orientation. Images already at ``size`` are
    returned unchanged (the same tensor).

    Parameters
    ----------
    images : torch.Tensor, shape (B, C, H, W), floating point
    size : int or (int, int)
        Output side, or (height, width).

    Returns
    -------
    torch.Tensor, shape (B, C, size, size) or (B, C, height, width)
    """
    import torch.nn.functional as F

    hw = (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    if tuple(images.shape[-2:]) == hw:
        return images
    return F.interpolate(images, size=hw, mode="bilinear", align_corners=False, antialias=True)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """ImageNet normalisation ``(x - mean) / std`` per channel of ``(B, 3, H, W)`` images in [0, 1]."""
    import torch

    mean = torch.tensor(IMAGENET_MEAN, device=images.device, dtype=images.dtype)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD, device=images.device, dtype=images.dtype)[None, :, None, None]
    return (images - mean) / std


class StimulusImages:
    """The images of a stimulus set, read on demand at a model's input size.

    Slicing reads only the slice, so :func:`neurocwm.features.layer_responses` streams a large
    stimulus set through a model batch by batch without holding every image in memory. Each image
    is read as RGB (:func:`read_rgb`), scaled to [0, 1] and resized with :func:`resize_images`.

    Parameters
    ----------
    stimuli : neurocwm.assemblies.StimulusSet
        Anything with ``read_bytes(stimulus_id)``.
    stimulus_ids : sequence of str
        Which images, in this order.
    size : int
        Side in pixels of the images returned.

    Examples
    --------
    >>> imgs = StimulusImages(stimuli, ids, 64)     # doctest: +SKIP
    >>> imgs[0:8].shape                             # doctest: +SKIP
    (8, 3, 64, 64)
    """

    def __init__(self, stimuli, stimulus_ids: Sequence[str], size: int) -> None:
        if int(size) < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.stimuli = stimuli
        self.stimulus_ids = [str(s) for s in stimulus_ids]
        self.size = int(size)

    def __len__(self) -> int:
        return len(self.stimulus_ids)

    def image(self, stimulus_id: str) -> torch.Tensor:
        """One stimulus, ``(3, size, size)`` float32 in [0, 1]."""
        import torch

        rgb = read_rgb(self.stimuli.read_bytes(stimulus_id), name=f"stimulus {stimulus_id!r}")
        x = torch.from_numpy(channels_first(rgb)).float().div_(255.0)
        return resize_images(x[None], self.size)[0]

    def __getitem__(self, index: int | slice) -> np.ndarray:
        """``(3, size, size)`` for an index, ``(n, 3, size, size)`` float32 for a slice."""
        import torch

        if isinstance(index, slice):
            ids = self.stimulus_ids[index]
            if not ids:
                return np.empty((0, 3, self.size, self.size), np.float32)
            return torch.stack([self.image(s) for s in ids]).numpy()
        return self.image(self.stimulus_ids[index]).numpy()
