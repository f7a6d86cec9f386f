"""Import a published TDANN (Margalit et al. 2024, Neuron) as an ordinary run folder.

The published models are VISSL checkpoints (``model_final_checkpoint_phase199.torch``): the
weights sit at ``ckpt["classy_state_dict"]["base_model"]["model"]["trunk"]`` and ``["heads"]``.
The trunk holds every tensor twice, as ``base_model.<torchvision resnet18 name>`` and as
``_feature_blocks.<alias>`` (``conv1``, ``layer1_0`` ... ``layer4_1``; no ``bn1``): the
``base_model`` copy is preferred, the alias copy is the fallback, and both copies are consumed (and
must agree). Heads: SimCLR ``0.0.clf.0.*`` (512 x 512) then ``0.1.clf.0.*`` (128 x 512); a linear
(supervised) head ``0.clf.0.*``.

Unit positions come from a spacetorch positions folder: one ``<layer>.pkl`` (a pickled
``spacetorch.models.positions.LayerPositions``, read with a restricted unpickler) or ``<layer>.npz``
(``np.savez(**vars(LayerPositions))``) per block, plus an optional ``version.txt``. Unit ``i`` is
element ``i`` of ``torch.flatten(block_output, 1)`` (channel-major). Coordinates (mm) and
neighbourhoods are kept as published (float32, as the reference trains with them). Position files
without ``version.txt`` (version 1) are at the scale the models were trained at; the reference's
analyses multiply them by 0.6 / 1.5 / 1.75 / 1.4 / 7 (retina / V1 / V2 / V4 / VTC) to compare with
human cortex, which ``human_scale=True`` reproduces. Each layer's tissue extent is recorded.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from topography.sheet import FORMAT_NAME, FORMAT_VERSION, RESNET18_AREAS, CorticalSheet, LayerSheet

from .common import PREPROCESSING, StrictState, check_keys, check_out, file_record, load_into, write_run
from .unpickle import load_layer_positions_pickle, load_torch_checkpoint

__all__ = [
    "BLOCKS",
    "CITATION",
    "read_vissl_checkpoint",
    "read_positions_folder",
    "import_tdann",
    "published_variant",
    "HUMAN_SCALE_FACTORS",
]

BLOCKS = ("layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1")
CITATION = (
    "Margalit, E., Lee, H., Finzi, D., DiCarlo, J. J., Grill-Spector, K., & Yamins, D. L. K. (2024). "
    "A unifying framework for functional organization in early and higher ventral visual cortex. Neuron."
)
LICENCE = "no licence file in the release (osf.io/64qv3); cite the paper"

#: Factors the reference's analyses apply to version-1 position files (training scale -> human).
HUMAN_SCALE_FACTORS = {
    "layer1.0": 0.6,
    "layer1.1": 0.6,
    "layer2.0": 1.5,
    "layer2.1": 1.5,
    "layer3.0": 1.75,
    "layer3.1": 1.4,
    "layer4.0": 7.0,
    "layer4.1": 7.0,
}

_WIDTH_ARCH = {64: "resnet18", 32: "resnet18_w32", 16: "resnet18_w16"}
_ALPHAS = {"lw0": 0.0, "lw01": 0.1, "": 0.25, "lwx2": 0.5, "lwx5": 1.25, "lwx10": 2.5, "lwx100": 25.0}
_FIELDS = ("name", "dims", "coordinates", "neighborhood_indices", "neighborhood_width")


# ------------------------------------------------------------------------------------------
# checkpoint


@dataclass
class VisslCheckpoint:
    """What :func:`read_vissl_checkpoint` found.

    Attributes
    ----------
    trunk : dict
        torchvision ResNet-18 name (``conv1.weight``, ``layer2.0.downsample.1.running_mean``, ...)
        -> tensor.
    head : dict
        Our head name (``net.0.weight`` ... for SimCLR, ``weight``/``bias`` for a linear head) -> tensor.
    objective : str
        ``simclr`` or ``supervised``.
    num_classes : int or None
    width : int
        Channels of the first stage.
    trunk_copies : dict
        How many trunk tensors came from ``base_model`` and from ``_feature_blocks``.
    info : dict
        Top-level scalars of the file (``phase_idx``, ``iteration``, ...).
    """

    trunk: dict[str, torch.Tensor]
    head: dict[str, torch.Tensor]
    objective: str
    num_classes: int | None
    width: int
    trunk_copies: dict[str, int]
    info: dict[str, Any]


def _alias(name: str) -> str:
    """torchvision name -> ``_feature_blocks`` alias (``layer2.0.conv1.weight`` -> ``layer2_0.conv1.weight``)."""
    m = re.match(r"^(layer\d)\.(\d+)\.(.*)$", name)
    return f"{m.group(1)}_{m.group(2)}.{m.group(3)}" if m else name


def _expected_trunk_keys(width: int) -> list[str]:
    from neurocwm.models.resnet import SpatialResNet18

    return list(SpatialResNet18(width=width).state_dict())


def read_vissl_checkpoint(path: str | Path) -> VisslCheckpoint:
    """Read a published TDANN VISSL checkpoint exactly.

    Parameters
    ----------
    path : path
        ``model_final_checkpoint_phase199.torch`` (loaded with ``weights_only=True``).

    Returns
    -------
    VisslCheckpoint

    Raises
    ------
    ValueError
        Not the published layout: a missing nesting level, a trunk or head key that does not belong
        (the first one is named), a missing tensor, disagreeing copies, an unknown width.
    """
    path = Path(path)
    ckpt = load_torch_checkpoint(path)
    where = "ckpt"
    node: Any = ckpt
    for key in ("classy_state_dict", "base_model", "model"):
        if not isinstance(node, dict) or key not in node:
            have = sorted(node)[:6] if isinstance(node, dict) else type(node).__name__
            raise ValueError(f"{path}: not a VISSL checkpoint (no {where}[{key!r}]; found {have})")
        node = node[key]
        where += f"[{key!r}]"
    if not isinstance(node, dict) or "trunk" not in node:
        raise ValueError(f"{path}: not a VISSL checkpoint (no {where}['trunk'])")
    trunk_raw, heads_raw = node["trunk"], node.get("heads", {})
    extra = [k for k in node if k not in ("trunk", "heads")]
    if extra:
        raise ValueError(f"{path}: unexpected entry {where}[{extra[0]!r}]")
    for k, v in list(trunk_raw.items()) + list(heads_raw.items()):
        if not torch.is_tensor(v):
            raise ValueError(f"{path}: {k!r} is a {type(v).__name__}, not a tensor")
    bad = [k for k in trunk_raw if not (k.startswith("base_model.") or k.startswith("_feature_blocks."))]
    if bad:
        raise ValueError(f"{path}: unexpected trunk key {bad[0]!r}; not a TDANN spatial_resnet18 trunk")
    first = trunk_raw.get("base_model.conv1.weight", trunk_raw.get("_feature_blocks.conv1.weight"))
    if first is None or first.ndim != 4 or tuple(first.shape[1:]) != (3, 7, 7):
        raise ValueError(f"{path}: no ResNet conv1 weight (3 x 7 x 7) in the trunk; not a ResNet-18 trunk")
    width = int(first.shape[0])
    if width not in _WIDTH_ARCH:
        raise ValueError(f"{path}: ResNet-18 of width {width}; importable widths are {sorted(_WIDTH_ARCH)}")
    names = _expected_trunk_keys(width)
    known = {f"base_model.{k}" for k in names} | {f"_feature_blocks.{_alias(k)}" for k in names}
    unexpected = [k for k in trunk_raw if k not in known]
    if unexpected:
        raise ValueError(
            f"{path}: unexpected trunk key {unexpected[0]!r} ({len(unexpected)} in all); not the "
            "TDANN spatial_resnet18 layout"
        )
    state = StrictState(trunk_raw, f"{path.name} trunk")
    trunk: dict[str, torch.Tensor] = {}
    copies = {"base_model": 0, "_feature_blocks": 0}
    for name in names:
        main, alias = f"base_model.{name}", f"_feature_blocks.{_alias(name)}"
        have_main, have_alias = main in state.tensors, alias in state.tensors
        if have_main:
            trunk[name] = state.take(main)
            copies["base_model"] += 1
            if have_alias:
                other = state.take(alias)
                if other.shape != trunk[name].shape or not torch.equal(other, trunk[name]):
                    raise ValueError(f"{path}: {main} and {alias} differ; the two copies must be equal")
        elif have_alias:
            trunk[name] = state.take(alias)
            copies["_feature_blocks"] += 1
        else:
            raise ValueError(f"{path}: trunk has no tensor for {name} (neither {main} nor {alias})")
    state.finish()
    head, objective, num_classes = _read_head(heads_raw, path, width * 8)
    info = {
        k: (v.item() if torch.is_tensor(v) and v.numel() == 1 else v)
        for k, v in ckpt.items()
        if k in ("phase_idx", "iteration", "iteration_num", "train_phase_idx")
    }
    info = {k: v for k, v in info.items() if isinstance(v, (int, float))}
    return VisslCheckpoint(trunk, head, objective, num_classes, width, copies, info)


def _read_head(heads: dict, path: Path, features: int):
    state = StrictState(heads, f"{path.name} heads")
    if "0.0.clf.0.weight" in heads:
        w1, b1 = state.take("0.0.clf.0.weight"), state.take("0.0.clf.0.bias")
        w2, b2 = state.take("0.1.clf.0.weight"), state.take("0.1.clf.0.bias")
        state.finish()
        if w1.shape != (512, features) or w2.shape != (128, 512):
            raise ValueError(
                f"{path}: SimCLR head shapes {tuple(w1.shape)}, {tuple(w2.shape)}; expected "
                f"(512, {features}), (128, 512)"
            )
        return {"net.0.weight": w1, "net.0.bias": b1, "net.2.weight": w2, "net.2.bias": b2}, "simclr", None
    if "0.clf.0.weight" in heads:
        w, b = state.take("0.clf.0.weight"), state.take("0.clf.0.bias")
        state.finish()
        if w.ndim != 2 or w.shape[1] != features:
            raise ValueError(f"{path}: linear head of shape {tuple(w.shape)}; expected (classes, {features})")
        return {"weight": w, "bias": b}, "supervised", int(w.shape[0])
    if not heads:
        raise ValueError(f"{path}: the checkpoint has no head (heads is empty)")
    raise ValueError(
        f"{path}: unexpected head key {next(iter(heads))!r}; expected a SimCLR head (0.0.clf.0.*, "
        "0.1.clf.0.*) or a linear head (0.clf.0.*)"
    )


# ------------------------------------------------------------------------------------------
# positions


@dataclass
class PublishedPositions:
    """A spacetorch positions folder, read exactly.

    Attributes
    ----------
    layers : dict
        Layer name -> dict with ``dims`` (C, H, W), ``coordinates`` (N, 2) as published,
        ``neighborhood_indices`` (P, Q) int64, ``neighborhood_width`` (mm, float), ``file``.
    version : int
        ``version.txt`` (1 when absent).
    files : list of Path
        The files read.
    """

    layers: dict[str, dict]
    version: int
    files: list[Path]


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise ValueError(f"{path}: holds pickled objects, refused (allow_pickle=False)") from None
        raise ValueError(f"{path} is not a readable .npz file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{path} is not a readable .npz file ({exc})") from None
    check_keys(
        data,
        _FIELDS,
        unexpected=lambda k: f"{path}: unexpected array {k!r}; a LayerPositions .npz holds {', '.join(_FIELDS)}",
        missing=lambda k, n: f"{path}: missing array {k!r}",
    )
    for k in ("name", "neighborhood_width"):
        if data[k].ndim != 0:
            raise ValueError(f"{path}: {k} must be a 0-d array, got shape {data[k].shape}")
    return {
        "name": str(data["name"][()]),
        "dims": data["dims"],
        "coordinates": data["coordinates"],
        "neighborhood_indices": data["neighborhood_indices"],
        "neighborhood_width": data["neighborhood_width"][()],
    }


def _read_pkl(path: Path) -> dict:
    obj = load_layer_positions_pickle(path)
    return {k: getattr(obj, k) for k in _FIELDS}


def _validate_layer(raw: dict, layer: str, path: Path) -> dict:
    if str(raw["name"]) != layer:
        raise ValueError(f"{path}: name {raw['name']!r} does not match the file name {layer!r}")
    dims = np.asarray(raw["dims"]).reshape(-1)
    if dims.size != 3 or (dims.dtype.kind not in "iu" and not np.all(dims == np.round(dims))):
        raise ValueError(f"{path}: dims must be (C, H, W), got {raw['dims']!r}")
    dims_t = tuple(int(d) for d in dims)
    coords = np.asarray(raw["coordinates"])
    n = int(np.prod(dims_t))
    if coords.ndim != 2 or coords.shape[1] != 2 or coords.dtype.kind not in "fiu":
        raise ValueError(f"{path}: coordinates must be numeric (N, 2), got {coords.dtype} {coords.shape}")
    if coords.shape[0] != n:
        raise ValueError(f"{path}: dims {dims_t} give {n} units but there are {coords.shape[0]} coordinates")
    if not np.all(np.isfinite(coords)):
        raise ValueError(f"{path}: coordinates contain NaN or inf")
    nb = np.asarray(raw["neighborhood_indices"])
    if nb.ndim != 2 or nb.dtype.kind not in "iu":
        raise ValueError(f"{path}: neighborhood_indices must be a 2-D integer array, got {nb.dtype} {nb.shape}")
    if nb.size and (nb.min() < 0 or nb.max() >= n):
        raise ValueError(f"{path}: neighborhood_indices outside [0, {n}) (min {nb.min()}, max {nb.max()})")
    width = float(np.asarray(raw["neighborhood_width"]))
    if not np.isfinite(width) or width <= 0:
        raise ValueError(f"{path}: neighborhood_width must be a positive number of mm, got {width}")
    return {
        "dims": dims_t,
        "coordinates": coords,
        "neighborhood_indices": nb.astype(np.int64),
        "neighborhood_width": width,
        "file": path.name,
    }


def read_positions_folder(folder: str | Path, layers=BLOCKS) -> PublishedPositions:
    """Read a spacetorch positions folder (one ``.pkl`` or ``.npz`` per layer, optional ``version.txt``).

    Raises
    ------
    FileNotFoundError
        If the folder or a layer's file is missing.
    ValueError
        On a layer with both files, a refused pickle, a field that is not the published one,
        ``prod(dims) != N``, neighbourhood indices out of range.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"positions folder not found: {folder}")
    out, files = {}, []
    for layer in layers:
        pkl, npz = folder / f"{layer}.pkl", folder / f"{layer}.npz"
        if pkl.is_file() and npz.is_file():
            raise ValueError(f"{folder}: both {pkl.name} and {npz.name}; keep one")
        if pkl.is_file():
            path, raw = pkl, _read_pkl(pkl)
        elif npz.is_file():
            path, raw = npz, _read_npz(npz)
        else:
            raise FileNotFoundError(
                f"{folder}: no {layer}.pkl or {layer}.npz (a spacetorch positions folder "
                f"holds one per layer: {', '.join(layers)})"
            )
        out[layer] = _validate_layer(raw, layer, path)
        files.append(path)
    version = 1
    vfile = folder / "version.txt"
    if vfile.is_file():
        first = vfile.read_text().strip().splitlines()[:1]
        try:
            version = int(float(first[0])) if first else 1
        except ValueError:
            raise ValueError(f"{vfile}: expected a version number, got {first[0]!r}") from None
        files.append(vfile)
    return PublishedPositions(out, version, files)


def positions_sheet(pos: PublishedPositions, source: str, human_scale: bool = False) -> CorticalSheet:
    """Our :class:`~topography.sheet.CorticalSheet` of the published positions.

    Coordinates and neighbourhoods are kept (coordinates as float32, the precision the reference
    trains with); ``side_mm`` is each layer's tissue extent (the larger side of its bounding box).
    ``human_scale`` multiplies coordinates and neighbourhood widths by
    :data:`HUMAN_SCALE_FACTORS` (only for version-1 folders, as the reference's analyses do).
    """
    if human_scale and pos.version != 1:
        raise ValueError(f"--human-scale applies to version-1 position folders; this one is version {pos.version}")
    layers, extents = {}, {}
    for name, p in pos.layers.items():
        f = HUMAN_SCALE_FACTORS[name] if human_scale else 1.0
        coords = p["coordinates"] * f if human_scale else p["coordinates"]
        lo, hi = coords.min(0), coords.max(0)
        side = float(np.max(hi - lo))
        extents[name] = {"x_mm": [float(lo[0]), float(hi[0])], "y_mm": [float(lo[1]), float(hi[1])], "side_mm": side}
        layers[name] = LayerSheet(
            name, RESNET18_AREAS[name], p["dims"], side, p["neighborhood_width"] * f, coords, p["neighborhood_indices"]
        )
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "method": "published",
        "source": source,
        "published_version": pos.version,
        "scale": "human (reference rescale)" if human_scale else "published",
        "human_scale_factors": HUMAN_SCALE_FACTORS if human_scale else None,
        "extent_mm": extents,
        "n_windows": 20_000,
        "min_size": 25,
        "max_size": 500,
    }
    return CorticalSheet(layers, meta)


# ------------------------------------------------------------------------------------------
# the run


def published_variant(name: str) -> dict:
    """Objective, alpha, seed and spatial loss read from a published TDANN model name (e.g.
    ``simclr_spatial_resnet18_swappedon_SineGrating2019_isoswap_3_lwx2_seed_1_checkpoints``);
    empty when the name is not one of the published sweep's."""
    m = re.match(
        r"^(simclr|supervised)_spatial_resnet18_swappedon_SineGrating2019(_isoswap_3)?(_old_scl)?"
        r"(?:_(lw0|lw01|lwx2|lwx5|lwx10|lwx100))?(?:_seed_(\d+))?(?:_checkpoints)?$",
        name,
    )
    if not m:
        return {}
    return {
        "objective": m.group(1),
        "alpha": _ALPHAS[m.group(4) or ""],
        "seed": int(m.group(5) or 0),
        "spatial_loss": "absolute" if m.group(3) else "relative",
    }


def _default_name(checkpoint: Path) -> str:
    stem = checkpoint.parent.name if checkpoint.name.startswith("model_final_checkpoint") else checkpoint.stem
    return re.sub(r"_checkpoints$", "", stem) or "tdann"


def import_tdann(
    checkpoint: str | Path,
    positions: str | Path,
    out: str | Path | None = None,
    *,
    alpha: float | None = None,
    seed: int | None = None,
    image_size: int | None = None,
    human_scale: bool = False,
    force: bool = False,
    catalogue: dict | None = None,
) -> Path:
    """Import a published TDANN checkpoint and its positions folder as a run folder.

    Parameters
    ----------
    checkpoint : path
        The VISSL checkpoint file.
    positions : path
        The spacetorch positions folder.
    out : path, optional
        Run folder; default ``runs/tdann-<published model name>``.
    alpha, seed : optional
        Recorded in config.json; default from the published model name (the alpha sweep's suffixes
        ``lw0`` = 0, ``lw01`` = 0.1, none = 0.25, ``lwx2`` = 0.5, ``lwx5`` = 1.25, ``lwx10`` = 2.5,
        ``lwx100`` = 25; ``seed_k``), else the catalogue entry, else unknown (alpha None, seed 0).
    image_size : int, optional
        Input side in pixels; default 4 x the height of ``layer1.0`` in the positions (224 for
        the published 56 x 56).
    human_scale : bool
        Multiply version-1 positions by the reference's analysis factors (see module docstring).
    force : bool
        Replace a non-empty ``out``.
    catalogue : dict, optional
        The catalogue entries the files came from, ``{"checkpoint": entry, "positions": entry}``
        (recorded; the checkpoint entry's ``variant`` gives alpha, seed and model name).

    Returns
    -------
    Path
        The run folder.
    """
    from neurocwm.tdann import TDANNNet

    checkpoint, positions = Path(checkpoint), Path(positions)
    cat_variant = dict((catalogue or {}).get("checkpoint", {}).get("variant") or {})
    name = cat_variant.get("model_name") or _default_name(checkpoint)
    out = Path(out) if out is not None else Path("runs") / f"tdann-{name}"
    check_out(out, force)  # before the slow reads
    ck = read_vissl_checkpoint(checkpoint)
    pos = read_positions_folder(positions)
    h1 = pos.layers["layer1.0"]["dims"][1]
    image_size = int(image_size) if image_size is not None else 4 * h1
    arch = _WIDTH_ARCH[ck.width]
    net = TDANNNet(arch, ck.objective, ck.num_classes)
    _check_block_dims(net, pos, arch, image_size)
    state = {f"trunk.{k}": v for k, v in ck.trunk.items()}
    state.update({f"head.{k}": v for k, v in ck.head.items()})
    load_into(net, state, checkpoint.name)
    sheet = positions_sheet(pos, f"published: {positions.name}", human_scale=human_scale)
    variant = {**cat_variant, **published_variant(name)}
    if variant.get("objective") not in (None, ck.objective):
        raise ValueError(
            f"{checkpoint}: the name says objective {variant['objective']!r}, the head is {ck.objective!r}"
        )
    cfg = {
        "model_family": "tdann",
        "arch": arch,
        "objective": ck.objective,
        "num_classes": ck.num_classes,
        "alpha": alpha if alpha is not None else variant.get("alpha"),
        "seed": seed if seed is not None else int(variant.get("seed", 0)),
        "spatial_loss": variant.get("spatial_loss", "relative"),
        "temperature": 0.1,
        "image_size": image_size,
        "scale": sheet.meta["scale"],
        "positions": str(positions),
        "n_neighborhood_windows": 20_000,
        "preprocessing": {**PREPROCESSING, "image_size": image_size},
        "imported": _imported_record(name, ck, checkpoint, positions, pos, sheet, human_scale, catalogue),
    }
    return write_run(out, cfg, net, sheet, force=force)


def _check_block_dims(net, pos, arch: str, image_size: int) -> None:
    """Refuse positions whose per-block unit grid is not the one the network gives at ``image_size``."""
    dims = net.trunk.block_dims(image_size)
    for layer in BLOCKS:
        if tuple(dims[layer]) != pos.layers[layer]["dims"]:
            raise ValueError(
                f"positions of {layer} are for {pos.layers[layer]['dims']} units, the checkpoint's "
                f"{arch} at {image_size} px gives {tuple(dims[layer])}"
            )


def _trunk_copy(copies: dict) -> str:
    """Which of the checkpoint's two trunk copies the tensors came from (or ``mixed``)."""
    if copies["_feature_blocks"] == 0:
        return "base_model"
    if copies["base_model"] == 0:
        return "_feature_blocks"
    return "mixed"


def _imported_record(name, ck, checkpoint: Path, positions: Path, pos, sheet, human_scale, catalogue) -> dict:
    """The run config's ``imported`` entry: source files, format, provenance, citation and notes."""
    from neurocwm import __version__

    return {
        "family": "tdann",
        "format": "VISSL classy_state_dict",
        "model_name": name,
        "checkpoint": file_record(checkpoint),
        "positions": file_record(positions, pos.files),
        "positions_version": pos.version,
        "human_scale": human_scale,
        "tissue_extent_mm": sheet.meta["extent_mm"],
        "trunk_copy": _trunk_copy(ck.trunk_copies),
        "trunk_tensors_from": ck.trunk_copies,
        "head": ck.objective,
        "checkpoint_info": ck.info,
        "citation": CITATION,
        "licence": LICENCE,
        "catalogue": catalogue,
        "neurocwm_version": __version__,
        "notes": (
            "SimCLR heads are imported as Linear-ReLU-Linear; the release's older 'pre_relu_fix' runs "
            "had no ReLU there (the trunk, which every analysis uses, is unaffected)."
            if ck.objective == "simclr"
            else None
        ),
    }
