"""Draw the cosine similarities of a ViT's patch position embeddings (the ViT paper's Figure 7).

Tile (r, c) of the g x g grid shows how similar the embedding of patch (r, c) is to the embedding of
every other patch, on one colour scale from -1 to 1. Give a fine-tuned checkpoint (--ckpt) or a
package model by name (--model, pretrained by default) to see the embeddings before fine-tuning.

  python p1_vis_pos_embed.py --ckpt runs/l16/best.pt --out pos_embed.png
  python p1_vis_pos_embed.py --model L_16_imagenet1k --out pos_embed_pretrained.png
"""
import argparse
from pathlib import Path

from data.entry import run_main  # first: Ctrl-C during the slow imports below is one line
from data.io import UserError
from data.outputs import check_distinct_outputs, check_output_file
from models.checkpoint import model_from_checkpoint
from models.figures.classifier import POS_EMBED_DPI, position_embedding_figure, save_array, save_colormap_png
from models.explain.maps import position_embedding_similarity
from models.figures.plots import save_figure
from models.vit import MODEL_NAMES, build_vit, check_image_size, grid_size

FIGURE_FORMATS = (".png", ".pdf", ".svg")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt", metavar="FILE", help="a checkpoint written by p1_train.py")
    source.add_argument("--model", choices=MODEL_NAMES, metavar="NAME",
                        help=f"a model by name, pretrained unless --no_pretrained: {', '.join(MODEL_NAMES)}")
    p.add_argument("--no_pretrained", action="store_true",
                   help="with --model: randomly initialised embeddings (no download)")
    p.add_argument("--weights", metavar="FILE",
                   help="with --model: load the pretrained weights from this local file instead of the URL")
    p.add_argument("--image_size", type=int, metavar="N",
                   help="with --model: input size (default the model's native size); "
                        "the pretrained embeddings are resized to the new grid")
    p.add_argument("--out", required=True, metavar="PNG",
                   help=f"the figure to write ({', '.join(FIGURE_FORMATS)})")
    p.add_argument("--save_npy", metavar="FILE", help="also write the (g*g, g*g) cosine matrix as .npy")
    return p.parse_args(argv)


def load_model(args):
    """(model, a few words on where its embeddings come from)."""
    if args.ckpt:
        if args.no_pretrained or args.weights or args.image_size:
            raise UserError("--no_pretrained, --weights and --image_size go with --model, not --ckpt")
        model, config = model_from_checkpoint(args.ckpt)
        return model, f"{config['model']}, checkpoint {Path(args.ckpt).name}"
    if args.no_pretrained and args.weights:
        raise UserError("--no_pretrained and --weights contradict each other; give one")
    model = build_vit(args.model, image_size=check_image_size(args.model, args.image_size), pretrained=not args.no_pretrained,
                      weights=args.weights)
    origin = "random init" if args.no_pretrained else "pretrained"
    return model, f"{args.model}, {origin}"


def main(argv=None):
    args = parse_args(argv)
    if Path(args.out).suffix.lower() not in FIGURE_FORMATS:
        raise UserError(f"--out {args.out}: the figure must end in one of {', '.join(FIGURE_FORMATS)}")
    inputs = [path for path in (args.ckpt, args.weights) if path]
    check_output_file(args.out, "--out", inputs)
    if args.save_npy:
        check_output_file(args.save_npy, "--save_npy", inputs)
    check_distinct_outputs({"--out": args.out, "--save_npy": args.save_npy})
    model, origin = load_model(args)
    gh, gw = grid_size(model)
    similarity = position_embedding_similarity(model.positional_embedding.pos_embedding,
                                               has_class_token=hasattr(model, "class_token"))
    size = model.image_size if isinstance(model.image_size, int) else model.image_size[0]
    title = f"Position-embedding similarity\n{origin}, {size} px, {gh}x{gw} patches"
    fig = position_embedding_figure(similarity, (gh, gw), title)
    if args.out.lower().endswith(".png"):
        save_colormap_png(fig, args.out, dpi=POS_EMBED_DPI)
    else:  # vector formats keep every value as drawn
        save_figure(fig, args.out, dpi=POS_EMBED_DPI)
    print(f"wrote {args.out}")
    if args.save_npy:
        save_array(args.save_npy, similarity.numpy())
        print(f"wrote {args.save_npy}")


if __name__ == "__main__":
    run_main(main)
