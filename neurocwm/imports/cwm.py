"""Import the published counterfactual world models exactly into :class:`neurocwm.cwm.model.CWM`.

Two families of checkpoints are read:

* the ECCV'24 base predictors of Venkatesh et al. (2024), "Understanding Physical Dynamics with
  Counterfactual World Modeling" (ECCV): ViT-B/8 with 2 and 3 frames, ViT-B/4, ViT-L/8 with 3
  frames (fixed 1-D sin-cos position tables over the flattened (t h w) token index, encoder over
  the visible tokens only) and a ViT-B/8 with learnable position tables;
* the base predictor of Opt-CWM, Stojanov et al. (2025), "Self-Supervised Learning of Motion
  Concepts by Optimizing Counterfactuals": ViT-B/8 at 256 px (also run at 512 px by bicubic
  resizing of its tables), learnable tables, an encoder over every token with hidden ones blended
  towards a mask token, so masks may be soft. The full Opt-CWM file keeps it under
  ``flow_predictor.cwm_model.``.

The translation is strict: every tensor of the checkpoint is consumed (or, for the parts of an
Opt-CWM file that are not the base predictor, named and counted in the provenance), every
parameter of our model is filled, and a layout that fits no published variant is refused with
one line naming the first unexpected key and its shape. Nothing is unpickled beyond tensors,
containers and an explicit allow-list (:data:`ALLOWED_GLOBALS`).
"""

from __future__ import annotations

import argparse
import pathlib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from neurocwm import hub
from neurocwm.cwm.model import CWM, PRESETS, CWMConfig, build_cwm
from neurocwm.imports.unpickle import UnsafePickleError, load_torch_checkpoint

__all__ = [
    "VARIANTS",
    "CWMVariant",
    "ALLOWED_GLOBALS",
    "read_checkpoint",
    "published_layout",
    "detect_variant",
    "convert_state",
    "import_cwm",
]

ECCV24 = (
    "Venkatesh R., Chen H., Feigelis K., et al. (2024). Understanding Physical Dynamics with "
    "Counterfactual World Modeling. ECCV 2024. arXiv:2312.06721"
)
OPTCWM = (
    "Stojanov S., Wendt D., Kim S., Venkatesh R., et al. (2025). Self-Supervised Learning of Motion "
    "Concepts by Optimizing Counterfactuals. arXiv:2503.19953"
)

#: Globals a training checkpoint may hold besides tensors and containers (``args`` is an
#: ``argparse.Namespace`` whose fields may be paths or numpy values). Nothing else is rebuilt.
ALLOWED_GLOBALS: tuple = (argparse.Namespace, pathlib.PosixPath, pathlib.PurePosixPath)

#: Parts of the full Opt-CWM checkpoint that are not its base predictor (named, counted, not imported).
OPTCWM_OTHER_PARTS = (
    "flow_predictor.perturber.",
    "flow_predictor.occ_module.",
    "flow_predictor.softargmax_module.",
    "recon_cwm_model.",
)
OPTCWM_BASE_PREFIX = "flow_predictor.cwm_model."


@dataclass(frozen=True)
class CWMVariant:
    """A published checkpoint layout.

    Attributes
    ----------
    config : CWMConfig
        Our model of the same shape, at its native input size.
    publisher_name : str
        The publishers' name of the architecture.
    filename : str
        The published file.
    citation : str
    """

    config: CWMConfig
    publisher_name: str
    filename: str
    citation: str


#: Published variants, by the name ``--variant`` takes. Variants of identical tensor shapes (2 vs 3
#: frames of ViT-B/8; the learnable-position ViT-B/8 and the Opt-CWM bases) are told apart by the
#: checkpoint's ``args``, else its file name, else the first listed.
VARIANTS: dict[str, CWMVariant] = {
    "vitb8-2frame": CWMVariant(PRESETS["eccv-vitb8-2f"], "vitb_8x8patch_2frames", "2frame_cwm_8x8.pth", ECCV24),
    "vitb8-3frame": CWMVariant(PRESETS["eccv-vitb8-3f"], "vitb_8x8patch_3frames", "3frame_cwm_8x8.pth", ECCV24),
    "vitb4-2frame": CWMVariant(PRESETS["eccv-vitb4-2f"], "vitb_4x4patch_2frames", "2frame_cwm_4x4.pth", ECCV24),
    "vitl8-3frame": CWMVariant(PRESETS["eccv-vitl8-3f"], "vitl_8x8patch_3frames", "3frame_cwm_8x8_large.pth", ECCV24),
    "vitb8-2frame-learnable-pos": CWMVariant(
        PRESETS["learned-pos-vitb8"], "vitb_8x8patch_2frames_learnable_pos_embed", "2frame_cwm_mask_token.pth", ECCV24
    ),
    "optcwm-base-256": CWMVariant(
        PRESETS["learned-pos-vitb8"], "vitbase_8x8patch_2frames_1tube_interp_no_noise", "base_cwm_256_ckpt.pt", OPTCWM
    ),
    "optcwm-base-512": CWMVariant(
        replace(PRESETS["learned-pos-vitb8"], image_size=512),
        "vitbase_8x8patch_2frames_1tube_interp_no_noise (high-res: tables resized 32 -> 64)",
        "base_cwm_512_ckpt.pt",
        OPTCWM,
    ),
}


# ----------------------------------------------------------------------------- reading
def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if "Unsupported global" in ln or "unsupported" in ln.lower():
            return ln
    return lines[0] if lines else type(exc).__name__


def read_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a checkpoint file without running code from it.

    A ``.safetensors`` file is read with safetensors; anything else with
    ``torch.load(weights_only=True)`` and only :data:`ALLOWED_GLOBALS` admitted beyond tensors
    and built-in containers (a pickle that would call anything else is refused before it runs).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    state : dict of str to Tensor
        ``obj["model"]`` of a training checkpoint, or the file itself when it is a flat state dict.
    extras : dict
        ``args`` (the training arguments as a dict, when present) and ``top_keys`` (the other
        top-level entries, e.g. optimizer, epoch, scaler).

    Raises
    ------
    FileNotFoundError
    ValueError
        Unreadable file, a refused global, or no tensors where the weights should be.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path))), {"args": {}, "top_keys": []}
        except (SafetensorError, OSError) as exc:
            raise ValueError(f"cannot read {path} as safetensors ({_one_line(exc)})") from None
    try:
        obj = load_torch_checkpoint(path, extra_globals=ALLOWED_GLOBALS)
    except UnsafePickleError as exc:
        raise ValueError(f"refused to unpickle: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"cannot read the checkpoint: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict")
    state = obj.get("model", obj) if "model" in obj else obj
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path}: 'model' is not a state dict")
    for k, v in state.items():
        if not isinstance(k, str) or not torch.is_tensor(v):
            raise ValueError(f"{path}: entry {k!r} of the state dict is a {type(v).__name__}, not a tensor")
    args = obj.get("args") if state is not obj else None
    if isinstance(args, argparse.Namespace):
        args = dict(vars(args))
    extras = {
        "args": args if isinstance(args, dict) else {},
        "top_keys": sorted(str(k) for k in obj if k != "model") if state is not obj else [],
    }
    return state, extras


# ----------------------------------------------------------------------------- layouts
def published_layout(cfg: CWMConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the publishers' state dict for a model of shape ``cfg``, in their order.

    The publishers' attention holds ``qkv.weight`` without bias and separate ``q_bias``,
    ``v_bias`` and (in the models with a key bias, which also have an encoder-to-decoder bias)
    ``k_bias``; MLPs are ``fc1``/``fc2``; the patch embedding is a Conv3d of tubelet 1. Fixed
    sin-cos tables are not stored; learnable ones are ``encoder.pos_embed`` and ``pos_embed``.
    """
    e, d, p, t = cfg.enc_dim, cfg.dec_dim, cfg.patch_size, cfg.n_frames
    kb = cfg.enc_to_dec_bias
    out: dict[str, tuple[int, ...]] = {}
    if cfg.pos_embed == "learned":
        pg = cfg.pos_grid or cfg.grid
        out["encoder.pos_embed"] = (1, t * pg * pg, e)
    out["encoder.patch_embed.proj.weight"] = (e, 3, 1, p, p)
    out["encoder.patch_embed.proj.bias"] = (e,)

    def blocks(prefix: str, dim: int, depth: int) -> None:
        hid = int(dim * cfg.mlp_ratio)
        for i in range(depth):
            b = f"{prefix}.blocks.{i}"
            out[f"{b}.norm1.weight"] = out[f"{b}.norm1.bias"] = (dim,)
            out[f"{b}.attn.q_bias"] = (dim,)
            if kb:
                out[f"{b}.attn.k_bias"] = (dim,)
            out[f"{b}.attn.v_bias"] = (dim,)
            out[f"{b}.attn.qkv.weight"] = (3 * dim, dim)
            out[f"{b}.attn.proj.weight"] = (dim, dim)
            out[f"{b}.attn.proj.bias"] = (dim,)
            out[f"{b}.norm2.weight"] = out[f"{b}.norm2.bias"] = (dim,)
            out[f"{b}.mlp.fc1.weight"] = (hid, dim)
            out[f"{b}.mlp.fc1.bias"] = (hid,)
            out[f"{b}.mlp.fc2.weight"] = (dim, hid)
            out[f"{b}.mlp.fc2.bias"] = (dim,)

    blocks("encoder", e, cfg.enc_depth)
    out["encoder.norm.weight"] = out["encoder.norm.bias"] = (e,)
    blocks("decoder", d, cfg.dec_depth)
    out["decoder.norm.weight"] = out["decoder.norm.bias"] = (d,)
    out["decoder.head.weight"] = (3 * p * p, d)
    out["decoder.head.bias"] = (3 * p * p,)
    out["encoder_to_decoder.weight"] = (d, e)
    if kb:
        out["encoder_to_decoder.bias"] = (d,)
    out["mask_token"] = (1, 1, e if cfg.encoder_tokens == "all" else d)
    if cfg.pos_embed == "learned":
        out["pos_embed"] = (1, t * pg * pg, d)
    return out


def _first_mismatch(state: dict[str, Tensor], layout: dict[str, tuple[int, ...]]) -> str | None:
    for k, v in state.items():
        if k not in layout or tuple(v.shape) != layout[k]:
            return f"unexpected key {k!r} with shape {tuple(v.shape)}" + (
                f" (expected {layout[k]})" if k in layout else ""
            )
    for k in layout:
        if k not in state:
            return f"missing key {k!r} of shape {layout[k]}"
    return None


def _split_optcwm(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, int]]:
    """The base predictor of a full Opt-CWM state dict, and tensor counts of its other known parts."""
    base, others = {}, {}
    for k, v in state.items():
        if k.startswith(OPTCWM_BASE_PREFIX):
            base[k[len(OPTCWM_BASE_PREFIX) :]] = v
            continue
        part = next((p for p in OPTCWM_OTHER_PARTS if k.startswith(p)), None)
        if part is None:
            raise ValueError(
                f"unexpected key {k!r} with shape {tuple(v.shape)} in an Opt-CWM checkpoint "
                f"(known parts: {OPTCWM_BASE_PREFIX}, {', '.join(OPTCWM_OTHER_PARTS)})"
            )
        others[part.rstrip(".")] = others.get(part.rstrip("."), 0) + 1
    if not base:
        raise ValueError(f"the Opt-CWM checkpoint holds no base predictor under {OPTCWM_BASE_PREFIX!r}")
    return base, others


def _hints(path: Path | None, args: dict) -> list[tuple[str, str]]:
    """Lower-case texts the ambiguous variants are told apart by: the training args, then the file name."""
    parts = [str(args.get(k, "")) for k in ("model", "input_size", "highres")] if args else []
    if args.get("num_frames") is not None:
        parts.append(f"{args['num_frames']}frame")
    out = [("the checkpoint's args", " ".join(parts).lower())]
    if path is not None:
        out.append(("the file name", path.name.lower()))
    return out


def detect_variant(
    state: dict[str, Tensor], path: str | Path | None = None, args: dict | None = None
) -> tuple[str, str]:
    """The published variant whose layout ``state`` matches exactly.

    Parameters
    ----------
    state : dict of str to Tensor
        The publishers' state dict (for a full Opt-CWM file, its base part, unprefixed).
    path : str or Path, optional
        The file, whose name tells apart variants of identical shapes.
    args : dict, optional
        The checkpoint's training arguments (``num_frames``, ``model``), which come first.

    Returns
    -------
    name : str
        Key of :data:`VARIANTS`.
    how : str
        How it was decided (shapes alone, or which hint broke a tie).

    Raises
    ------
    ValueError
        If no variant fits: names the first unexpected key and shape against the closest layout.
    """
    matches, best, best_score = [], None, -1
    for name, var in VARIANTS.items():
        layout = published_layout(var.config)
        bad = _first_mismatch(state, layout)
        if bad is None:
            matches.append(name)
        score = sum(1 for k, v in state.items() if layout.get(k) == tuple(v.shape))
        if score > best_score:
            best, best_score = name, score
    if not matches:
        bad = _first_mismatch(state, published_layout(VARIANTS[best].config))
        raise ValueError(f"not a published CWM layout: {bad} (closest: {best})")
    if len(matches) == 1:
        return matches[0], "tensor shapes"
    rules = [
        ("3frame", "3frame"),
        ("3_frame", "3frame"),
        ("mask_token", "learnable-pos"),
        ("learnable_pos", "learnable-pos"),
        ("512", "optcwm-base-512"),
        ("opt_cwm", "optcwm-base-256"),
        ("base_cwm", "optcwm-base-256"),
        ("2frame", "2frame"),
    ]
    for source, text in _hints(Path(path) if path else None, args or {}):
        for needle, want in rules:
            if needle in text:
                pick = [m for m in matches if want in m]
                if pick:
                    return pick[0], f"tensor shapes, then {needle!r} in {source}"
    return matches[0], f"tensor shapes (also fit: {', '.join(matches[1:])}; pass --variant to choose)"


_BLOCK_RE = re.compile(r"^(encoder|decoder)\.blocks\.(\d+)\.(.+)$")
_SIMPLE = {
    "norm1.weight": "norm1.weight",
    "norm1.bias": "norm1.bias",
    "norm2.weight": "norm2.weight",
    "norm2.bias": "norm2.bias",
    "attn.qkv.weight": "attn.qkv.weight",
    "attn.proj.weight": "attn.proj.weight",
    "attn.proj.bias": "attn.proj.bias",
    "mlp.fc1.weight": "mlp.0.weight",
    "mlp.fc1.bias": "mlp.0.bias",
    "mlp.fc2.weight": "mlp.2.weight",
    "mlp.fc2.bias": "mlp.2.bias",
}
_TOP = {
    "encoder.patch_embed.proj.bias": "patch_embed.bias",
    "encoder.norm.weight": "enc_norm.weight",
    "encoder.norm.bias": "enc_norm.bias",
    "encoder_to_decoder.weight": "enc_to_dec.weight",
    "encoder_to_decoder.bias": "enc_to_dec.bias",
    "mask_token": "mask_token",
    "decoder.norm.weight": "dec_norm.weight",
    "decoder.norm.bias": "dec_norm.bias",
    "decoder.head.weight": "head.weight",
    "decoder.head.bias": "head.bias",
}


def convert_state(state: dict[str, Tensor], cfg: CWMConfig) -> tuple[dict[str, Tensor], set[str]]:
    """Translate a publishers' state dict (of layout :func:`published_layout`) into ours.

    The query/key/value biases become one ``qkv.bias`` (their concatenation, zeros for an absent
    key bias, as the publishers' attention builds it); the Conv3d patch embedding of tubelet 1
    becomes a Conv2d; learnable tables lose their leading batch axis.

    Returns
    -------
    ours : dict of str to Tensor
        Float32 tensors under :class:`~neurocwm.cwm.model.CWM`'s keys.
    consumed : set of str
        The publishers' keys used (all of them for a valid layout).
    """
    bad = _first_mismatch(state, published_layout(cfg))
    if bad is not None:
        raise ValueError(f"checkpoint does not fit the chosen variant: {bad}")
    ours: dict[str, Tensor] = {}
    used: set[str] = set()

    def take(k: str) -> Tensor:
        used.add(k)
        return state[k].detach().to(torch.float32)

    ours["patch_embed.weight"] = take("encoder.patch_embed.proj.weight")[:, :, 0].contiguous()
    for k, ok in _TOP.items():
        if k in state:
            ours[ok] = take(k)
    if cfg.pos_embed == "learned":
        ours["enc_pos"] = take("encoder.pos_embed")[0]
        ours["dec_pos"] = take("pos_embed")[0]
    for k in state:
        m = _BLOCK_RE.match(k)
        if not m:
            continue
        part, i, rest = m.groups()
        ours_prefix = f"{part}.{i}."
        if rest in _SIMPLE:
            ours[ours_prefix + _SIMPLE[rest]] = take(k)
        elif rest == "attn.q_bias":
            pre = f"{part}.blocks.{i}.attn."
            q, v = take(pre + "q_bias"), take(pre + "v_bias")
            kb = take(pre + "k_bias") if pre + "k_bias" in state else torch.zeros_like(v)
            ours[ours_prefix + "attn.qkv.bias"] = torch.cat([q, kb, v])
    return ours, used


# ----------------------------------------------------------------------------- the run folder
def _catalogue_entry(sha: str, filename: str) -> dict | None:
    """The CWM catalogue entry of this file (by recorded sha256, else by file name), if any."""
    return next((m for m in hub.entries("cwm") if m.get("sha256") == sha or m.get("filename") == filename), None)


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ValueError(f"{out} already holds files; choose another --out or pass --force")


def import_cwm(
    checkpoint: str | Path, out: str | Path | None = None, variant: str | None = None, force: bool = False
) -> tuple[Path, dict]:
    """Import a published CWM checkpoint into a run folder.

    Parameters
    ----------
    checkpoint : str or Path
        A local ``.pth``/``.pt`` training checkpoint (weights under ``"model"``), a flat state
        dict, or a ``.safetensors`` file, in a layout of :data:`VARIANTS` (or the full Opt-CWM
        file, whose base predictor is imported).
    out : str or Path, optional
        The run folder to write (``config.json``, ``model.safetensors``, ``model.json``);
        default ``runs/cwm-<variant>``.
    variant : str, optional
        A :data:`VARIANTS` name; default: detected from the tensor shapes (:func:`detect_variant`).
    force : bool
        Overwrite a folder that already holds a run.

    Returns
    -------
    out : Path
    provenance : dict
        What was recorded under ``config.json["import"]``.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file; refused pickle; a layout of no published variant (one line naming the first
        unexpected key and shape); an output folder that holds another run. Nothing is written
        then.
    """
    path = Path(checkpoint)
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"--variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    if out is not None:
        _check_out(Path(out), force)
    state, extras = read_checkpoint(path)
    others: dict[str, int] = {}
    if any(k.startswith("flow_predictor.") for k in state):
        state, others = _split_optcwm(state)
    if variant is None:
        variant, how = detect_variant(state, path, extras["args"])
    else:
        how = "--variant"
    var = VARIANTS[variant]
    cfg = var.config
    if out is None:
        out = Path("runs") / f"cwm-{variant}"
        _check_out(out, force)
    out = Path(out)
    ours, used = convert_state(state, cfg)
    left = set(state) - used
    if left:  # pragma: no cover - convert_state consumes every key of a valid layout
        raise ValueError(f"tensors not consumed: {sorted(left)[:3]}")
    model: CWM = build_cwm(cfg)
    missing, unexpected = model.load_state_dict(ours, strict=False)
    if missing or unexpected:  # pragma: no cover - the layouts are built from the same shapes
        raise ValueError(f"internal layout error: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.eval()
    sha = hub.sha256_of(path)
    entry = _catalogue_entry(sha, path.name)
    prov = {
        "file": str(path.resolve()),
        "size": path.stat().st_size,
        "sha256": sha,
        "variant": variant,
        "detected_by": how,
        "publisher_name": var.publisher_name,
        "published_file": var.filename,
        "citation": var.citation,
        "url": entry.get("url") if entry else None,
        "catalogue_sha256_match": (entry.get("sha256") == sha) if entry and entry.get("sha256") else None,
        "n_tensors": len(used),
        "n_parameters": int(sum(v.numel() for v in ours.values())),
        "not_imported": others,
        "checkpoint_entries": extras["top_keys"],
        "checkpoint_args": {
            k: v for k, v in extras["args"].items() if isinstance(v, (int, float, str, bool, type(None)))
        },
    }
    from neurocwm.cwm.task import DEFAULTS
    from neurocwm.train.checkpoint import save_weights
    from topography.fileio import write_json

    arch = next((k for k, v in PRESETS.items() if replace(v, image_size=cfg.image_size) == cfg), None)
    config = {
        **DEFAULTS,
        "model_family": "cwm",
        "arch": arch or variant,
        "image_size": cfg.image_size,
        "pos_embed": cfg.pos_embed,
        "n_frames": cfg.n_frames,
        "seed": 0,
        "steps": 0,
        "preset": "imported",
        "readout_radius": None,  # the publishers search the whole frame for the tracer's response
        "cwm_config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "import": prov,
    }
    out.mkdir(parents=True, exist_ok=True)
    save_weights(model, out / "model.safetensors", metadata={"import": prov})
    write_json(out / "model.json", {"arch": arch or variant, "variant": variant, "import": prov})
    write_json(out / "config.json", config)  # last: a folder without it is not a run
    return out, prov
