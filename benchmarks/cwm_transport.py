"""Does a CWM carry frame-0 content along the motion? Flow measured on its factual prediction.

For held-out generated pairs, K frame-1 patches are revealed and the CWM predicts the rest of
frame 1; DIS (on x4 upsampled input, the strongest classical baseline here) then measures the flow
between frame 0 and that *predicted* frame 1, on the hidden pixels that move >= 3 px. If the model
moves content, this flow beats zero flow; as a control, the same is done on frame 0 with only the
K revealed patches pasted in ("paste"), and on the true frame 1 ("true", the ceiling). This is a
diagnostic of what the model learned, not a readout (it uses a classical matcher); the tracer and
Jacobian readouts are in ``neurocwm cwm eval``.

    python benchmarks/cwm_transport.py runs/cwm-smoke
    python benchmarks/cwm_transport.py runs/cwm-smoke --scene default --where object

Prints one row per K: EPE (px) of predicted / paste / zero / true, and the ratio predicted / zero.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a CWM run folder")
    ap.add_argument(
        "--checkpoint", default=None, help="weights file or checkpoint folder (default: the run's final/latest)"
    )
    scenes, where = ("run", "default"), ("moving", "object")
    ap.add_argument(
        "--scene", choices=scenes, default="run", help="the run's own generator settings, or the default one"
    )
    ap.add_argument(
        "--where", choices=where, default="moving", help="pixels scored: moving >= 3 px, or object pixels only"
    )
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from neurocwm.cwm.eval import opencv_flows
    from neurocwm.cwm.masking import sample_visible
    from neurocwm.cwm.task import DEFAULTS, _scene_config
    from neurocwm.cwm.video import make_pair
    from neurocwm.runs import load_run

    run = load_run(args.run, checkpoint=args.checkpoint)
    cfg = dict(run.config)
    if args.scene == "default":
        cfg.update(
            {
                k: DEFAULTS[k]
                for k in ("noise_sigma", "camera_prob", "max_camera", "camera_quantum", "max_motion", "min_motion")
            }
        )
    model, size = run.model.eval(), int(cfg["image_size"])
    grid, ps = model.grid, model.patch_size
    scene = _scene_config(cfg, size)
    flow = opencv_flows()["dis_x4"]
    ks = (0, round(0.1 * grid**2), round(0.1875 * grid**2), round(0.375 * grid**2))
    rows = {k: {"pred": [], "paste": [], "zero": [], "true": []} for k in ks}
    for i in range(args.pairs):
        item = make_pair(np.random.SeedSequence([args.seed, i]), scene)
        f0, f1, gt = item["frames"][0], item["frames"][1], item["flow"]
        sel = np.linalg.norm(gt, axis=-1) >= 3
        if args.where == "object":
            sel &= item["ids"] > 0
        frames = torch.from_numpy(np.ascontiguousarray(item["frames"].transpose(0, 3, 1, 2)))[None]
        true_flow = flow(f0, f1)
        for k in ks:
            vis = sample_visible(1, grid, k, generator=torch.Generator().manual_seed(args.seed + i))
            hid = np.kron((~vis[0]).view(grid, grid).numpy(), np.ones((ps, ps), bool))
            m = sel & hid
            if m.sum() < 5:
                continue
            with torch.no_grad():
                pred = model.predict(frames, vis)[0].clamp(0, 1).permute(1, 2, 0).numpy()
            paste = np.where(hid[..., None], f0, f1)

            def epe(f):
                return float(np.linalg.norm(f - gt, axis=-1)[m].mean())

            for name, f in (
                ("pred", flow(f0, pred)),
                ("paste", flow(f0, paste)),
                ("zero", np.zeros_like(gt)),
                ("true", true_flow),
            ):
                rows[k][name].append(epe(f))
    print(f"{args.run} ({args.scene} scene, {args.where} pixels moving >= 3 px, {args.pairs} pairs, DIS x4)")
    print("| K revealed | pairs | predicted | paste | zero | true frame 1 | predicted / zero |")
    print("|---|---|---|---|---|---|---|")
    for k, r in rows.items():
        if not r["pred"]:
            continue
        mean = {n: float(np.mean(v)) for n, v in r.items()}
        print(
            f"| {k} | {len(r['pred'])} | {mean['pred']:.2f} | {mean['paste']:.2f} | {mean['zero']:.2f} | {mean['true']:.2f} | {mean['pred'] / mean['zero']:.3f} |"
        )


if __name__ == "__main__":
    main()
