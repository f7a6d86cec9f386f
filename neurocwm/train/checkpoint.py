"""Checkpoints as safetensors (weights, optimizer tensors) plus JSON (everything else).

Layout inside a run folder::

    checkpoints/step_0000100/model.safetensors
    checkpoints/step_0000100/optimizer.safetensors
    checkpoints/step_0000100/state.json      # step, optimizer param groups, config
    checkpoints/latest.json                  # {"step": 100, "dir": "step_0000100"}

A checkpoint folder is written under a temporary name and renamed into place, and
``latest.json`` is replaced atomically afterwards, so a kill at any moment leaves the previous
complete checkpoint as the latest one. Nothing is ever unpickled.

``state.json`` records the size and SHA-256 of both tensor files, so a checkpoint damaged after
it was written (a truncated copy, a flipped byte) is recognised. :func:`latest_checkpoint` returns
the newest *intact* checkpoint: it does not depend on ``latest.json`` being present or right, and
skips damaged ones with a warning. Rotation only ever deletes checkpoints older than the one just
written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import tempfile
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from topography.fileio import atomic_path, write_json

#: A checkpoint folder's name; dot-named folders are temporaries of an interrupted write.
STEP_DIR = re.compile(r"^step_(\d+)$")
#: Files of a complete checkpoint folder.
CHECKPOINT_FILES = ("model.safetensors", "optimizer.safetensors", "state.json")


class CheckpointError(ValueError):
    """A checkpoint or weights file that is damaged or does not fit (one-line message naming the file)."""


def _umask_mode(base: int) -> int:
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def _state_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    sd = model.state_dict()
    return {k: v.detach().cpu().contiguous() for k, v in sd.items()}


def save_weights(model: torch.nn.Module, path: Path, metadata: dict | None = None) -> None:
    """Atomically write the model's state dict to a safetensors file (JSON ``metadata`` in the header)."""
    meta = {"json": json.dumps(metadata or {}, default=str)}
    with atomic_path(path) as tmp:  # a dot-named temporary, then mode as the umask says, then rename
        save_file(_state_tensors(model), str(tmp), metadata=meta)


def load_weights(model: torch.nn.Module, path: Path, strict: bool = True) -> None:
    """Load safetensors weights into ``model`` (clear error on missing or mismatched keys)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    state = read_tensors(path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if strict and (missing or unexpected):
        raise ValueError(f"{path} does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file; a damaged or foreign file raises :class:`CheckpointError`
    naming it (instead of safetensors' own error type)."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CheckpointError(f"cannot read {path}: damaged or not a safetensors file ({exc})") from None


def safetensors_complete(path: Path) -> bool:
    """Whether the safetensors file's size matches its header (a cheap check for a truncated file)."""
    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > 100_000_000:
                return False
            header = json.loads(fh.read(n))
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
        return os.path.getsize(path) == 8 + n + end
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error, UnicodeDecodeError):
        return False


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _optimizer_payload(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"{pid}.{key}"] = val.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_restore(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict) -> None:
    state: dict[int, dict] = {}
    for name, val in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = val
    for name, val in info.get("scalars", {}).items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = val
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    extra: dict | None = None,
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step`` atomically and keep only the newest ``keep`` checkpoint folders."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:07d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        os.chmod(tmp, _umask_mode(0o777))  # mkdtemp makes it private (0700); colleagues may read a shared run
        save_file(_state_tensors(model), str(tmp / "model.safetensors"))
        opt_tensors, opt_info = _optimizer_payload(optimizer)
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        for f in ("model.safetensors", "optimizer.safetensors"):
            os.chmod(tmp / f, _umask_mode(0o666))  # safetensors writes 0600
        files = {
            f: {"bytes": (tmp / f).stat().st_size, "sha256": _digest(tmp / f)}
            for f in ("model.safetensors", "optimizer.safetensors")
        }
        write_json(tmp / "state.json", {"step": step, "optimizer": opt_info, "files": files, **(extra or {})})
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_json(root / "latest.json", {"step": step, "dir": name})
    # only checkpoints older than this one are rotated out (a newer one, e.g. from a run that was resumed
    # from an older checkpoint after a damaged newest one, is never deleted); numeric order, not names
    olds = sorted(s for s, _ in checkpoint_dirs(root.parent) if s < step)
    for s in olds[: max(0, len(olds) - (keep - 1))]:
        shutil.rmtree(root / f"step_{s:07d}", ignore_errors=True)
    return final


def checkpoint_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``checkpoints/step_*`` folder (complete or not), newest first.
    Dot-named temporaries of interrupted writes are not listed."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()]
    return sorted(found, reverse=True)


def checkpoint_problem(path: Path) -> str | None:
    """Why the checkpoint folder ``path`` cannot be used (a short reason), or None if it is intact.

    Checks that every file exists, ``state.json`` parses, and each tensor file has the size and
    SHA-256 that ``state.json`` recorded (checkpoints written before the digests were recorded:
    that the size matches the safetensors header).
    """
    path = Path(path)
    for f in CHECKPOINT_FILES:
        if not (path / f).is_file():
            return f"{f} is missing"
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        int(state["step"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"state.json is unreadable ({type(exc).__name__})"
    files = state.get("files")
    for f in ("model.safetensors", "optimizer.safetensors"):
        if isinstance(files, dict) and f in files:
            if (path / f).stat().st_size != files[f].get("bytes") or _digest(path / f) != files[f].get("sha256"):
                return f"{f} does not match the size and SHA-256 recorded when it was written"
        elif not safetensors_complete(path / f):
            return f"{f} is truncated or not a safetensors file"
    return None


def latest_checkpoint(run_dir: Path, warn: bool = True) -> Path | None:
    """Folder of the newest intact checkpoint, or None when the run has none.

    ``latest.json`` is not trusted: a missing, dangling or outdated pointer, or a damaged newest
    checkpoint, falls back to the newest intact ``step_*`` folder (with a warning naming what was
    skipped).
    """
    skipped = []
    for _, path in checkpoint_dirs(run_dir):
        why = checkpoint_problem(path)
        if why is None:
            if warn and skipped:
                warnings.warn(f"skipped damaged checkpoint(s) {'; '.join(skipped)}; using {path.name}", stacklevel=2)
            return path
        skipped.append(f"{path.name} ({why})")
    if warn and skipped:
        warnings.warn(f"no intact checkpoint in {Path(run_dir) / 'checkpoints'}: {'; '.join(skipped)}", stacklevel=2)
    return None


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Restore model (and optimizer) from a checkpoint folder; return its ``state.json``.

    Raises
    ------
    CheckpointError
        If a file is damaged (one line naming it).
    """
    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path / 'state.json'} is not valid JSON ({exc})") from None
    load_weights(model, path / "model.safetensors")
    if optimizer is not None:
        _optimizer_restore(optimizer, read_tensors(path / "optimizer.safetensors"), state["optimizer"])
    return state
