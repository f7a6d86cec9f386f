"""The CWM family's objective and validation measures.

The objective is the mean squared error on hidden frame-1 pixels (the masked prediction of Bear et al.
2023, arXiv:2306.01828), optionally weighted by motion, plus ``alpha`` x the spatial loss of the
topographic CWM (Margalit et al. 2024, Neuron, Eq. 1-2; :mod:`topography.losses`). The validation
measures the hidden-patch error as more frame-1 patches are revealed and the tracer-probe end-point
error on moving points.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from topography.losses import layer_spatial_loss

from .config import CURVE_FRACTIONS, VAL_SEED, visible_count
from .masking import hidden_pixels, sample_visible
from .model import CWM, capture_mlp_units, copy_frame0_mse, hidden_mse

__all__ = ["cwm_loss", "validation_metrics"]


def _unwrap(model: nn.Module) -> CWM:
    return model.module if hasattr(model, "module") else model


def cwm_loss(
    model: nn.Module,
    batch: dict,
    cfg: dict,
    *,
    step: int,
    rank: int = 0,
    layers=(),
    blocks=(),
    positions: dict | None = None,
    neighborhoods: dict | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """MSE on hidden frame-1 pixels, with the copy-frame-0 MSE on the same patches beside it.

    Parameters
    ----------
    model : nn.Module
        A CWM (or one wrapped in ``.module``).
    batch : dict
        ``frames`` (B, 2, 3, H, W) and ``visible`` (B, N) bool.
    cfg : dict
        The run's configuration (``alpha``, ``motion_weight``, ``seed``, ``neighborhoods_per_step``,
        ``spatial_loss``).
    step, rank : int
        Seed the spatial loss's neighbourhood draw with ``(seed, rank, step)``.
    layers : sequence of str
        Sheet layers ``encoder.<i>.mlp`` (needed when ``alpha`` > 0).
    blocks : sequence of int
        Their encoder blocks.
    positions, neighborhoods : dict of str to Tensor
        Per layer: unit positions (n_units, 2) and neighbourhoods (n_windows, k) on the sheet.

    Returns
    -------
    loss : Tensor, scalar
    logs : dict of str to float
    """
    frames, visible = batch["frames"], batch["visible"]
    alpha = float(cfg.get("alpha") or 0.0)
    if alpha > 0 and not layers:
        raise RuntimeError("alpha > 0 needs CWMTask.setup(cfg, model, ...) to lay the units on a sheet first")
    with capture_mlp_units(model, list(blocks) if alpha > 0 else []) as units:
        pred, hid_idx = model(frames, visible)
    patch = _unwrap(model).patch_size
    lam = float(cfg.get("motion_weight") or 0.0)
    objective = hidden_mse(pred, frames, hid_idx, patch, motion_weight=lam)
    with torch.no_grad():
        mse = hidden_mse(pred, frames, hid_idx, patch) if lam > 0 else objective  # the plain MSE, logged either way
        copy = copy_frame0_mse(frames.float(), visible, patch)
    mv = float(mse.detach())
    cv = float(copy)
    logs = {"mse": mv, "copy_mse": cv, "rel_copy": mv / max(cv, 1e-12), "n_visible": float(visible[0].sum())}
    if lam > 0:
        logs["weighted_mse"] = float(objective.detach())
    loss = objective
    if alpha > 0:
        g = torch.Generator().manual_seed(
            int(np.random.SeedSequence([int(cfg.get("seed", 0)), rank, step, 2]).generate_state(1)[0])
        )
        sls = []
        for name in layers:
            sl = layer_spatial_loss(
                units[name],
                positions[name],
                neighborhoods[name],
                int(cfg.get("neighborhoods_per_step") or 2),
                g,
                cfg.get("spatial_loss", "relative"),
            )
            logs[f"sl/{name}"] = float(sl.detach())
            sls.append(sl)
        total = torch.stack(sls).sum()
        logs["spatial_loss"] = float(total.detach()) / len(sls)
        loss = objective + alpha * total
    logs["loss"] = float(loss.detach())
    return loss, logs


@torch.no_grad()
def validation_metrics(net: CWM, val: dict, cfg: dict) -> dict[str, float]:
    """Error-versus-revealed-patches curve and tracer-probe EPE on a fixed validation set.

    Parameters
    ----------
    net : CWM
    val : dict
        The set of :func:`~neurocwm.cwm.data.validation_set`.
    cfg : dict
        The run's configuration over the defaults (``val_masks``, ``readout_visible``, ``readout_radius``).

    Returns
    -------
    dict of str to float
        ``val/mse_at_K``, ``val/copy_at_K``, their ``moving`` versions, ``val/tracer_epe``,
        ``val/tracer_soft_epe``, ``val/zero_epe`` and, where points move 3 px or more, the ``_fast`` EPEs.
    """
    from .readouts import tracer_flow

    was_training = net.training
    net.eval()
    dev = next(net.parameters()).device
    frames = torch.from_numpy(val["frames"]).to(dev)
    flow = torch.from_numpy(val["flow"])
    moving = (flow.norm(dim=-1) >= 0.5).float()  # (B, H, W)
    out: dict[str, float] = {}
    g, p = net.grid, net.patch_size
    for frac in CURVE_FRACTIONS:
        k = visible_count(g * g, frac)
        gen = torch.Generator().manual_seed(VAL_SEED + k)
        vis = sample_visible(len(frames), g, k, generator=gen).to(dev)
        pred = net.predict(frames, vis).float().cpu()
        hid = hidden_pixels(vis.cpu(), g, p)
        f0, f1 = val["frames"][:, 0], val["frames"][:, 1]
        se = ((pred - torch.from_numpy(f1)) ** 2).mean(1)
        ce = ((torch.from_numpy(f0) - torch.from_numpy(f1)) ** 2).mean(1)
        out[f"val/mse_at_{k}"] = float((se * hid).sum() / hid.sum())
        out[f"val/copy_at_{k}"] = float((ce * hid).sum() / hid.sum())
        hm = hid * moving
        out[f"val/mse_moving_at_{k}"] = float((se * hm).sum() / hm.sum().clamp_min(1))
        out[f"val/copy_moving_at_{k}"] = float((ce * hm).sum() / hm.sum().clamp_min(1))
    errs, soft, zero = [], [], []
    for i in np.unique(val["pair"]):
        sel = val["pair"] == i
        radius = cfg.get("readout_radius")
        res = tracer_flow(
            net,
            frames[i].cpu(),
            val["points"][sel],
            n_masks=int(cfg["val_masks"]),
            visible_fraction=float(cfg["readout_visible"]),
            search_radius=None if radius is None else float(radius),
            seed=VAL_SEED + int(i),
        )
        gt = torch.from_numpy(val["gt"][sel])
        errs.append((res.flow_argmax - gt).norm(dim=1))
        soft.append((res.flow_soft - gt).norm(dim=1))
        zero.append(gt.norm(dim=1))
    if errs:
        e, es, z = torch.cat(errs), torch.cat(soft), torch.cat(zero)
        out["val/tracer_epe"] = float(e.mean())
        out["val/tracer_soft_epe"] = float(es.mean())
        out["val/zero_epe"] = float(z.mean())
        fast = z >= 3.0  # the target split: points moving 3 px or more
        if bool(fast.any()):
            out["val/tracer_epe_fast"] = float(e[fast].mean())
            out["val/zero_epe_fast"] = float(z[fast].mean())
    if was_training:
        net.train()
    return out
