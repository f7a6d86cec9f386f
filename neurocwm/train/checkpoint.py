"""Checkpoints as safetensors (weights, optimizer tensors) plus JSON (everything else).

Layout inside a run folder::

    checkpoints/step_0000100/model.safetensors
    checkpoints/step_0000100/optimizer.safetensors
    checkpoints/step_0000100/state.json      # step, optimizer param groups, config
    checkpoints/latest.json                  # {"step": 100, "dir": "step_0000100"}

A checkpoint folder is written under a temporary name and renamed into place, and
``latest.json`` is replaced atomically afterwards, so a kill at any moment leaves the previous
complete checkpoint as the latest one. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from topography.fileio import write_json


def _state_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    sd = model.state_dict()
    return {k: v.detach().cpu().contiguous() for k, v in sd.items()}


def save_weights(model: torch.nn.Module, path: Path, metadata: dict | None = None) -> None:
    """Atomically write the model's state dict to a safetensors file (JSON ``metadata`` in the header)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".safetensors", dir=path.parent)
    os.close(fd)
    try:
        meta = {"json": json.dumps(metadata or {}, default=str)}
        save_file(_state_tensors(model), tmp, metadata=meta)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_weights(model: torch.nn.Module, path: Path, strict: bool = True) -> None:
    """Load safetensors weights into ``model`` (clear error on missing or mismatched keys)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if strict and (missing or unexpected):
        raise ValueError(f"{path} does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")


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


def save_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    extra: dict | None = None, keep: int = 2) -> Path:
    """Write checkpoint ``step`` atomically and keep only the newest ``keep`` checkpoint folders."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:07d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        save_file(_state_tensors(model), str(tmp / "model.safetensors"))
        opt_tensors, opt_info = _optimizer_payload(optimizer)
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        write_json(tmp / "state.json", {"step": step, "optimizer": opt_info, **(extra or {})})
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_json(root / "latest.json", {"step": step, "dir": name})
    olds = sorted(p for p in root.glob("step_*") if p.is_dir() and p.name != name)
    for p in olds[: max(0, len(olds) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """Folder of the latest complete checkpoint, or None."""
    pointer = Path(run_dir) / "checkpoints" / "latest.json"
    if not pointer.is_file():
        return None
    info = json.loads(pointer.read_text())
    path = pointer.parent / info["dir"]
    return path if (path / "state.json").is_file() else None


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Restore model (and optimizer) from a checkpoint folder; return its ``state.json``."""
    path = Path(path)
    state = json.loads((path / "state.json").read_text())
    load_weights(model, path / "model.safetensors")
    if optimizer is not None:
        _optimizer_restore(optimizer, load_file(str(path / "optimizer.safetensors")), state["optimizer"])
    return state
