"""Our CWM transformer block against PyTorch's ``nn.TransformerEncoderLayer`` (issue 6, item 1).

The issue asks for a well-kept library's transformer blocks unless our own is measured faster.
timm cannot be imported on a CPU-only torch from PyPI (timm needs torchvision, whose PyPI wheels
are CUDA builds: ``operator torchvision::nms does not exist``), so the well-kept block measured
here is PyTorch's own pre-LN ``nn.TransformerEncoderLayer`` (``norm_first=True``, GELU, with its
fused inference fast path). Both blocks get the same weights and are first checked to compute the
same function; then, side by side in this process, the time of a training step (forward +
backward) and of an inference forward at the encoder shapes of the CPU tiers and of ViT-B/8
(frame-0 tokens plus 10 % of frame 1). Ratios > 1 mean ours is slower. Our block is kept because it
takes the rotary angles (``pos_embed="rope"``) that the library block has no input for.

    python benchmarks/cwm_blocks.py [--threads 2] [--repeats 20]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch import nn

from neurocwm.cwm.model import PRESETS, Block


def library_twin(ours: Block, dim: int, heads: int) -> nn.TransformerEncoderLayer:
    """``nn.TransformerEncoderLayer`` holding the weights of ``ours`` (same function)."""
    lib = nn.TransformerEncoderLayer(
        dim,
        heads,
        dim_feedforward=ours.mlp[0].out_features,
        dropout=0.0,
        activation="gelu",
        layer_norm_eps=1e-6,
        batch_first=True,
        norm_first=True,
    )
    with torch.no_grad():
        lib.self_attn.in_proj_weight.copy_(ours.attn.qkv.weight)
        lib.self_attn.in_proj_bias.copy_(ours.attn.qkv.bias)
        lib.self_attn.out_proj.weight.copy_(ours.attn.proj.weight)
        lib.self_attn.out_proj.bias.copy_(ours.attn.proj.bias)
        lib.linear1.load_state_dict(ours.mlp[0].state_dict())
        lib.linear2.load_state_dict(ours.mlp[2].state_dict())
        lib.norm1.load_state_dict(ours.norm1.state_dict())
        lib.norm2.load_state_dict(ours.norm2.state_dict())
    return lib


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"{platform.machine()}, torch {torch.__version__}, {args.threads} threads; median of {args.repeats}")
    print("| shape | tokens x batch | train step ours / library (ms) | ratio | inference ours / library (ms) | ratio |")
    print("|---|---|---|---|---|---|")
    for name, batch in (("smoke", 32), ("tiny", 32), ("vitb8", 4)):
        cfg = PRESETS[name]
        n = (cfg.image_size // cfg.patch_size) ** 2
        tokens = n + max(1, n // 10)
        ours = Block(cfg.enc_dim, cfg.enc_heads)
        lib = library_twin(ours, cfg.enc_dim, cfg.enc_heads)
        x = torch.randn(batch, tokens, cfg.enc_dim)
        with torch.no_grad():
            ours.eval(), lib.eval()
            diff = float((ours(x) - lib(x)).abs().max())
        if diff > 1e-4:
            raise SystemExit(f"{name}: the two blocks differ by {diff:.2e}; the comparison would be unfair")
        ours.train(), lib.train()

        def step(block):
            def run():
                xi = x.clone().requires_grad_(True)
                block(xi).square().mean().backward()

            return run

        def infer(block):
            def run():
                with torch.inference_mode():
                    block(x)

            return run

        t_train = [_time(step(b), args.repeats) for b in (ours, lib)]
        ours.eval(), lib.eval()
        t_inf = [_time(infer(b), args.repeats) for b in (ours, lib)]
        print(
            f"| {name} ({cfg.enc_dim} wide, {cfg.enc_heads} heads) | {tokens} x {batch} | {1e3 * t_train[0]:.2f} / {1e3 * t_train[1]:.2f} | "
            f"{t_train[0] / t_train[1]:.2f} | {1e3 * t_inf[0]:.2f} / {1e3 * t_inf[1]:.2f} | {t_inf[0] / t_inf[1]:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
