"""Shared pieces of every import: strict key consumption, provenance records, writing the run folder.

An import is exact: every tensor of the published file is consumed by exactly one tensor of our
model and none of our model's tensors is left unset. :class:`StrictState` enforces that; a file
of another layout is refused with one line naming the first key that does not belong.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from neurocwm.hub import sha256_of
from neurocwm.images import IMAGENET_MEAN, IMAGENET_STD
from topography.fileio import write_json

__all__ = ["StrictState", "check_keys", "file_record", "load_into", "write_run", "PREPROCESSING", "check_out"]

#: How the imported networks see images (recorded in config.json): resize the whole image to the
#: input size (bilinear, antialiased), ImageNet mean/std, no centre crop - what
#: :func:`neurocwm.features.forward_layers` does.
PREPROCESSING = {
    "resize": "whole image to image_size x image_size, bilinear, antialiased",
    "center_crop": None,
    "mean": list(IMAGENET_MEAN),
    "std": list(IMAGENET_STD),
    "input_range": "RGB in [0, 1] before normalisation",
}


class StrictState:
    """Tensors of a published state dict, handed out once each.

    Parameters
    ----------
    tensors : mapping str -> Tensor
        The published keys and tensors.
    source : str
        What they are (for messages), e.g. ``"VISSL trunk"``.
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor], source: str):
        self.tensors = dict(tensors)
        self.source = source
        self.used: set[str] = set()

    def take(self, key: str) -> torch.Tensor:
        """The tensor under ``key`` (marked consumed).

        Raises
        ------
        ValueError
            If the key is missing or was consumed before.
        """
        if key in self.used:
            raise ValueError(f"{self.source}: key {key!r} consumed twice")
        if key not in self.tensors:
            raise ValueError(f"{self.source}: missing key {key!r}")
        self.used.add(key)
        return self.tensors[key]

    def unused(self) -> list[str]:
        """Keys not consumed yet, in file order."""
        return [k for k in self.tensors if k not in self.used]

    def finish(self) -> None:
        """Refuse leftovers: a ``ValueError`` naming the first unconsumed key."""
        left = self.unused()
        if left:
            raise ValueError(
                f"{self.source}: unexpected key {left[0]!r} ({len(left)} unconsumed in all); not the published layout"
            )


def load_into(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` (our key -> tensor) into ``model``: every model tensor set, shapes equal.

    Raises
    ------
    ValueError
        On a model key without a tensor, a tensor without a model key, or a shape mismatch (both
        shapes named).
    """
    own = model.state_dict()
    check_keys(
        state,
        own,
        unexpected=lambda k: f"{source}: unexpected key {k!r} for this model",
        missing=lambda k, n: f"{source}: no tensor for the model's {k!r} ({n} missing)",
    )
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ValueError(f"{source}: {k} has shape {tuple(v.shape)}, the model expects {tuple(own[k].shape)}")
    with torch.no_grad():
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def check_keys(have: Iterable[str], expected: Iterable[str], *, unexpected, missing) -> None:
    """Refuse the first key of ``have`` not in ``expected``, then the first of ``expected`` not in ``have``.

    Parameters
    ----------
    have, expected : iterable of str
        The keys found and the keys wanted (both in their own order).
    unexpected : callable
        ``unexpected(key)`` -> the message for the first key found but not wanted.
    missing : callable
        ``missing(key, n)`` -> the message for the first wanted key not found, ``n`` of them in all.

    Raises
    ------
    ValueError
        With the message of the first mismatch.
    """
    have, expected = list(have), list(expected)
    have_set, expected_set = set(have), set(expected)
    extra = [k for k in have if k not in expected_set]
    if extra:
        raise ValueError(unexpected(extra[0]))
    absent = [k for k in expected if k not in have_set]
    if absent:
        raise ValueError(missing(absent[0], len(absent)))


def file_record(path: str | Path, files: Iterable[Path] | None = None) -> dict:
    """Provenance of a source file or folder: name, size in bytes and sha256 (per file for a folder)."""
    path = Path(path)
    if path.is_dir():
        members = sorted(files if files is not None else (p for p in path.iterdir() if p.is_file()))
        return {
            "name": path.name,
            "path": str(path.resolve()),
            "files": [{"name": p.name, "size": p.stat().st_size, "sha256": sha256_of(p)} for p in members],
        }
    return {"name": path.name, "path": str(path.resolve()), "size": path.stat().st_size, "sha256": sha256_of(path)}


def check_out(out: str | Path, force: bool) -> Path:
    """Refuse an output folder that already holds something, unless ``force``."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise ValueError(f"{out} exists and is not empty; pass --force to replace it")
    return out


def write_run(out: str | Path, cfg: dict, model: torch.nn.Module, sheet, force: bool = False) -> Path:
    """Write an imported run folder atomically: ``config.json``, ``model.safetensors`` (+
    ``model.json``) and ``positions/`` - the layout ``neurocwm fit`` leaves.

    Everything is written into a temporary folder beside ``out`` and renamed into place, so a
    failure leaves ``out`` as it was.
    """
    from neurocwm.train.checkpoint import save_weights
    from topography.sheet_io import save_sheet

    out = check_out(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_json(tmp / "config.json", cfg)
        meta = {"step": None, "imported": True, "config": cfg}
        save_weights(model, tmp / "model.safetensors", meta)
        write_json(tmp / "model.json", meta)
        save_sheet(sheet, tmp / "positions")
        os.chmod(tmp, 0o777 & ~_umask())
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "run")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
