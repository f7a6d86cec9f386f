"""Training curves of a CWM run (issue 6, item 7) as a Markdown table.

Reads ``RUN/metrics.jsonl`` and prints, at every validation step: the training loss relative to
"copy frame 0" (mean over the preceding ``--window`` steps), the validation hidden-patch MSE
relative to copy-frame-0 with K = 3, 6, 12, 24 (tiny-tier counts) frame-1 patches revealed, the
same on moving pixels, and the tracer-probe EPE (argmax, soft-argmax, points moving >= 3 px)
beside zero flow, plus the median step time.

    python benchmarks/cwm_curves.py runs/cwm-tiny
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def curve_rows(run: str | Path, window: int = 100) -> list[dict]:
    """One dict per validation step of ``run``'s metrics."""
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        return []
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    train = [r for r in recs if "step_time_s" in r]
    rows = []
    for r in recs:
        if "val/zero_epe" not in r:
            continue
        ks = sorted(int(k.rsplit("_", 1)[1]) for k in r if k.startswith("val/mse_at_"))
        win = [x for x in train if r["step"] - window < x["step"] <= r["step"]]
        times = sorted(x["step_time_s"] for x in win)
        rows.append(
            {
                "step": r["step"],
                "train_rel_copy": sum(x["rel_copy"] for x in win) / max(1, len(win)),
                "ks": ks,
                "rel": [r[f"val/mse_at_{k}"] / r[f"val/copy_at_{k}"] for k in ks],
                "mse": [r[f"val/mse_at_{k}"] for k in ks],
                "rel_moving": [r[f"val/mse_moving_at_{k}"] / r[f"val/copy_moving_at_{k}"] for k in ks],
                "tracer": r["val/tracer_epe"],
                "tracer_soft": r.get("val/tracer_soft_epe", float("nan")),
                "zero": r["val/zero_epe"],
                "tracer_fast": r.get("val/tracer_epe_fast", float("nan")),
                "zero_fast": r.get("val/zero_epe_fast", float("nan")),
                "step_time": times[len(times) // 2] if times else float("nan"),
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    if not rows:
        return "(no validation steps yet)\n"
    ks = rows[0]["ks"]
    head = (
        "| step | train MSE / copy | val MSE / copy at K = " + ", ".join(map(str, ks)) + " | same, moving pixels "
        "| val MSE at K (x1e3) | tracer EPE (argmax / soft) | zero EPE | tracer / zero, >= 3 px | s/step |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['step']} | {r['train_rel_copy']:.3f} | "
            + " / ".join(f"{v:.3f}" for v in r["rel"])
            + " | "
            + " / ".join(f"{v:.3f}" for v in r["rel_moving"])
            + " | "
            + " / ".join(f"{1e3 * v:.1f}" for v in r["mse"])
            + f" | {r['tracer']:.2f} / {r['tracer_soft']:.2f} | {r['zero']:.2f} | {r['tracer_fast']:.2f} / {r['zero_fast']:.2f} | {r['step_time']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--window", type=int, default=100, help="training steps averaged before each validation")
    args = ap.parse_args()
    for run in args.runs:
        print(f"{run}\n")
        print(markdown(curve_rows(run, args.window)))


if __name__ == "__main__":
    main()
