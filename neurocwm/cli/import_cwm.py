"""``neurocwm import cwm CHECKPOINT``: a published counterfactual world model as a run folder."""

from __future__ import annotations

import argparse

from ._help import command
from ._options import add_no_progress

#: The names of ``neurocwm.imports.cwm.VARIANTS`` (kept here so that the CLI starts without torch; a test checks them).
VARIANT_NAMES = [
    "vitb8-2frame",
    "vitb8-3frame",
    "vitb4-2frame",
    "vitl8-3frame",
    "vitb8-2frame-learnable-pos",
    "optcwm-base-256",
    "optcwm-base-512",
]


def add_parser(sub) -> None:
    p = command(
        sub,
        "cwm",
        "the ECCV'24 CWMs (Venkatesh et al. 2024) or the Opt-CWM base predictor (Stojanov et al. 2025)",
        (
            "Import a published CWM checkpoint exactly (every tensor, checked against the published layout) "
            "into a run folder that `neurocwm cwm predict|flow|segment|keypoints|eval` accepts. The variant is "
            "detected from the tensor shapes (then the checkpoint's args or file name where shapes tie). "
            "Variants: " + ", ".join(VARIANT_NAMES) + "."
        ),
        run,
    )
    p.add_argument(
        "checkpoint",
        help="the published .pth/.pt file (or a .safetensors of the same keys), or its "
        "catalogue name (e.g. cwm-vitb8-2frame; downloaded once into $NEUROCWM_HOME)",
    )
    p.add_argument("--out", default=None, help="run folder to write (default runs/cwm-<variant>)")
    p.add_argument("--variant", choices=VARIANT_NAMES, default=None, help="override the detected variant")
    p.add_argument("--force", action="store_true", help="overwrite a folder that already holds files")
    add_no_progress(p, "download progress")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from neurocwm import hub
    from neurocwm.imports.cwm import import_cwm

    ckpt, ckpt_entry = hub.resolve_entry(args.checkpoint, "cwm", kind="checkpoint", progress=args.progress)
    variant, out = args.variant, args.out
    if ckpt_entry:  # a catalogue name: its entry names the variant
        variant = variant or ckpt_entry.get("variant")
        out = out if out is not None else Path("runs") / ckpt_entry["name"]
    path, prov = import_cwm(ckpt, out, variant=variant, force=args.force)
    extra = "".join(f"; left out {n} tensors of {k}" for k, n in prov["not_imported"].items())
    print(
        f"imported {prov['variant']} ({prov['detected_by']}): {prov['n_tensors']} tensors, "
        f"{prov['n_parameters'] / 1e6:.1f} M parameters{extra}"
    )
    print(f"sha256 {prov['sha256']}")
    print(
        f"wrote {path}/ (config.json, model.safetensors); try: neurocwm cwm flow {path} frame0.png frame1.png --resize"
    )
    return 0
