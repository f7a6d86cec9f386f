"""Shared fixtures.

``shared_data`` gives the folder of real datasets (``$NEUROCWM_SHARED_DATA`` or ``../shared/data``).
Outside CI a test that needs it is skipped when it is missing; with ``CI=true`` it fails instead,
because in CI the real-data tests are mandatory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Options of the smallest ResNet run (`neurocwm fit --out DIR *TINY`); "--no-progress" stays last (test_fit drops it).
TINY = [
    "--arch",
    "resnet18_w16",
    "--image-size",
    "32",
    "--batch-size",
    "8",
    "--neighborhood-windows",
    "300",
    "--no-progress",
]


def _shared_root() -> Path:
    env = os.environ.get("NEUROCWM_SHARED_DATA")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "data"


def skip_unless_ci(msg: str, why_ci: str) -> None:
    """Skip the test with ``msg``; in CI (``CI=true``) fail it instead, with `` -- why_ci`` added."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{msg} -- {why_ci}")
    pytest.skip(msg)


def require_shared(*parts: str) -> Path:
    """Path to a file or folder under the shared data root; skip (or fail in CI) when absent."""
    path = _shared_root().joinpath(*parts)
    if not path.exists():
        skip_unless_ci(f"real data not found: {path} (set NEUROCWM_SHARED_DATA)", "real-data tests are mandatory in CI")
    return path


@pytest.fixture
def shared_data() -> Path:
    return require_shared()


def fit_smoke_cwm(out: Path) -> Path:
    """A 1-step CWM run of the smallest preset (`neurocwm fit --model cwm --arch smoke`) in ``out``."""
    from neurocwm.cli import main

    argv = ["fit", "--model", "cwm", "--arch", "smoke", "--steps", "1", "--batch-size", "2"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    return out


# Trainer options of the smallest CWM preset on the CPU, without a progress bar.
SMOKE_CWM = {"arch": "smoke", "batch_size": 4, "device": "cpu", "progress": False}


def train_smoke_cwm(out: Path, steps: int = 1) -> Path:
    """A CWM run of the smallest preset trained ``steps`` steps through the trainer (no validation) in ``out``."""
    from neurocwm.cwm.task import CWMTask
    from neurocwm.train import fit

    fit({**SMOKE_CWM, "steps": steps, "validate_every": 0, "out": str(out)}, CWMTask())
    return out


def optcwm_options(base: Path, **more) -> dict:
    """Trainer options of a small Opt-CWM run on the CWM run ``base`` (CPU, no progress bar), then ``more``."""
    small = {"n_flow_pts": 2, "flow_dim": 16, "flow_depth": 1, "flow_heads": 2, "tracer_hidden": 16}
    return {"base_run": str(base), "batch_size": 2, **small, "device": "cpu", "progress": False, **more}


def train_smoke_cwm_in_memory(steps: int) -> tuple:
    """The smallest CWM trained ``steps`` steps in memory (seed 0, batch 8, lr 1e-3, CPU): the model and its losses."""
    import torch

    from neurocwm.cwm.task import CWMTask

    torch.manual_seed(0)
    task = CWMTask()
    cfg = task.validate_config({**task.default_config("cpu"), "arch": "smoke", "batch_size": 8, "lr": 1e-3})
    model = task.build_model(cfg)
    task.setup(cfg, model)
    opt = task.make_optimizer(task.param_groups(model, cfg), cfg)
    batches = task.make_batches(cfg, 0, 1, 0)
    losses = []
    for step in range(steps):
        loss, logs = task.compute_loss(model, next(batches), step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(logs["loss"])
    return model, losses
