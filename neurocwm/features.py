"""Responses of a run's mapped layers to a stimulus set: batched, CPU or GPU, memory-bounded.

The mapped layers are the ones laid on the cortical sheet: the 8 block outputs of a TDANN
(``layer1.0`` ... ``layer4.1``) or the MLP hidden layers of a CWM's encoder
(``encoder.<i>.mlp``, the hidden channels at every frame-0 token). A unit is one element of the
``(C, H, W)`` layer output, flattened C-major as :mod:`topography.sheet` orders positions.

This is the one feature path: ``score``, ``predict``, ``positions``, ``fmri`` and the layers
``brainscore export`` commits all take their responses from :func:`layer_responses`. Images are
resized for the model in one place, :func:`neurocwm.images.resize_images` (bilinear, antialiased).

* :func:`forward_layers` - one batch of images in [0, 1] -> ``{layer: (B, C, H, W)}``.
* :func:`layer_responses` - a whole stimulus set (an array, or image files read batch by batch
  with :class:`neurocwm.images.StimulusImages`) -> ``{layer: (n_images, n_units)}`` float32, kept
  in memory, or streamed batch by batch into a netCDF file (h5netcdf) when ``path`` is given or
  the responses would exceed ``max_memory_gb``; the file opens lazily with xarray, so analyses can
  read one layer (or a slice of units) at a time. ``units=`` keeps a subset of a layer's units
  (:func:`unit_subsets`).
* :func:`open_responses` - reopen such a file.
* :func:`run_sheet` - the unit positions of a run (its saved sheet, or for a run without one the
  default retinotopic sheet of its layers, seeded by the run's seed).

>>> from neurocwm.runs import load_run                          # doctest: +SKIP
>>> from topography.gratings import sine_gratings               # doctest: +SKIP
>>> run = load_run("runs/tdann-simclr-alpha0.5-seed0")           # doctest: +SKIP
>>> images, meta = sine_gratings(run.config["image_size"])      # doctest: +SKIP
>>> resp = layer_responses(run, images, layers=["layer2.0"])    # doctest: +SKIP
>>> resp["layer2.0"].shape                                      # doctest: +SKIP
(640, 8192)
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from neurocwm.families import family_name, family_of
from neurocwm.images import IMAGENET_MEAN, IMAGENET_STD, normalize, resize_images  # noqa: F401 - re-exported

__all__ = [
    "model_family",
    "input_size",
    "layer_dims",
    "layer_areas",
    "feature_readout",
    "run_sheet",
    "unit_subsets",
    "forward_layers",
    "layer_responses",
    "open_responses",
]

#: Default bound on the responses kept in memory before :func:`layer_responses` streams to disk.
DEFAULT_MAX_MEMORY_GB = 4.0


def model_family(run) -> str:
    """The run's ``model_family`` (``"tdann"``, ``"cwm"``, ``"optcwm"``; :mod:`neurocwm.families`)."""
    return family_name(run.config)


def input_size(run) -> int:
    """Side in pixels of the images the run's model takes."""
    return family_of(run.config).input_size(run)


def layer_dims(run) -> dict[str, tuple[int, int, int]]:
    """``(C, H, W)`` of every mapped layer of a run, in network order."""
    return family_of(run.config).layer_dims(run)


def layer_areas(run) -> dict[str, str]:
    """Cortical area of every mapped layer: the run's saved sheet, else the default areas.

    The default is what :func:`run_sheet` builds for a run without positions: the depth split of a
    CWM's encoder into V1, V2, V4 and VTC quarters (:func:`neurocwm.cwm.model.block_areas`), or
    the ResNet-18 areas of Margalit et al. (2024) (:data:`topography.sheet.RESNET18_AREAS`).
    """
    if run.sheet is not None:
        return {layer.name: layer.area for layer in run.sheet}
    return family_of(run.config).default_areas(run)


def run_sheet(run):
    """The run's :class:`topography.sheet.CorticalSheet`.

    A run trained without positions (a CWM at ``alpha = 0``) gets the default retinotopic sheet of
    its layers (the run's ``scale`` and ``seed``); ``sheet.meta["source"]`` says which.
    """
    from topography.sheet import build_sheet

    if run.sheet is not None:
        run.sheet.meta.setdefault("source", "run")
        return run.sheet
    dims = layer_dims(run)
    areas = family_of(run.config).sheet_areas(run)
    sheet = build_sheet(
        dims,
        areas=areas,
        scale=run.config.get("scale", "human"),
        n_windows=int(run.config.get("n_neighborhood_windows", 5000)),
        seed=int(run.config.get("seed", 0)),
    )
    sheet.meta["source"] = "default retinotopic (the run saved no positions)"
    return sheet


def unit_subsets(dims: Mapping[str, Sequence[int]], max_units: int | None, seed: int = 0) -> dict[str, np.ndarray]:
    """Column indices of the units kept per layer: all, or a seeded random subset for large layers.

    Parameters
    ----------
    dims : dict layer -> (C, H, W)
        In network order (:func:`layer_dims`); the subsets are drawn in this order from one
        generator, so a layer's subset depends on the layers before it.
    max_units : int or None
        Layers with more than ``max_units`` units keep ``max_units`` of them, drawn without
        replacement and sorted; ``None`` or 0 keeps every unit.
    seed : int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    dict layer -> numpy.ndarray (n_kept,) int64
        Ascending indices into the C-major flattened ``(C, H, W)`` units.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name, d in dims.items():
        n = int(np.prod(d))
        out[name] = (
            np.arange(n)
            if (not max_units or n <= max_units)
            else np.sort(rng.choice(n, size=int(max_units), replace=False))
        )
    return out


def _prepare(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (n, 3, H, W), got shape {tuple(images.shape)}")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")
    return resize_images(images, size)


def feature_readout(run) -> dict[str, str]:
    """How :func:`forward_layers` shows images to the run's model, in words (recorded in outputs)."""
    size = input_size(run)
    model_input = family_of(run.config).feature_input
    return {"resize": f"whole image to {size} x {size}, bilinear, antialiased", "input": model_input}


@torch.no_grad()
def forward_layers(run, images: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Mapped-layer outputs ``{layer: (B, C, H, W)}`` for a batch of RGB ``images`` in [0, 1].

    Images of another size are resized to the model's input with
    :func:`neurocwm.images.resize_images` (bilinear, antialiased). A TDANN gets ImageNet
    normalisation (as in training). A CWM sees each image as a static clip, the image as every
    frame and the last frame fully hidden, and its units are the MLP hidden units of the frame-0
    tokens (:meth:`neurocwm.cwm.model.CWM.hidden_units`): the static-image readout of the CWM
    papers, which replicate one image into a static clip (Bear et al. 2023, segmentation) and read
    features with the last frame fully hidden (Venkatesh et al. 2024, the Physion readout).
    A TDANN trunk that can stop early (``forward_blocks``,
    :class:`neurocwm.models.resnet.SpatialResNet18`) is run only as far as the last requested
    layer (the outputs are the same).
    """
    device = next(run.model.parameters()).device
    x = _prepare(images.to(device=device, dtype=torch.float32), input_size(run))
    blocks = family_of(run.config).forward_layers(run, x, layers)  # neurocwm.families: per-family extraction
    if layers is None:
        return dict(blocks)
    missing = [name for name in layers if name not in blocks]
    if missing:
        raise ValueError(f"the model has no layer(s) {missing}; its mapped layers are {list(blocks)}")
    return {name: blocks[name] for name in layers}


def _batches(images, batch_size: int):
    """(start, float32 tensor batch) over an (N, 3, H, W) array or tensor."""
    n = len(images)
    for s in range(0, n, batch_size):
        chunk = images[s : s + batch_size]
        t = (
            chunk
            if isinstance(chunk, torch.Tensor)
            else torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32))
        )
        yield s, t.float()


def _store(dst: np.ndarray, t: torch.Tensor, pool: str | None, keep: torch.Tensor | None = None) -> None:
    """Write one batch of a layer's outputs ``t`` (B, C, H, W) into the rows ``dst`` (B, width).

    One copy, done by torch (threaded, any memory layout or device); channel-max pooling is a
    torch ``amax``: the same maxima as :func:`topography.dimensionality.channel_max_pool`, with its
    NaN check. ``keep`` (column indices) selects units of the flattened output.
    """
    if pool == "channel_max":
        v = t.amax(dim=(2, 3))
        if torch.isnan(v).any():  # amax propagates NaN: a NaN feature gives a NaN maximum
            raise ValueError("features contain NaN")
        torch.from_numpy(dst).copy_(v)
    elif keep is not None:
        torch.from_numpy(dst).copy_(t.reshape(t.shape[0], -1).index_select(1, keep.to(t.device)))
    else:
        torch.from_numpy(dst).view(t.shape).copy_(t)


def layer_responses(
    run,
    images: np.ndarray | torch.Tensor,
    layers: Sequence[str] | None = None,
    *,
    batch_size: int = 64,
    pool: str | None = None,
    path: str | os.PathLike | None = None,
    max_memory_gb: float = DEFAULT_MAX_MEMORY_GB,
    attrs: Mapping | None = None,
    progress: bool = True,
    desc: str = "responses",
    units: Mapping[str, np.ndarray] | None = None,
):
    """Responses of mapped layers to every image.

    Parameters
    ----------
    run : neurocwm.runs.Run
        An opened run (:func:`neurocwm.runs.load_run`); its model's device is used.
    images : array or tensor (n_images, 3, H, W), or a lazy sequence of them
        RGB in [0, 1], any size (resized to the model input by
        :func:`neurocwm.images.resize_images`). Anything whose slices ``images[a:b]`` are such
        arrays works, e.g. :class:`neurocwm.images.StimulusImages`, which reads image files batch
        by batch.
    layers : sequence of str, optional
        Mapped layers to keep; default all.
    batch_size : int, default 64
    pool : {None, "channel_max"}
        ``None`` keeps every unit (``C * H * W`` columns); ``"channel_max"`` keeps one value per
        channel, the maximum over space (:func:`topography.dimensionality.channel_max_pool`,
        the effective-dimensionality features of Margalit et al. 2024, Fig. 6), before anything is stored.
    path : path, optional
        Stream the responses into this netCDF file (written atomically: a temporary file renamed
        at the end) and return it opened lazily.
    max_memory_gb : float, default 4
        Without ``path``, responses larger than this are streamed to a temporary netCDF file
        instead of being held in memory (a warning says where).
    attrs : mapping, optional
        Recorded in the file's attributes (JSON), e.g. the resolved configuration.
    progress : bool
        Show a progress bar.
    desc : str
        Label of the progress bar.
    units : dict layer -> int array, optional
        Keep only these columns of a layer's flattened ``(C, H, W)`` units (e.g. a seeded subset
        of a very large layer, :func:`unit_subsets`); layers not named keep every unit. Not
        combined with ``pool``.

    Returns
    -------
    dict of str to numpy.ndarray (n_images, n_units) float32, or xarray.Dataset
        In memory: a dict. On disk: an :class:`xarray.Dataset` with one variable per layer (named
        as the layer) over dimensions ``("presentation", "unit_<layer>")``, backed lazily by the
        file; ``np.asarray(ds[layer])`` reads one layer.

    Raises
    ------
    ValueError
        On a bad image array (shape, NaN), an unknown layer or an empty stimulus set.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if pool not in (None, "channel_max"):
        raise ValueError(f"pool must be None or 'channel_max', got {pool!r}")
    n = len(images)
    if n == 0:
        raise ValueError("no images")
    dims = layer_dims(run)
    names = list(dims if layers is None else layers)
    unknown = [k for k in names if k not in dims]
    if unknown:
        raise ValueError(f"the model has no layer(s) {unknown}; its mapped layers are {list(dims)}")
    keep = _keep_columns(units, dims, names, pool)
    widths = {k: (dims[k][0] if pool else len(keep[k]) if k in keep else int(np.prod(dims[k]))) for k in names}
    total_gb = n * sum(widths.values()) * 4 / 1e9
    if path is None and total_gb > max_memory_gb:
        fd, tmp = tempfile.mkstemp(suffix=".nc", prefix="neurocwm-responses-")
        os.close(fd)
        path = tmp
        warnings.warn(
            f"responses need {total_gb:.1f} GB (> max_memory_gb={max_memory_gb:g}): streaming them to {path}",
            stacklevel=2,
        )
    starts = _batches(images, batch_size)
    if progress:
        from neurocwm.progress import progress_bar as tqdm

        starts = tqdm(starts, total=math.ceil(n / batch_size), desc=desc, unit="batch", leave=False)
    run.model.eval()
    if path is None:
        out = {k: np.empty((n, widths[k]), dtype=np.float32) for k in names}
        with torch.inference_mode():
            for s, x in starts:
                for k, t in forward_layers(run, x, names).items():
                    _store(out[k][s : s + len(x)], t, pool, keep.get(k))
        return out
    return _stream(run, starts, names, widths, n, Path(path), pool, attrs, keep)


def _keep_columns(units, dims, names, pool) -> dict[str, torch.Tensor]:
    """Validated ``units`` of :func:`layer_responses` as int64 tensors (only for a kept subset)."""
    if not units:
        return {}
    if pool is not None:
        raise ValueError(f"units and pool={pool!r} cannot be combined")
    out = {}
    for k, idx in units.items():
        if k not in names:
            raise ValueError(f"units names layer {k!r}, which is not among the layers asked for {names}")
        n = int(np.prod(dims[k]))
        idx = np.asarray(idx)
        bad = idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer)
        if bad or (idx.size and (idx.min() < 0 or idx.max() >= n)):
            raise ValueError(
                f"units[{k!r}] must be a 1-D array of indices in [0, {n}), got shape {idx.shape}, dtype {idx.dtype}"
            )
        if len(idx) != n or not np.array_equal(idx, np.arange(n)):
            out[k] = torch.from_numpy(idx.astype(np.int64))
    return out


def _stream(run, starts, names, widths, n, path: Path, pool, attrs, keep):
    import h5netcdf

    from topography.fileio import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with h5netcdf.File(tmp, "w") as f:
            f.dimensions["presentation"] = n
            for k in names:
                f.dimensions[f"unit_{k}"] = widths[k]
            var = {
                k: f.create_variable(
                    k, ("presentation", f"unit_{k}"), "f4", chunks=(min(n, 64), min(widths[k], 1 << 16))
                )
                for k in names
            }
            f.attrs["neurocwm"] = json.dumps({"pool": pool, "layers": names, **dict(attrs or {})}, default=str)
            with torch.inference_mode():
                for s, x in starts:
                    for k, t in forward_layers(run, x, names).items():
                        buf = np.empty((len(x), widths[k]), dtype=np.float32)
                        _store(buf, t, pool, keep.get(k))
                        var[k][s : s + len(x), :] = buf
    return open_responses(path)


def open_responses(path: str | os.PathLike):
    """Open a responses file written by :func:`layer_responses` (lazily, with xarray)."""
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no responses file {path}")
    try:
        return xr.open_dataset(path, engine="h5netcdf")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable netCDF responses file: {exc}") from None
