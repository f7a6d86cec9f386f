"""``neurocwm fit``: train a model (TDANN by default)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from neurocwm.families import family_of, fit_models, get_family

from ._help import command
from ._options import add_no_progress

#: The ``--model`` choices: the families ``fit`` trains (:mod:`neurocwm.families`).
FAMILIES = fit_models()


def add_parser(sub) -> None:
    p = command(
        sub,
        "fit",
        "train a TDANN (or a CWM with --model cwm)",
        (
            "Train a topographic network. With no --data it trains on procedurally generated "
            "dead-leaves images (no download). On a CPU-only machine the defaults are a quick preset "
            "(width-reduced ResNet-18, 64 px, about 13-18 minutes on 2 cores); "
            "on CUDA the paper-scale ResNet-18 at 224 px. "
            "For several GPUs or nodes run it under torchrun: torchrun --nproc-per-node N -m neurocwm fit ..."
        ),
        run,
    )
    _task_options(p)
    _cwm_options(p)
    _schedule_options(p)
    _sheet_options(p)
    _run_options(p)


def _task_options(p) -> None:
    """What is trained: family, spatial loss, objective and images."""
    p.add_argument(
        "--model", choices=FAMILIES, default=None, help="model family (default tdann; with --resume: the run's)"
    )
    p.add_argument("--alpha", type=float, default=None, help="spatial-loss weight per layer (TDANN default 0.25)")
    p.add_argument(
        "--objective", choices=("simclr", "supervised"), default=None, help="task objective (default simclr)"
    )
    p.add_argument("--spatial-loss", choices=("relative", "absolute"), default=None, help="SL_rel (default) or SL_abs")
    p.add_argument(
        "--data",
        type=str,
        default=None,
        help="image folder (e.g. ImageNet train/); default: generated dead-leaves images",
    )
    p.add_argument(
        "--generator",
        choices=("deadleaves", "edges", "textures", "textures-grey", "pink", "mix"),
        default=None,
        help="TDANN without --data: what the generated images show (default deadleaves; edges = oriented "
        "bars, textures = oriented band-pass noise (textures-grey: without colour), pink = 1/f noise, "
        "mix = all four)",
    )


def _cwm_options(p) -> None:
    """Options of CWM runs: frame timing, position encoding, loss weighting, generated scenes."""
    p.add_argument(
        "--gap-ms",
        dest="gap_ms",
        type=float,
        default=None,
        help="CWM with --data: time between the two frames in ms (150)",
    )
    p.add_argument(
        "--pos-embed",
        dest="pos_embed",
        choices=("1d", "separable", "rope"),
        default=None,
        help="CWM: position encoding (default rope on the CPU tiers, 1d on the GPU shapes; rope = the separable "
        "2-D table plus rotary embeddings in every attention, measured in docs/experiments.md)",
    )
    p.add_argument(
        "--motion-weight",
        dest="motion_weight",
        type=float,
        default=None,
        help="CWM: weight each hidden pixel's error by 1 + LAMBDA * |frame 1 - frame 0| / mean (0 = the plain MSE; "
        "an option of this project, measured in docs/experiments.md)",
    )
    p.add_argument(
        "--spot-density",
        dest="spot_density",
        type=float,
        default=None,
        help="CWM on generated videos: grey spots per 100 px^2 painted into the textures, moving with their surface "
        "(0 = none; validation and cwm eval scenes have none; measured in docs/experiments.md)",
    )
    p.add_argument(
        "--camera-prob",
        dest="camera_prob",
        type=float,
        default=None,
        help="CWM on generated videos: share of scenes whose camera moves (0.5); a lower share teaches the model "
        "that the background can stand still, which the Spelke segments need (docs/experiments.md)",
    )
    p.add_argument(
        "--glued-prob",
        dest="glued_prob",
        type=float,
        default=None,
        help="CWM on generated videos: chance that an object is a glued pair of two differently coloured shapes (0.3)",
    )
    p.add_argument(
        "--fps", type=float, default=None, help="CWM with --data: frame rate of frame folders that have no fps.txt"
    )


def _schedule_options(p) -> None:
    """Starting weights, length of training, batch, input size, network and optimizer."""
    p.add_argument(
        "--init-from",
        dest="init_from",
        type=str,
        default=None,
        help="start from the weights of this run folder, checkpoint folder or .safetensors file (same architecture); "
        "the optimizer, schedule and step count start afresh (fine-tuning, e.g. a CWM on your own --data)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, default=None, help="optimizer steps (quick preset: 1000)")
    g.add_argument(
        "--epochs", type=float, default=None, help="passes over --data (generated data: 10,000 images per epoch)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="global images per step (quick 64, paper 512); SimCLR uses 2 views each",
    )
    p.add_argument("--image-size", type=int, default=None, help="input side in px (quick 64, paper 224)")
    p.add_argument("--arch", type=str, default=None, help="registered network (resnet18, resnet18_w32, ...)")
    p.add_argument("--lr", type=float, default=None, help="base learning rate (default 0.3 * batch / 256, cosine to 0)")
    p.add_argument("--weight-decay", type=float, default=None, help="weight decay on non-BatchNorm parameters (1e-6)")


def _sheet_options(p) -> None:
    """The simulated cortical sheet: neighbourhoods, scale and unit positions."""
    p.add_argument(
        "--neighborhoods-per-step",
        type=int,
        default=None,
        help="neighbourhoods drawn per layer per step (quick preset 2, paper 8)",
    )
    p.add_argument("--scale", choices=("human", "macaque"), default=None, help="cortical sheet sizes (default human)")
    p.add_argument(
        "--positions",
        type=str,
        default=None,
        help="use these unit positions (a positions folder or file) instead of retinotopic ones",
    )
    p.add_argument(
        "--neighborhood-windows",
        dest="n_neighborhood_windows",
        type=int,
        default=None,
        help="random windows drawn to precompute neighbourhoods (20000)",
    )
    p.add_argument("--position-jitter", type=float, default=None, help="sd in mm of Gaussian position jitter (0)")


def _run_options(p) -> None:
    """Where and how the run executes: device, threads, workers, checkpoints, output, seed, resume."""
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to train: auto = cuda if a GPU is visible, else cpu. The presets follow it: the CPU "
        "gets the quick preset, CUDA the paper-scale one with bf16 mixed precision and channels-last",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="CPU threads (as `neurocwm --threads N`; default: OMP_NUM_THREADS, else the cores that "
        "other jobs running now leave free; a resumed run keeps the count it recorded, so that it equals an "
        "uninterrupted one)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="data-loading processes for --data (default: CPU count - 1, at most 8; 0 = in the main process)",
    )
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    p.add_argument(
        "--out", type=str, default=None, help="run folder (default runs/<model>-<objective>-alpha<alpha>-seed<seed>)"
    )
    p.add_argument("--seed", type=int, default=None, help="seeds weights, data, augmentations, positions (default 0)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest intact checkpoint, with the run's own settings "
        "(options given must agree with them, except --steps/--epochs, --device, --workers, ...)",
    )
    p.add_argument("--force", action="store_true", help="overwrite a run already in --out")
    add_no_progress(p, "the progress bar")


def run(args: argparse.Namespace) -> int:
    run_dir = train(args)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"run written to {run_dir}")
    return 0


def train(args: argparse.Namespace) -> Path:
    """Resolve the family, task and output folder of parsed ``fit`` arguments, train, return the run folder."""
    from neurocwm.threads import configure_threads, user_chose_threads

    run_cfg = _resumed_config(args)
    # the run's family trains it; the --model choice whose options apply is its fit_model
    fam = get_family(args.model) if args.model is not None else family_of(run_cfg)
    family = fam.fit_model
    for other in map(get_family, FAMILIES):
        for name in other.fit_options:
            if other.name != family and getattr(args, name) is not None:
                raise ValueError(f"--{name.replace('_', '-')} applies to --model {other.name} only")
    threads_given = getattr(args, "threads", None) is not None or user_chose_threads()
    if not threads_given and run_cfg and run_cfg.get("threads"):
        # CPU float reductions are bitwise reproducible only for a fixed thread count: keep the run's
        configure_threads(int(run_cfg["threads"]))
    import torch

    task = fam.task()
    from neurocwm.train import fit

    options = {k: v for k, v in vars(args).items() if k not in ("func", "command", "model")}
    options["threads"] = torch.get_num_threads()
    if args.model is not None or not run_cfg:
        options["model_family"] = family
    if options["out"] is None:
        if args.resume:
            raise ValueError("--resume needs --out RUN (the run folder to continue)")
        alpha = args.alpha if args.alpha is not None else fam.default_alpha
        objective = args.objective or fam.default_objective
        options["out"] = str(Path("runs") / f"{family}-{objective}-alpha{alpha:g}-seed{args.seed or 0}")
    return fit(options, task)


def _resumed_config(args: argparse.Namespace) -> dict | None:
    """The config.json of the run ``--resume`` continues (None when not resuming or no run is there)."""
    if not args.resume or not args.out:
        return None
    from neurocwm.train.loop import read_run_config

    out = Path(args.out).expanduser()
    return read_run_config(out) if (out / "config.json").is_file() else None
