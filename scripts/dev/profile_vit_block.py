"""Where one ViT block's time goes, fast vs explicit attention: the matmuls both paths share, and each
attention kernel alone. Explains the ratio bench_infer.py measures on a CPU.

    python scripts/dev/profile_vit_block.py --model B_16_imagenet1k --batch_size 4 --device cpu
"""
import argparse

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
import torch
import torch.nn.functional as F
from models.attention import set_attention
from benchlib import random_model, time_alternating
from models.training.runtime import resolve_device
from models.vit import MODEL_NAMES, native_image_size


def fastest(fn, repeats: int, device: torch.device) -> float:
    return min(time_alternating({"fn": fn}, repeats, 1, device)["fn"])


@torch.inference_mode()
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=MODEL_NAMES, default="B_16_imagenet1k", help="(default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=4, help="(default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=6, help="timed runs; the fastest counts (default: %(default)s)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    model = random_model(args.model, native_image_size(args.model), device).eval()
    block = model.transformer.blocks[0]
    attn = block.attn
    dim, heads = attn.proj_q.in_features, attn.n_heads
    tokens = model.positional_embedding.pos_embedding.shape[1]
    x = torch.randn(args.batch_size, tokens, dim, device=device)
    q = k = v = torch.randn(args.batch_size, heads, tokens, dim // heads, device=device)
    t = {
        "q/k/v projections": lambda: (attn.proj_q(x), attn.proj_k(x), attn.proj_v(x)),
        "output projection": lambda: block.proj(x),
        "MLP": lambda: block.pwff(x),
        "fused attention (SDPA)": lambda: F.scaled_dot_product_attention(q, k, v),
        "explicit attention": lambda: F.softmax(q @ k.transpose(-2, -1) / (dim // heads) ** 0.5, dim=-1) @ v,
    }
    seconds = {name: fastest(fn, args.repeats, device) for name, fn in t.items()}
    set_attention(model, "explicit")
    seconds["block, explicit"] = fastest(lambda: block(x, None), args.repeats, device)
    set_attention(model, "fast")
    seconds["block, fast"] = fastest(lambda: block(x, None), args.repeats, device)
    print(f"{args.model}, one block, batch {args.batch_size}, {tokens} tokens, fp32, {device}, fastest of {args.repeats}")
    for name, s in seconds.items():
        print(f"  {name:<24s} {s:.4f} s")
    shared = seconds["q/k/v projections"] + seconds["output projection"] + seconds["MLP"]
    print(f"block ratio explicit / fast: {seconds['block, explicit'] / seconds['block, fast']:.2f}x; "
          f"bound with free attention: {seconds['block, explicit'] / shared:.2f}x")


if __name__ == "__main__":
    run_main(main)
