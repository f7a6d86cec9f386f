"""The VPNL fLoc functional-localizer stimuli (Stigliani et al. 2015).

The original fLoc layout is one folder per category holding ``<category>-<n>.jpg`` files::

    stimuli/
        adult/adult-1.jpg ... adult-144.jpg
        body/body-1.jpg ...
        ...

Eleven categories of 144 grayscale images each. TDANN (Margalit et al. 2024, Neuron,
STAR Methods) groups ten of them into five domains and drops ``scrambled``; the selectivity of a
unit for a domain contrasts the domain's two categories ("on") against the other eight ("off").

:func:`load_floc` reads the images into one float32 array (N x 3 x H x W, values in [0, 1],
grayscale replicated to three channels), sorted by category then by the numeric ``n`` in the
file name, so that the order never depends on the file system.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from neurocwm.images import IMAGE_EXTENSIONS, channels_first, read_rgb

#: The five fLoc domains and their two categories each (Margalit et al. 2024, Neuron, STAR Methods).
DOMAINS: dict[str, tuple[str, str]] = {
    "Faces": ("adult", "child"),
    "Bodies": ("body", "limb"),
    "Characters": ("word", "number"),
    "Places": ("house", "corridor"),
    "Objects": ("car", "instrument"),
}

#: Categories present in the fLoc set that belong to no domain; not loaded by default, so they are
#: neither "on" nor "off" for any domain (the reference drops them).
EXCLUDED_CATEGORIES: tuple[str, ...] = ("scrambled",)

#: The ten domain categories, in the deterministic (alphabetical) loading order.
DOMAIN_CATEGORIES: tuple[str, ...] = tuple(sorted(c for pair in DOMAINS.values() for c in pair))


@dataclass(frozen=True)
class FlocStimuli:
    """Loaded fLoc images.

    Attributes
    ----------
    images : numpy.ndarray of shape (n_images, 3, height, width), dtype float32
        Pixel values in [0, 1]; grayscale images are replicated to three channels.
    categories : numpy.ndarray of shape (n_images,), dtype str
        The category (folder name) of every image.
    paths : list of pathlib.Path
        The file of every image, in the same order.
    n_skipped : int
        How many files could not be decoded and were skipped.
    skipped : list of pathlib.Path
        Those files.
    """

    images: np.ndarray
    categories: np.ndarray
    paths: list[Path]
    n_skipped: int = 0
    skipped: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _resolve_root(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"fLoc stimulus folder not found: {root}")
    # Accept the dataset folder as well as its ``stimuli`` sub-folder.
    if (root / "stimuli").is_dir():
        root = root / "stimuli"
    return root


def list_floc_files(
    root: str | os.PathLike,
    categories: Sequence[str] | None = None,
    include_excluded: bool = False,
) -> list[tuple[str, int, Path]]:
    """List the fLoc image files in their deterministic order.

    Parameters
    ----------
    root : str or path-like
        The ``stimuli`` folder (or its parent) holding one sub-folder per category.
    categories : sequence of str, optional
        Categories to list. Default: the ten domain categories (:data:`DOMAIN_CATEGORIES`),
        plus :data:`EXCLUDED_CATEGORIES` if ``include_excluded``.
    include_excluded : bool, default False
        With ``categories=None``, also list ``scrambled``.

    Returns
    -------
    list of (str, int, pathlib.Path)
        ``(category, n, path)`` sorted by category name, then by the integer ``n`` of
        ``<category>-<n>.<ext>`` (so ``adult-2`` comes before ``adult-10``). Files whose name does
        not follow that pattern are ignored.

    Raises
    ------
    FileNotFoundError
        If ``root`` or a requested category folder does not exist.
    ValueError
        If ``categories`` is empty or has duplicates, or no image file is found at all.
    """
    root = _resolve_root(root)
    if categories is None:
        categories = list(DOMAIN_CATEGORIES) + (list(EXCLUDED_CATEGORIES) if include_excluded else [])
    categories = [str(c) for c in categories]
    if not categories:
        raise ValueError("categories is empty")
    if len(set(categories)) != len(categories):
        raise ValueError(f"categories has duplicates: {categories}")

    entries: list[tuple[str, int, Path]] = []
    for category in sorted(categories):
        folder = root / category
        if not folder.is_dir():
            raise FileNotFoundError(f"fLoc category folder not found: {folder}")
        pattern = re.compile(rf"^{re.escape(category)}-(\d+)$", re.IGNORECASE)
        found = []
        for path in folder.iterdir():
            if not path.is_file() or path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            match = pattern.match(path.stem)
            if match:
                found.append((category, int(match.group(1)), path))
        found.sort(key=lambda e: (e[1], e[2].name))
        entries.extend(found)
    if not entries:
        raise ValueError(f"no fLoc images (<category>-<n>.jpg) found under {root} for categories {sorted(categories)}")
    return entries


def _parse_size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        h = w = int(size)
    else:
        size = tuple(int(s) for s in size)
        if len(size) != 2:
            raise ValueError(f"size must be an int or (height, width), got {size}")
        h, w = size
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {(h, w)}")
    return h, w


def load_floc(
    root: str | os.PathLike,
    size: int | Sequence[int] = 224,
    categories: Sequence[str] | None = None,
    include_excluded: bool = False,
) -> FlocStimuli:
    """Load fLoc images as a float32 array N x 3 x H x W in [0, 1].

    Parameters
    ----------
    root : str or path-like
        The ``stimuli`` folder (or its parent) with one sub-folder per category holding
        ``<category>-<n>.jpg`` files of any size and mode.
    size : int or (int, int), default 224
        Output height and width (an int gives a square). Every image is resized to exactly this
        size with bilinear interpolation (fLoc images are square, so no aspect change there).
    categories : sequence of str, optional
        Categories to load; default the ten domain categories (``scrambled`` excluded).
    include_excluded : bool, default False
        With ``categories=None``, also load ``scrambled``.

    Returns
    -------
    FlocStimuli
        Images, per-image category labels, file paths, and the files that were skipped.

    Raises
    ------
    FileNotFoundError
        If ``root`` or a category folder is missing.
    ValueError
        If no image is found, or every image found is unreadable, or ``size`` is invalid.

    Warns
    -----
    UserWarning
        When files cannot be decoded: they are skipped, and one warning says how many and which.

    Notes
    -----
    Grayscale (and any other mode) is converted with PIL's ``convert("RGB")``, which replicates
    a single channel to three. Values are ``uint8 / 255``; no ImageNet normalisation is applied
    (that belongs to the model's preprocessing).
    """
    h, w = _parse_size(size)
    entries = list_floc_files(root, categories, include_excluded)
    images = np.empty((len(entries), 3, h, w), dtype=np.float32)
    labels: list[str] = []
    paths: list[Path] = []
    skipped: list[Path] = []
    for category, _, path in entries:
        try:
            rgb = Image.fromarray(read_rgb(path))
        except ValueError:
            skipped.append(path)
            continue
        if rgb.size != (w, h):
            rgb = rgb.resize((w, h), Image.Resampling.BILINEAR)
        arr = np.asarray(rgb, dtype=np.float32) / np.float32(255.0)
        images[len(labels)] = channels_first(arr)
        labels.append(category)
        paths.append(path)
    if skipped:
        names = ", ".join(str(p) for p in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        warnings.warn(
            f"skipped {len(skipped)} unreadable fLoc image(s) of {len(entries)}: {names}",
            UserWarning,
            stacklevel=2,
        )
    if not labels:
        raise ValueError(f"all {len(entries)} fLoc image files under {root} are unreadable")
    if skipped:
        images = images[: len(labels)].copy()
    return FlocStimuli(
        images=images,
        categories=np.asarray(labels, dtype=str),
        paths=paths,
        n_skipped=len(skipped),
        skipped=skipped,
    )


def domain_masks(
    categories: Sequence[str] | np.ndarray,
    domains: dict[str, Sequence[str]] | None = None,
) -> dict[str, np.ndarray]:
    """Boolean "on" mask of every domain over a vector of image categories.

    Parameters
    ----------
    categories : sequence of str
        Category label of every image (e.g. :attr:`FlocStimuli.categories`).
    domains : dict of str to sequence of str, optional
        Domain name -> its categories; default :data:`DOMAINS`.

    Returns
    -------
    dict of str to numpy.ndarray of bool, shape (n_images,)
    """
    domains = DOMAINS if domains is None else domains
    labels = np.asarray(categories, dtype=str)
    return {name: np.isin(labels, list(cats)) for name, cats in domains.items()}
