"""Draw where a fine-tuned ViT's [class] token looks: one figure per image.

Each figure shows the image as the model saw it (resized and normalised as in evaluation), the
attention map on the patch grid, and the map blended over the image, titled with the predicted class
and its probability. Methods:
  last     the assignment's map: layer --layer (default the last), query = [class] token,
           keys = the patches, mean over heads
  rollout  attention rollout (Abnar & Zuidema 2020) through layers 0..--layer: per layer the heads
           fused (--head_fusion), 0.5 * A + 0.5 * I with rows renormalised to 1, multiplied upward
  heads    one panel per head of layer --layer
  relevancy  class-specific relevancy (Chefer, Gur & Wolf, ICCV 2021) through all layers: each
           layer's attention weighted by its gradient for the class --target_class (default the
           predicted class), negative parts dropped, accumulated from R = I as R + A_bar @ R
  attnlrp  AttnLRP, CP-LRP variant (Achtibat et al., ICML 2024): input x gradient for --target_class
           with the LRP rules (LayerNorm scale and softmax weights held constant, GELU identity),
           summed per patch; signed, the patches' relevance adds up to the logit less the biases'
  legrad   LeGrad (Bousselham et al., ICCV 2025): per layer, the positive gradient of that layer's
           own [class] token's --target_class logit with respect to its attention, summed, min-max
Layers and heads are numbered from 0, as in Python; negative --layer counts from the end.

With --html FILE, one interactive page for all the images (docs/explorer.md): every layer and head,
the attention from any patch, rollout, relevancy for the top-5 classes and the position-embedding
similarity of any patch, each layer's heads ranked by importance. It is one self-contained file: open
it in a browser, no network needed. --compare CKPT2 puts a second model's maps of the same images
beside the first's, driven by the same controls; --scores FILE shows the scores eval_explanations.py
wrote beside each method.

  python p1_vis_attention.py --ckpt runs/l16/best.pt --out_dir figs
  python p1_vis_attention.py --ckpt runs/l16/best.pt --images cat.jpg --out_dir figs --method rollout heads
  python p1_vis_attention.py --ckpt runs/l16/best.pt --images cat.jpg --out_dir figs --method relevancy \
      --target_class 5
  python p1_vis_attention.py --ckpt runs/l16/best.pt --images cat.jpg dog.jpg --html maps.html
  python p1_vis_attention.py --ckpt runs/l16/best.pt --images cat.jpg --html maps.html \
      --compare runs/l16_sgd/best.pt --scores expl.json
"""
import argparse
from dataclasses import replace
from pathlib import Path

from data.entry import run_main
from data.io import UserError, warn
from data.images import check_unique_stems, open_rgb
from data.flags import layer_index
from data.outputs import check_names_fit, check_output_folder, refuse_inputs
from data.pets import class_names_or_default
from data.transforms import denormalize, eval_transform_from_config, normalization
from models.checkpoint import model_from_checkpoint
from models.explain.maps import HEAD_FUSIONS
from models.explain.methods import DRAWN, MAP_METHODS, MapOptions, compute_maps
from models.figures.classifier import ATTENTION_DPI, attention_figure, heads_figure
from models.figures.explorer import check_html_path, check_page_flags, page_image, write_explorer
from models.figures.plots import save_array, save_figure
from models.figures.scores import model_scores
from models.figures.vit_page import SCORED_AS, check_comparable, page_methods, vit_page_image, vit_page_model
from models.training.flags import add_device_flag
from models.training.runtime import resolve_device
from models.vit import grid_size

REPORT_IMAGES = ("val/26_5064.jpg", "val/29_4718.jpg", "val/31_4838.jpg")  # Ragdoll, samoyed, shiba inu


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, metavar="FILE", help="a checkpoint written by p1_train.py")
    inputs = p.add_mutually_exclusive_group()
    inputs.add_argument("--images", nargs="+", metavar="IMG", help="the images to draw (any RGB-convertible file)")
    inputs.add_argument("--data_dir", default="p1_data", metavar="DIR",
                        help=f"without --images: draw the report's images {', '.join(REPORT_IMAGES)} "
                             "under DIR (default %(default)s)")
    p.add_argument("--out_dir", metavar="DIR",
                   help="where to write <image stem>_<method>.png (and .npy); the maps of relevancy, "
                        "attnlrp and legrad for a --target_class K are <image stem>_<method>_classK.png "
                        "(needed unless --html)")
    p.add_argument("--html", metavar="FILE",
                   help="also (or instead) write one interactive page for all the images, a "
                        "self-contained FILE.html that opens offline; --method, --layer and the "
                        "rollout and --target_class flags apply to the PNGs only")
    p.add_argument("--compare", metavar="CKPT2",
                   help="with --html: a second checkpoint of the same shape (patch grid, layers, heads), "
                        "its maps of the same images beside the first's")
    p.add_argument("--scores", nargs="+", metavar="FILE",
                   help="with --html: the --out_json of eval_explanations.py, shown beside each method; a "
                        "second FILE for --compare's model (a file of several checkpoints serves both)")
    p.add_argument("--method", nargs="+", choices=DRAWN, default=["last"], metavar="METHOD",
                   help=f"which maps, one figure each: {', '.join(DRAWN)} (default: last)")
    p.add_argument("--layer", type=int, default=-1, metavar="N",
                   help="the layer, from 0; negative counts from the end (default -1, the last); "
                        "for rollout the last layer included; relevancy, attnlrp and legrad always use "
                        "every layer")
    p.add_argument("--head_fusion", choices=HEAD_FUSIONS, default="mean",
                   help="rollout: how each layer's heads are combined (default %(default)s)")
    p.add_argument("--discard_ratio", type=float, default=0.0, metavar="F",
                   help="rollout: zero this fraction of the lowest weights of each attention row "
                        "before adding the identity, 0 <= F < 1 (default %(default)s)")
    p.add_argument("--target_class", type=int, default=None, metavar="K",
                   help="relevancy, attnlrp, legrad: the class whose evidence is drawn, 0..classes-1 "
                        "(default: the predicted class of each image)")
    p.add_argument("--save_npy", action="store_true",
                   help="also write <image stem>_<method>.npy: the (g, g) map, or (heads, g, g) for heads")
    add_device_flag(p)
    return p.parse_args(argv)


def image_paths(args) -> list:
    if args.images:
        paths = [Path(p) for p in args.images]
    else:
        paths = [Path(args.data_dir) / p for p in REPORT_IMAGES]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise UserError(f"image not found: {missing[0]} (the report's images are looked up under "
                            f"--data_dir {args.data_dir}; pass --data_dir or --images)")
    check_unique_stems(paths)
    return paths


def target_class(target, num_classes: int):
    if target is not None and not 0 <= target < num_classes:
        raise UserError(f"--target_class {target} is out of range: the model has {num_classes} classes, "
                        f"use 0..{num_classes - 1}")
    return target


def class_specific(method: str) -> bool:
    """Whether the method's map is for one class (it reads --target_class)."""
    return "target_class" in MAP_METHODS[method].flags


def map_options(args) -> MapOptions:
    """The options of the --method maps, with a warning for each map flag none of them reads."""
    options = MapOptions(layer=args.layer, head_fusion=args.head_fusion, discard_ratio=args.discard_ratio,
                         target_class=args.target_class)
    read = {flag for method in args.method for flag in MAP_METHODS[method].flags}
    ignored = [f"--{flag}" for flag in ("head_fusion", "discard_ratio", "target_class")
               if getattr(options, flag) != getattr(MapOptions(), flag) and flag not in read]
    if ignored:
        warn(f"{' and '.join(ignored)} do{'es' * (len(ignored) == 1)} not apply to --method "
             f"{' '.join(args.method)}; ignored")
    return options


def load(ckpt, device):
    """(model on `device`, its config, its transform, its class names) of a checkpoint."""
    model, config = model_from_checkpoint(ckpt)
    names = class_names_or_default(config.get("class_names"), config["num_classes"])
    return model.to(device), config, eval_transform_from_config(config), names


def page_models(args, paths, first, device) -> tuple:
    """(model entries, images) of the page: the loaded first model's, then --compare's."""
    models, per_image = [], [[] for _ in paths]
    for i, ckpt in enumerate([args.ckpt] + ([args.compare] if args.compare else [])):
        model, config, transform, names = first if i == 0 else load(ckpt, device)
        grid = grid_size(model)
        title = (f"{config['model']} at {config['image_size']} px: {len(model.transformer.blocks)} layers, "
                 f"{grid[0]}x{grid[1]} patches, checkpoint {ckpt}")
        models.append(vit_page_model(model, title, model_scores(args.scores, i, ckpt)))
        if i:
            check_comparable(models[0], models[i])
        mean, std = normalization(config)
        for index, path in enumerate(paths):
            x = transform(open_rgb(path))[None].to(device)
            per_image[index].append(vit_page_image(model, x, denormalize(x[0].cpu(), mean, std), names, index))
    return models, [page_image(path.name, entries) for path, entries in zip(paths, per_image)]


def main(argv=None):
    args = parse_args(argv)
    if args.out_dir is None and args.html is None:
        raise UserError("nothing to write: pass --out_dir DIR for figures, --html FILE for the page, or both")
    if not 0.0 <= args.discard_ratio < 1.0:
        raise UserError(f"--discard_ratio must be in [0, 1), not {args.discard_ratio}")
    check_page_flags(args)
    args.method = list(dict.fromkeys(args.method))  # each figure once
    options = map_options(args)
    paths = image_paths(args)
    html = check_html_path(args.html, inputs=[args.ckpt, *paths, *filter(None, [args.compare])]) if args.html else None
    if args.out_dir is not None:
        check_output_folder(args.out_dir, "--out_dir", inputs=paths)
        figures = [figure_path(args, path, method) for path in paths for method in args.method]
        npys = [figure.with_suffix(".npy") for figure in figures] if args.save_npy else []
        check_names_fit([*figures, *npys], "--out_dir, whose figures are named after the images")
        refuse_inputs([*figures, *npys], [args.ckpt, *paths], "--out_dir")
    for path in paths:  # every image checked before the (slow) model load
        open_rgb(path)
    device = resolve_device(args.device)
    first = load(args.ckpt, device)
    model, config, transform, names = first
    layers = len(model.transformer.blocks)
    options = replace(options, layer=layer_index(args.layer, layers, "the model"),
                      target_class=target_class(args.target_class, config["num_classes"]))
    if args.out_dir is not None:
        mean, std = normalization(config)
        for path in paths:
            x = transform(open_rgb(path))[None].to(device)
            image = denormalize(x[0].cpu(), mean, std)
            for method in args.method:
                draw_figure(model, x, path, image, names, method, options, args)
    if html:
        models, images = page_models(args, paths, first, device)
        size = write_explorer(html, "vit", " against ".join(m["title"] for m in models), models, images,
                              methods=page_methods(), scored=SCORED_AS)
        print(f"{len(images)} image{'s' * (len(images) > 1)} -> {html} ({size / 1e6:.1f} MB)")


def draw_figure(model, x, path, image, names, method_name, options, args) -> None:
    """Write the figure of one method (and its .npy) for one image."""
    method = MAP_METHODS[method_name]
    logits, maps = compute_maps(method_name, model, x, options)
    prob, pred = logits.float().softmax(-1)[0].max(0)
    name = names[int(pred)]
    heading = f"{path.name}: predicted {name} ({prob:.1%})"
    if class_specific(method_name) and options.target_class is None:
        options = replace(options, target_class=int(pred))
    heads = model.transformer.blocks[0].attn.n_heads
    title = f"{heading}\n{method.describe(options, len(model.transformer.blocks), heads, names)}"
    values = maps[0].float().cpu()
    if values.dim() == 3:
        fig = heads_figure(image, values, title)
    else:
        fig = attention_figure(image, values, title, map_title=method.map_title)
    out = figure_path(args, path, method_name)
    save_figure(fig, out, dpi=ATTENTION_DPI)
    print(f"{path}: predicted {name} ({prob:.1%}) -> {out}")
    if args.save_npy:
        save_array(out.with_suffix(".npy"), values.numpy())


def figure_path(args, path, method: str) -> Path:
    """Where the figure of `method` for the image `path` goes: OUT_DIR/<stem>_<method>[_class<k>].png."""
    suffix = f"_class{args.target_class}" if class_specific(method) and args.target_class is not None else ""
    return Path(args.out_dir) / f"{path.stem}_{method}{suffix}.png"


if __name__ == "__main__":
    run_main(main)
