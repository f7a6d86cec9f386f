"""Export a TDANN or TopoNets run as a Brain-Score vision model plugin (``neurocwm brainscore export``).

The zip holds ``models/<id>/`` at its top, as it sits in a clone of Brain-Score's vision repository::

    models/<id>/__init__.py                  registry line (model_registry['<id>'])
    models/<id>/model.py                     ResNet-18 trunk in plain torch (with the blur-pooled strided
                                             convolutions of TopoNets where the run has them), preprocessing,
                                             weights download
    models/<id>/test.py                      plugin tests (Brain-Score's CI runs them with pytest)
    models/<id>/requirements.txt             torch
    models/<id>/region_layer_map/<id>.json   committed layers {"V1": ..., "V2": ..., "V4": ..., "IT": ...}

The plugin imports neither neurocwm nor torchvision (torchvision is only used by Brain-Score's
``load_preprocess_images``; the plugin reads images with PIL and resizes and normalises them in
torch, the same antialiased bilinear resize and ImageNet normalisation as
:func:`neurocwm.images.resize_images` and :func:`neurocwm.images.normalize`, which every neurocwm
command uses; the constants are written into the plugin from :mod:`neurocwm.images`). The weights are **not**
bundled: the export writes ``<id>.pt`` (a ``torch.save`` dict of tensors: the trunk state dict and
each block's unit positions in mm, loadable with ``torch.load(weights_only=True)``) which the user
hosts at ``--weights-url``; the plugin downloads it at load time (urllib; ``file://`` works),
checks its sha256 and caches it under ``$BRAINSCORE_HOME/tdann_weights``.

The identifier is ``<family>_<arch>_<run name>_<first 10 hex of the weights sha256>``: one per
checkpoint; the family is ``tdann`` for our runs and imported TDANN checkpoints, ``toponets`` for an
imported TopoNets ResNet-18 (Deb et al. 2025, ICLR; arch ``resnet18_blurpool``). The model is a
``ModelCommitment`` subclass whose neural ``look_at`` adds per-neuroid ``tissue_x`` / ``tissue_y``
(mm) coordinates for topographic benchmarks (Brain-Score PR #2289).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurocwm.images import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["export_plugin", "parse_region_layer_map", "default_region_layer_map", "plugin_files", "model_identifier"]

BLOCKS = ("layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1")
REGIONS = ("V1", "V2", "V4", "IT")
#: exportable trunks: arch -> (first-stage width, blur-pooled strided convolutions)
_ARCHS = {
    "resnet18": (64, False),
    "resnet18_w32": (32, False),
    "resnet18_w16": (16, False),
    "resnet18_blurpool": (64, True),
    "resnet18_blurpool_w16": (16, True),
}
_CITATIONS = {
    "tdann": """@article{margalit2024unifying,
  title={A unifying framework for functional organization in early and higher ventral visual cortex},
  author={Margalit, Eshed and Lee, Hyodong and Finzi, Dawn and DiCarlo, James J and
          Grill-Spector, Kalanit and Yamins, Daniel LK},
  journal={Neuron}, volume={112}, number={14}, pages={2435--2451}, year={2024}
}""",
    "toponets": """@inproceedings{deb2025toponets,
  title={TopoNets: High performing vision and language models with brain-like topography},
  author={Deb, Mayukh and Deb, Mainak and Murty, N. Apurva Ratan},
  booktitle={International Conference on Learning Representations (ICLR)}, year={2025}
}""",
}
_TITLES = {
    "tdann": "TDANN: a ResNet-18 trunk whose block outputs are placed on simulated cortical sheets.",
    "toponets": (
        "TopoNets ResNet-18 (blur-pooled strided convolutions, TopoLoss), block outputs placed on a "
        "mosaic of\nTopoLoss's channel grids scaled to cortical sheets."
    ),
}


# --------------------------------------------------------------------------------------------
# region -> layer
# --------------------------------------------------------------------------------------------
def parse_region_layer_map(spec: str) -> dict[str, str]:
    """``"V1=layer2.0,IT=layer4.1"`` or a JSON file ``{"V1": "layer2.0", ...}``."""
    path = Path(spec)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"region-layer map file not found: {path}")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not valid UTF-8 JSON ({exc})") from None
        raw = raw.get("region_layer_map", raw) if isinstance(raw, dict) else raw
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a JSON object region -> layer")
        return _check_map({str(k): str(v) for k, v in raw.items()})
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        region, eq, layer = part.partition("=")
        if not eq or not layer:
            raise ValueError(f"bad region-layer entry {part!r}; expected REGION=LAYER, e.g. V4=layer3.1")
        out[region.strip()] = layer.strip()
    return _check_map(out)


def _check_map(m: Mapping[str, str]) -> dict[str, str]:
    for region, layer in m.items():
        if region not in REGIONS:
            raise ValueError(
                f"unknown region {region!r} in the region-layer map; Brain-Score regions: {', '.join(REGIONS)}"
            )
        if layer not in BLOCKS:
            raise ValueError(f"unknown layer {layer!r} for {region}; layers: {', '.join(BLOCKS)}")
    return dict(m)


def default_region_layer_map(areas: Mapping[str, str]) -> dict[str, str]:
    """From the sheet's areas: V1 -> first V1 layer, V2 / V4 -> first layer on that area, IT -> last VTC layer."""
    out: dict[str, str] = {}
    for region, area, pick in (("V1", "V1", 0), ("V2", "V2", 0), ("V4", "V4", 0), ("IT", "VTC", -1)):
        layers = [name for name in BLOCKS if areas.get(name) == area]
        if layers:
            out[region] = layers[pick]
    return out


def _committed_maps(
    run: Path, weights: str | Path | None = None, areas: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """Region -> layer from ``RUN/predictivity/*.json`` (trained weights only); conflicts raise.

    With ``weights``, only commitments that ``neurocwm predict`` made with that very weights
    file count (a commitment of an earlier checkpoint says nothing about the exported one).
    With the sheet's ``areas``, a commitment outside the region's mapped layers (written before
    ``predict`` honoured the sheet, and not asked for with ``--search-all-layers``) is replaced by
    the best mapped layer from the same file's selection scores, with a warning.
    """
    found: dict[str, tuple[str, str]] = {}
    sources: list[str] = []
    for path in sorted((run / "predictivity").glob("*.json")):
        if path.name.endswith(".random_init.json"):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rlm = data.get("region_layer_map") if isinstance(data, dict) else None
        if not isinstance(rlm, dict) or data.get("random_init"):
            continue
        if weights is not None and data.get("weights") and Path(data["weights"]).resolve() != Path(weights).resolve():
            continue
        sources.append(path.name)
        if areas and not data.get("search_all"):
            rlm = _within_mapped(rlm, data.get("layers") or {}, areas, path.name)
        for region, layer in rlm.items():
            if region in found and found[region][0] != layer:
                raise ValueError(
                    f"{run}/predictivity: {region} is committed to {found[region][0]} in {found[region][1]} "
                    f"but to {layer} in {path.name}; pass --region-layer-map"
                )
            found[region] = (layer, path.name)
    return _check_map({r: v[0] for r, v in found.items()}), sources


def _within_mapped(rlm: Mapping[str, str], selection: Mapping, areas: Mapping[str, str], source: str) -> dict[str, str]:
    import warnings

    from .predict import best_layer, mapped_layers

    out = {}
    for region, layer in rlm.items():
        pool = mapped_layers(areas, region)
        if not pool or layer in pool:
            out[region] = layer
            continue
        sel = selection.get(region) if isinstance(selection.get(region), dict) else {}
        inside = best_layer(sel, pool) if sel else None
        if inside in pool:
            out[region] = inside
        warnings.warn(
            f"{source} commits {region} to {layer}, a {areas.get(layer, '?')} layer on the sheet; exporting "
            f"{inside if inside in pool else 'the sheet default'} instead (--region-layer-map chooses)",
            stacklevel=3,
        )
    return out


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------
def model_identifier(arch: str, run_name: str, sha256: str, family: str = "tdann") -> str:
    """``<family>_<arch>_<run name slug>_<sha256[:10]>``, lower-case letters, digits and ``_``."""
    slug = re.sub(r"[^a-z0-9]+", "_", run_name.lower()).strip("_")[:40] or "run"
    return f"{family}_{re.sub(r'[^a-z0-9]+', '_', arch.lower())}_{slug}_{sha256[:10]}"


def _exportable(run: Path, r) -> tuple[str, int, bool]:
    """(family, width, blurpool) of a run the plugin's ResNet-18 can reproduce; ValueError otherwise."""
    from neurocwm.families import family_of
    from neurocwm.imports.common import PREPROCESSING
    from neurocwm.models.resnet import SpatialResNet18

    arch = r.config.get("arch")
    if not family_of(r.config).brainscore_export or arch not in _ARCHS:
        raise ValueError(
            f"{run}: export supports TDANN and TopoNets runs with arch in {sorted(_ARCHS)}, got "
            f"model_family={r.config.get('model_family')!r}, arch={arch!r}"
        )
    width, blurpool = _ARCHS[arch]
    trunk = getattr(r.model, "trunk", None)
    if not isinstance(trunk, SpatialResNet18) or (trunk.width, trunk.blurpool) != (width, blurpool):
        raise ValueError(
            f"{run}: arch {arch} should be a ResNet-18 trunk of width {width} (blur-pool {blurpool}), "
            f"the run's model has {type(trunk).__name__}"
        )
    pre = r.config.get("preprocessing") or {}  # our runs record none: whole image, ImageNet mean/std
    if pre.get("center_crop") or any(pre.get(k, PREPROCESSING[k]) != PREPROCESSING[k] for k in ("mean", "std")):
        raise ValueError(
            f"{run}: the plugin resizes the whole image and uses ImageNet mean/std, the run's preprocessing is {pre}"
        )
    family = str((r.config.get("imported") or {}).get("family") or "tdann")
    if family not in _CITATIONS:
        raise ValueError(f"{run}: cannot export an imported {family!r} model; families: {sorted(_CITATIONS)}")
    return family, width, blurpool


def _weights_bytes(run, positions: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> bytes:
    import torch

    state = {k: v.detach().cpu().contiguous().clone() for k, v in run.model.trunk.state_dict().items()}
    blob = {
        "format": "neurocwm-tdann-brainscore-v1",
        "state_dict": state,
        "positions": {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in positions.items()},
        "meta": {k: str(v) for k, v in meta.items()},
    }
    buf = io.BytesIO()
    torch.save(blob, buf)
    return buf.getvalue()


def export_plugin(
    run: str | Path,
    *,
    weights_url: str,
    out: str | Path,
    weights_out: str | Path | None = None,
    checkpoint: str | Path | None = None,
    identifier: str | None = None,
    region_layer_map: Mapping[str, str] | None = None,
    visual_degrees: float = 8.0,
    force: bool = False,
) -> dict[str, Any]:
    """Write the Brain-Score plugin zip and the weights file of a TDANN or TopoNets run.

    The plugin's network is the run's ResNet-18 trunk written out in plain torch: for an imported
    TopoNets run (``resnet18_blurpool``, Deb et al. 2025, ICLR) every strided convolution with at
    least 16 input channels is preceded by the fixed binomial blur (Zhang 2019, ICML), as in
    :class:`neurocwm.models.resnet.BlurPoolConv2d`.

    Parameters
    ----------
    run : str or Path
        The run folder.
    weights_url : str
        Where the plugin will download the weights from (``https://`` or ``file://``).
    out : str or Path
        The plugin zip to write (``.zip``).
    weights_out : str or Path, optional
        The weights file to write (default ``<identifier>.pt`` next to ``out``); upload it to
        ``weights_url``.
    checkpoint : str or Path, optional
        Weights other than the run's final ones.
    identifier : str, optional
        The Brain-Score model identifier (default ``<family>_<arch>_<run folder>_<sha256 prefix>``,
        family ``tdann`` or ``toponets``).
    region_layer_map : mapping of str to str, optional
        Region -> layer commitments; default: those ``neurocwm predict`` found for these weights.
    visual_degrees : float
        The field of view of the model's input, in degrees (8, as Brain-Score assumes).
    force : bool
        Replace existing output files.

    Returns
    -------
    dict
        ``identifier``, ``zip``, ``weights``, ``sha256``, ``weights_url``, ``region_layer_map`` and
        ``region_layer_map_source``.

    Raises
    ------
    ValueError
        For a run that is not an exportable TDANN / TopoNets ResNet-18 (the message names its arch),
        a bad URL, or disagreeing commitments.
    """
    from neurocwm.runs import load_run
    from topography.fileio import write_bytes

    run = Path(run)
    out = _check_export_options(weights_url, visual_degrees, out)
    r = load_run(run, checkpoint=checkpoint)
    arch = r.config.get("arch")
    family, width, blurpool = _exportable(run, r)
    image_size, positions = _block_positions(run, r)
    areas = {layer.name: layer.area for layer in r.sheet}
    meta = {
        "family": family,
        "arch": arch,
        "width": width,
        "blurpool": blurpool,
        "image_size": image_size,
        "scale": r.config.get("scale", "human"),
        "areas": json.dumps(areas),
        "source_weights": Path(r.weights).name,
        "step": json.dumps(_step_of(r.weights)),
    }
    blob = _weights_bytes(r, positions, meta)
    sha = hashlib.sha256(blob).hexdigest()
    ident = identifier or model_identifier(arch, run.resolve().name, sha, family)
    if not re.fullmatch(r"[a-z][a-z0-9_]*", ident):
        raise ValueError(f"identifier {ident!r} must be lower-case letters, digits and '_' (a Python package name)")
    rlm, source = _export_region_layer_map(run, r.weights, areas, region_layer_map)

    weights_path = Path(weights_out) if weights_out is not None else out.parent / f"{ident}.pt"
    for path in (out, weights_path):
        if path.exists() and not force:
            raise ValueError(f"{path} exists; pass --force to overwrite")
    files = plugin_files(
        ident,
        weights_url=weights_url,
        sha256=sha,
        width=width,
        image_size=image_size,
        visual_degrees=visual_degrees,
        region_layer_map=rlm,
        scale=str(meta["scale"]),
        run_name=run.resolve().name,
        blurpool=blurpool,
        family=family,
    )
    write_bytes(weights_path, blob)
    write_bytes(out, _plugin_zip(ident, files))
    return {
        "identifier": ident,
        "zip": str(out),
        "weights": str(weights_path),
        "sha256": sha,
        "weights_url": weights_url,
        "region_layer_map": rlm,
        "region_layer_map_source": source,
        "files": sorted(f"models/{ident}/{rel}" for rel in files),
    }


def _check_export_options(weights_url: str, visual_degrees: float, out: str | Path) -> Path:
    """Refuse a weights URL that is not http(s):// or file://, visual_degrees <= 0 or --out not a .zip; ``out``."""
    if not re.match(r"^(https?|file)://", weights_url):
        raise ValueError(f"--weights-url must be an http(s):// or file:// URL, got {weights_url!r}")
    if not visual_degrees > 0:
        raise ValueError(f"visual_degrees must be > 0, got {visual_degrees}")
    out = Path(out)
    if out.suffix != ".zip":
        raise ValueError(f"--out must end in .zip, got {out}")
    return out


def _block_positions(run: Path, r) -> tuple[int, dict[str, Any]]:
    """The run's image size and each block's unit coordinates, checked against the model's block shapes."""
    if r.sheet is None:
        raise ValueError(f"{run}: the run has no unit positions (positions/positions.safetensors)")
    image_size = int(r.config["image_size"])
    dims = r.model.trunk.block_dims(image_size)
    positions = {}
    for name in BLOCKS:
        layer = r.sheet[name]
        if tuple(layer.dims) != tuple(dims[name]):
            raise ValueError(f"{run}: positions of {name} are for {layer.dims}, the model gives {dims[name]}")
        positions[name] = layer.coordinates
    return image_size, positions


def _export_region_layer_map(run: Path, weights, areas, given: Mapping[str, str] | None):
    """The region -> layer map to commit (given, else predictivity's commitments, else the sheet's areas) and
    where each entry came from."""
    if given is not None:
        rlm, source = _check_map(given), {k: "given" for k in given}
    else:
        committed, files = _committed_maps(run, weights, areas)
        rlm = dict(committed)
        source = {k: "predictivity:" + ",".join(files) for k in committed}
        for k, v in default_region_layer_map(areas).items():
            if k not in rlm:
                rlm[k] = v
                source[k] = "sheet areas"
    rlm = {k: rlm[k] for k in REGIONS if k in rlm}
    if not rlm:
        raise ValueError("no region could be committed to a layer; pass --region-layer-map")
    return rlm, source


def _plugin_zip(ident: str, files: Mapping[str, str]) -> bytes:
    """The plugin's files as zip bytes under ``models/<ident>/``, with fixed dates and modes (reproducible)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, text in files.items():
            info = zipfile.ZipInfo(f"models/{ident}/{rel}", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, text)
    return buf.getvalue()


def _step_of(weights: Path):
    try:
        from safetensors import safe_open

        with safe_open(str(weights), "pt") as f:
            md = f.metadata() or {}
        return json.loads(md.get("json", "{}")).get("step")
    except Exception:  # noqa: BLE001 - informative only
        return None


# --------------------------------------------------------------------------------------------
# plugin sources
# --------------------------------------------------------------------------------------------
def plugin_files(
    identifier: str,
    *,
    weights_url: str,
    sha256: str,
    width: int,
    image_size: int,
    visual_degrees: float,
    region_layer_map: Mapping[str, str],
    scale: str,
    run_name: str,
    blurpool: bool = False,
    family: str = "tdann",
) -> dict[str, str]:
    """Relative path -> text of every file of the plugin folder.

    ``blurpool`` builds the TopoNets / FFCV variant of the trunk; ``family`` (``tdann`` or
    ``toponets``) picks the docstring and the BibTeX the plugin reports.
    """
    if family not in _CITATIONS:
        raise ValueError(f"unknown model family {family!r}; families: {sorted(_CITATIONS)}")
    vd = int(visual_degrees) if float(visual_degrees).is_integer() else float(visual_degrees)
    subs = {
        "@@ID@@": repr(identifier),
        "@@URL@@": repr(weights_url),
        "@@SHA@@": repr(sha256),
        "@@WIDTH@@": repr(int(width)),
        "@@BLURPOOL@@": repr(bool(blurpool)),
        "@@FAMILY@@": repr(family),
        "@@TITLE@@": _TITLES[family],
        "@@BIBTEX@@": _CITATIONS[family],
        "@@IMAGE_SIZE@@": repr(int(image_size)),
        "@@VD@@": repr(vd),
        "@@SCALE@@": repr(scale),
        "@@RUN@@": repr(run_name),
        "@@MEAN@@": repr(list(IMAGENET_MEAN)),
        "@@STD@@": repr(list(IMAGENET_STD)),
    }
    model_py = _MODEL_PY
    for k, v in subs.items():
        model_py = model_py.replace(k, v)
    init_py = _INIT_PY.replace("@@ID@@", repr(identifier)).replace("@@FAMILY@@", _family_name(family))
    test_py = _TEST_PY.replace("@@ID@@", repr(identifier))
    return {
        "__init__.py": init_py,
        "model.py": model_py,
        "test.py": test_py,
        "requirements.txt": "torch\n",
        f"region_layer_map/{identifier}.json": json.dumps(dict(region_layer_map), indent=2) + "\n",
    }


def _family_name(family: str) -> str:
    return {"tdann": "TDANN", "toponets": "TopoNets"}.get(family, family)


_INIT_PY = '''"""@@FAMILY@@ (topographic ResNet-18) exported by neurocwm; see model.py."""
from brainscore_vision import model_registry

from .model import MODEL_ID, get_model

model_registry[@@ID@@] = lambda: get_model(MODEL_ID)
'''

_MODEL_PY = r'''"""@@TITLE@@

Self-contained Brain-Score plugin (torch, numpy, PIL; no torchvision). The weights file is
downloaded from WEIGHTS_URL at load time, checked against WEIGHTS_SHA256 and cached under
$BRAINSCORE_HOME/tdann_weights (default ~/.brain-score). It holds the trunk state dict and the
position in mm of every unit of every block; neural recordings carry them as neuroid coordinates
tissue_x / tissue_y.
"""
import functools
import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from brainscore_vision.model_helpers.activations.pytorch import PytorchWrapper, load_images
from brainscore_vision.model_helpers.brain_transformation import ModelCommitment

MODEL_ID = @@ID@@
WEIGHTS_URL = @@URL@@
WEIGHTS_SHA256 = @@SHA@@
WIDTH = @@WIDTH@@
FAMILY = @@FAMILY@@
BLURPOOL = @@BLURPOOL@@  # blur before every strided conv with >= 16 input channels (TopoNets / FFCV ResNet-18)
IMAGE_SIZE = @@IMAGE_SIZE@@
VISUAL_DEGREES = @@VD@@
SHEET_SCALE = @@SCALE@@  # cortical sheet sizes the positions were made at ("human" or "macaque")
RUN_NAME = @@RUN@@
LAYERS = ["layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1"]
IMAGENET_MEAN = torch.tensor(@@MEAN@@, dtype=torch.float32)[None, :, None, None]
IMAGENET_STD = torch.tensor(@@STD@@, dtype=torch.float32)[None, :, None, None]
PLUGIN_DIR = Path(__file__).resolve().parent


# ---- network (module names as torchvision's resnet18, without fc) ------------------------------
class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class BlurPoolConv2d(nn.Module):
    """Fixed depthwise binomial blur [1, 2, 1] x [1, 2, 1] / 16 (stride 1, zero padding 1), then conv
    (Zhang 2019, ICML); state dict keys <name>.conv.weight and <name>.blur_filter."""

    def __init__(self, conv):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        self.conv = conv
        self.register_buffer("blur_filter", (k[:, None] * k[None, :] / 16.0).expand(conv.in_channels, 1, 3, 3).clone())

    def forward(self, x):
        x = nn.functional.conv2d(x, self.blur_filter, stride=1, padding=1, groups=self.conv.in_channels)
        return self.conv(x)


def _blurpool(module):
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d) and max(child.stride) > 1 and child.in_channels >= 16:
            setattr(module, name, BlurPoolConv2d(child))
        else:
            _blurpool(child)


class ResNet18Trunk(nn.Module):
    def __init__(self, width=64, blurpool=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.inplanes = width
        self.layer1 = self._make_layer(width, 1)
        self.layer2 = self._make_layer(width * 2, 2)
        self.layer3 = self._make_layer(width * 4, 2)
        self.layer4 = self._make_layer(width * 8, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        if blurpool:
            _blurpool(self)

    def _make_layer(self, planes, stride):
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                                 nn.BatchNorm2d(planes))
        blocks = [BasicBlock(self.inplanes, planes, stride, down), BasicBlock(planes, planes)]
        self.inplanes = planes
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


# ---- weights -----------------------------------------------------------------------------------
def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_path():
    """Download (once) and verify the weights file; returns its local path."""
    home = Path(os.environ.get("BRAINSCORE_HOME", Path.home() / ".brain-score"))
    target = home / "tdann_weights" / (MODEL_ID + ".pt")
    if target.is_file() and _sha256(target) == WEIGHTS_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".download.", dir=str(target.parent))
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(WEIGHTS_URL, timeout=600) as response:
            shutil.copyfileobj(response, out)
        got = _sha256(tmp)
        if got != WEIGHTS_SHA256:
            raise ValueError(f"weights from {WEIGHTS_URL} have sha256 {got}, expected {WEIGHTS_SHA256}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def load_weights():
    """(trunk with trained weights in eval mode, {layer: (n_units, 2) positions in mm})."""
    blob = torch.load(weights_path(), map_location="cpu", weights_only=True)
    net = ResNet18Trunk(WIDTH, BLURPOOL)
    net.load_state_dict(blob["state_dict"], strict=True)
    net.eval()
    positions = {k: v.numpy().astype(np.float64) for k, v in blob["positions"].items()}
    return net, positions


# ---- preprocessing (no torchvision) --------------------------------------------------------------
def preprocess(image_filepaths, image_size=IMAGE_SIZE):
    """RGB in [0, 1], resized bilinearly with antialiasing (low-pass first), ImageNet-normalised."""
    arrays = []
    for image in load_images(image_filepaths):
        x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1).copy())
        x = x.float().div_(255.0)[None]
        if tuple(x.shape[-2:]) != (image_size, image_size):
            x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
        arrays.append(((x - IMAGENET_MEAN) / IMAGENET_STD)[0].numpy())
    return np.stack(arrays).astype(np.float32)


# ---- Brain-Score model ---------------------------------------------------------------------------
def add_tissue_coordinates(assembly, positions):
    """Attach tissue_x / tissue_y (mm) to every neuroid, keyed by (layer, neuroid_num)."""
    layers = assembly["layer"].values
    nums = assembly["neuroid_num"].values.astype(int)
    xy = np.empty((len(nums), 2))
    for layer in np.unique(layers):
        mask = layers == layer
        xy[mask] = positions[str(layer)][nums[mask]]
    assembly["tissue_x"] = "neuroid", xy[:, 0]
    assembly["tissue_y"] = "neuroid", xy[:, 1]
    return assembly


class TopographicModelCommitment(ModelCommitment):
    """ModelCommitment whose neural recordings carry each unit's cortical position in mm."""

    def __init__(self, *args, positions, **kwargs):
        super().__init__(*args, **kwargs)
        self.positions = positions

    def look_at(self, stimuli, number_of_trials=1, require_variance=False):
        result = super().look_at(stimuli, number_of_trials=number_of_trials, require_variance=require_variance)
        if self.do_behavior:
            return result
        return add_tissue_coordinates(result, self.positions)


def get_region_layer_map(name=MODEL_ID):
    with open(PLUGIN_DIR / "region_layer_map" / f"{name}.json") as f:
        return json.load(f)


def get_model(name):
    assert name == MODEL_ID, f"this plugin provides {MODEL_ID}, not {name}"
    net, positions = load_weights()
    wrapper = PytorchWrapper(identifier=MODEL_ID, model=net,
                             preprocessing=functools.partial(preprocess, image_size=IMAGE_SIZE))
    wrapper.image_size = IMAGE_SIZE
    return TopographicModelCommitment(identifier=MODEL_ID, activations_model=wrapper, layers=get_layers(name),
                                      region_layer_map=get_region_layer_map(name),
                                      visual_degrees=VISUAL_DEGREES, positions=positions)


def get_layers(name):
    assert name == MODEL_ID
    return list(LAYERS)


def get_bibtex(name):
    return """@@BIBTEX@@"""
'''

_TEST_PY = r'''"""Plugin tests: identifier, committed layers, and a neural recording with tissue coordinates."""
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import brainscore_vision

MODEL_ID = @@ID@@


def _stimuli(directory):
    from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet

    rng = np.random.default_rng(0)
    ids = ["probe0", "probe1", "probe2"]
    stimuli = StimulusSet({"stimulus_id": ids, "object_name": ["probe"] * 3, "image_label": ["a", "a", "b"]})
    paths = {}
    for sid in ids:
        path = Path(directory) / f"{sid}.png"
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
        paths[sid] = str(path)
    stimuli.stimulus_paths = paths
    stimuli.identifier = MODEL_ID + ".probe"
    return stimuli


def test_identifier_and_degrees():
    model = brainscore_vision.load_model(MODEL_ID)
    assert model.identifier == MODEL_ID
    assert model.visual_degrees() > 0


def test_neural_recording_has_tissue_coordinates():
    model = brainscore_vision.load_model(MODEL_ID)
    regions = json.loads((Path(__file__).parent / "region_layer_map" / f"{MODEL_ID}.json").read_text())
    assert set(regions) <= {"V1", "V2", "V4", "IT"} and regions
    with tempfile.TemporaryDirectory() as directory:
        stimuli = _stimuli(directory)
        for region in regions:
            model.start_recording(region, time_bins=[(70, 170)])
            rec = model.look_at(stimuli, number_of_trials=1)
            assert set(rec["stimulus_id"].values) == set(stimuli["stimulus_id"])
            assert len(rec["neuroid"]) > 0
            for coord in ("tissue_x", "tissue_y"):
                values = np.asarray(rec[coord].values, dtype=float)
                assert np.isfinite(values).all() and (values >= 0).all()
            assert set(rec["region"].values) == {region}
'''
