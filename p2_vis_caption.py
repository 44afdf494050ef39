"""Caption images with CATR and show, for every generated word, where the decoder looked.

One PNG per input image, named like it (bike.jpg -> OUT_DIR/bike.png): the caption as title, the
image under <start>, then one panel per generated WordPiece token with the decoder's cross-attention
for it blended over the image, and <end> last (absent when --max_steps cut the caption short).

Defaults: CATR v2 and the second-to-last decoder layer (--layer -2, i.e. layer 4 of 0..5), averaged
over the 8 heads: in the report this repository reproduces, v2 gave the best captions and that layer's
maps matched the words better than the last one's.

    python p2_vis_caption.py --img_dir images/ --out_dir out/
    python p2_vis_caption.py --images bike.jpg ski.jpg --out_dir out/ --version v3 --layer -1 --heads all
"""
import argparse
from pathlib import Path

import torch
from tqdm import tqdm

import catr
from catr.figure import caption_figure
from data.images import list_images, open_rgb
from data.io import UserError, run_main, warn
from models.figures import save_array
from models.plots import save_figure
from models.runtime import resolve_device

DEFAULT_LAYER = -2


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--images", nargs="+", metavar="IMG", help="image files to caption")
    inputs.add_argument("--img_dir", help="caption every .jpg/.jpeg/.png in this folder")
    parser.add_argument("--out_dir", required=True, help="where the PNGs (and .npy maps) go")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--version", default=catr.DEFAULT_VERSION,
                         help=f"published weights ({', '.join(catr.WEIGHT_URLS)}), downloaded once into the "
                              "torch hub cache (default: %(default)s)")
    weights.add_argument("--weights", metavar="FILE",
                         help="a local checkpoint instead: a dict with the state dict under 'model'")
    # Tests and the demo: a randomly initialised model, whose captions are noise.
    weights.add_argument("--random_weights", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=sorted(catr.CONFIGS), default="catr", help=argparse.SUPPRESS)
    parser.add_argument("--layer", type=int, default=DEFAULT_LAYER,
                        help="decoder layer whose cross-attention is drawn; negative counts from the last "
                             "(default: %(default)s, the second-to-last = 4 of 0..5)")
    parser.add_argument("--heads", choices=("mean", "all"), default="mean",
                        help="draw the mean over heads, or one row per head (default: %(default)s)")
    parser.add_argument("--save_npy", action="store_true",
                        help="also write OUT_DIR/<stem>.npy: the maps drawn, (tokens, h, w) or "
                             "(tokens, heads, h, w), one entry per panel after <start>")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--max_steps", type=int, default=catr.MAX_STEPS,
                        help="at most this many tokens, 1..%(default)s (default: %(default)s)")
    return parser.parse_args(argv)


def check_layer(layer: int, num_layers: int) -> int:
    if not -num_layers <= layer < num_layers:
        raise UserError(f"--layer {layer} is out of range: the decoder has {num_layers} layers "
                        f"(0..{num_layers - 1}, or -{num_layers}..-1)")
    return layer % num_layers


def check_output_names(paths: list) -> None:
    """Two inputs with one stem (bike.jpg, bike.png) would overwrite each other's figure."""
    by_stem = {}
    for path in paths:
        if path.stem in by_stem:
            raise UserError(f"{by_stem[path.stem]} and {path} would both be written as {path.stem}.png")
        by_stem[path.stem] = path


def build_captioner(args, device: torch.device):
    if args.random_weights:
        warn(f"random weights ({args.config} configuration): the captions are noise")
        torch.manual_seed(0)
        return catr.build_model(args.config).to(device).eval()
    return catr.load_model(args.version, args.weights, config=args.config, device=device)


def main(argv=None) -> None:
    args = parse_args(argv)
    if not 1 <= args.max_steps <= catr.MAX_STEPS:
        raise UserError(f"--max_steps must be in 1..{catr.MAX_STEPS}, got {args.max_steps}")
    paths = list_images(args.img_dir) if args.img_dir else [Path(p) for p in args.images]
    check_output_names(paths)
    device = resolve_device(args.device)
    model = build_captioner(args, device)
    layer = check_layer(args.layer, len(model.transformer.decoder.layers))
    tokenizer = catr.load_tokenizer()
    if args.random_weights:
        source = "random weights: the caption is noise"
    else:
        source = args.weights or f"CATR {args.version}"
    heads = "mean over heads" if args.heads == "mean" else "one row per head"
    note = f"{source}; decoder layer {layer}, {heads}"

    out_dir = Path(args.out_dir)
    unreadable = []
    for path in tqdm(paths, desc="captioning", unit="image"):
        try:
            image = catr.resize_longer_side(open_rgb(path))
        except UserError as err:
            warn(f"{err}; skipped")
            unreadable.append(path)
            continue
        decoded = catr.greedy_decode(model, catr.preprocess(image).to(device), max_steps=args.max_steps)
        caption = tokenizer.decode(decoded.ids) or "(empty caption)"
        maps = decoded.attention[:, layer]
        maps = (maps.mean(dim=1) if args.heads == "mean" else maps).numpy()
        labels = tokenizer.tokens(decoded.ids) + (["<end>"] if decoded.ended else [])
        save_figure(caption_figure(image, caption, labels, maps, note), out_dir / f"{path.stem}.png")
        if args.save_npy:
            save_array(out_dir / f"{path.stem}.npy", maps)
        tqdm.write(f"{path.name}: {caption}")
    if unreadable:
        raise UserError(f"{len(unreadable)} of {len(paths)} images could not be read (see the warnings above)")


if __name__ == "__main__":
    run_main(main)
