"""Benchmark training run of a CWM (issue 6, item 7): the trainer with the recipe's options.

``neurocwm fit --model cwm`` exposes the common options; this script also sets the CWM-specific
ones (visible-count range, motion, validation cadence, ...) as ``key=value`` pairs (values parsed
as JSON), pins the torch thread count and prints the per-step time at the end. Resumable: run it
again with ``--resume`` and a larger ``steps=``.

    nice -n 10 python benchmarks/cwm_train.py runs/cwm-smoke arch=smoke steps=3000 validate_every=250
    nice -n 10 python benchmarks/cwm_train.py runs/cwm-tiny steps=8000 --resume
    nice -n 10 python benchmarks/cwm_train.py runs/optcwm --task optcwm base_run='"runs/cwm-smoke"' steps=600

The training curves (``val/mse_at_K``, ``val/tracer_epe`` ...) are in ``RUN/metrics.jsonl``;
``benchmarks/cwm_curves.py RUN`` tabulates them.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="run folder")
    ap.add_argument("options", nargs="*", metavar="KEY=VALUE", help="configuration overrides (JSON values)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    tasks = ("cwm", "optcwm")
    ap.add_argument(
        "--task", choices=tasks, default="cwm", help="optcwm: the learned-tracer stage on a trained base_run"
    )
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_intermixed_args()
    torch.set_num_threads(args.threads)
    from neurocwm.cwm.task import CWMTask, OptCWMTask
    from neurocwm.train import fit

    task = OptCWMTask() if args.task == "optcwm" else CWMTask()
    opts = {
        "device": "cpu",
        "out": args.out,
        "resume": args.resume,
        "force": args.force,
        "progress": False,
        "model_family": args.task,
    }
    for item in args.options:
        key, sep, val = item.partition("=")
        if not sep:
            raise SystemExit(f"options must be KEY=VALUE, got {item!r}")
        opts[key] = _value(val)
    t0 = time.perf_counter()
    run = fit(opts, task)
    dt = time.perf_counter() - t0
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step_time_s"] for r in recs if "step_time_s" in r]
    med = sorted(steps)[len(steps) // 2] if steps else float("nan")
    print(
        f"{run}: {recs[-1]['step'] if recs else 0} steps; this call {dt:.0f} s; median step {med:.3f} s "
        f"({args.threads} threads, {platform.machine()}, torch {torch.__version__})"
    )


if __name__ == "__main__":
    main()
