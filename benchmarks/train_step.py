"""Cost of the spatial loss in a TDANN training step.

Times one optimizer step (forward, loss, backward, SGD update) at alpha = 0 (task loss only) and
at alpha = 0.25 (task + 0.25 * sum over 8 layers of SL_rel) for the same model, batch and image
size, interleaved in the same process, and prints the medians and their ratio. Data generation
is excluded (the same pre-made batch is reused) so the ratio isolates the loss.

    python benchmarks/train_step.py                      # CPU quick preset (resnet18_w32, 64 px, batch 64)
    python benchmarks/train_step.py --preset paper       # ResNet-18, 224 px, batch 256 (use a GPU)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from neurocwm.tdann import PRESETS, TDANNTask
from neurocwm.train.loop import resolve_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=("quick", "paper"), default="quick")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--neighborhoods-per-step", type=int, default=None, help="default: the preset's")
    args = ap.parse_args()
    device = torch.device(args.device)
    preset = dict(PRESETS[args.preset])
    batch = args.batch_size or (256 if args.preset == "paper" else preset["batch_size"])
    times: dict[float, list[float]] = {0.0: [], 0.25: []}
    setups = {}
    with tempfile.TemporaryDirectory() as tmp:
        for alpha in times:
            task = TDANNTask()
            opts = {
                "alpha": alpha,
                "arch": preset["arch"],
                "image_size": preset["image_size"],
                "batch_size": batch,
                "steps": 100,
                "out": str(Path(tmp) / f"a{alpha}"),
                "neighborhoods_per_step": args.neighborhoods_per_step or preset["neighborhoods_per_step"],
                "n_neighborhood_windows": 2000,
            }
            cfg = resolve_config(opts, task, device, 1)
            torch.manual_seed(0)
            model = task.build_model(cfg).to(device)
            if device.type == "cuda":
                model = model.to(memory_format=torch.channels_last)
            (Path(tmp) / f"a{alpha}").mkdir()
            task.setup(cfg, model, Path(tmp) / f"a{alpha}", device, True, lambda: None)
            opt = torch.optim.SGD(task.param_groups(model, cfg), lr=cfg["lr"], momentum=0.9)
            b = next(task.make_batches(cfg, 0, 1, 0, device))
            setups[alpha] = (task, model, opt, b)

        def step(alpha: float) -> float:
            task, model, opt, b = setups[alpha]
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            ctx = (
                torch.autocast("cuda", dtype=torch.bfloat16)
                if device.type == "cuda"
                else torch.autocast("cpu", enabled=False)
            )
            with ctx:
                loss, _ = task.compute_loss(model, b, 0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - t0

        for alpha in times:  # warm-up
            step(alpha)
            step(alpha)
        for _ in range(args.repeats):
            for alpha in times:
                times[alpha].append(step(alpha))

    t0, t1 = statistics.median(times[0.0]), statistics.median(times[0.25])
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    )
    print(f"machine: {name}; torch {torch.__version__}")
    print(
        f"preset {args.preset}: {preset['arch']}, {preset['image_size']} px, batch {batch} images (x2 views), "
        f"{args.neighborhoods_per_step or preset['neighborhoods_per_step']} neighbourhoods/layer/step"
    )
    print(f"step time alpha=0    : {t0 * 1000:8.1f} ms (median of {args.repeats})")
    print(f"step time alpha=0.25 : {t1 * 1000:8.1f} ms")
    print(f"ratio alpha=0.25 / alpha=0 : {t1 / t0:.3f}  (spatial loss = {100 * (t1 - t0) / t1:.1f} % of the step)")


if __name__ == "__main__":
    main()
