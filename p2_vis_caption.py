"""Caption images with CATR and show, for every generated word, where the decoder looked.

One PNG per input image, named like it (bike.jpg -> OUT_DIR/bike.png): the caption as title, the
image under <start>, then one panel per generated WordPiece token with the decoder's cross-attention
for it blended over the image, and <end> last (absent when --max_steps cut the caption short).
With --method relevancy the panels show each token's relevancy instead (Chefer, Gur & Wolf, ICCV 2021:
every attention of the network weighted by the gradient of that token's logit, the caption
teacher-forced); with --method attnlrp its AttnLRP relevance (Achtibat et al., ICML 2024, CP-LRP:
input x gradient at the encoder's input cells with LayerNorm scales and attention weights held
constant; signed); with --method legrad its LeGrad map (Bousselham et al., ICCV 2025: the positive
gradient of each decoder layer's own prediction of the token with respect to that layer's
cross-attention, summed over the layers, min-max). The footer names the method.

Defaults: CATR v2, greedy search and the second-to-last decoder layer (--layer -2, i.e. layer 4 of
0..5), averaged over the 8 heads: in the report this repository reproduces, v2 gave the best captions
and that layer's maps matched the words better than the last one's. With --beam N the figure shows
the words and maps of the caption beam search chose.

With --html FILE, one interactive page for all the images (docs/explorer.md): the caption as words;
hovering or clicking a word shows its map for any decoder layer and head, and with --beam N every
finished beam is listed with its score; each layer's cross-attention heads are ranked by importance.
It is one self-contained file that opens offline. --compare WEIGHTS2 puts a second captioner beside
the first: each one's caption, and the maps of the words they share, driven by the same controls;
--scores FILE shows the scores eval_grounding.py wrote beside each map.

    python p2_vis_caption.py --img_dir images/ --out_dir out/
    python p2_vis_caption.py --images bike.jpg ski.jpg --out_dir out/ --version v3 --layer -1 --heads all
    python p2_vis_caption.py --img_dir images/ --out_dir out/ --beam 3 --batch_size 8
    python p2_vis_caption.py --img_dir images/ --out_dir out/ --method relevancy --save_npy
    python p2_vis_caption.py --img_dir images/ --html captions.html --beam 3
    python p2_vis_caption.py --img_dir images/ --html captions.html --weights a.pt --compare b.pt --scores g.json
"""
import argparse
from pathlib import Path

from data.entry import run_main
from data.flags import layer_index
from data.io import UserError
import numpy as np
import torch
from tqdm import tqdm

import catr
from catr.cli import (add_search_arguments, add_weight_arguments, check_beam, check_search_arguments, load_captioner,
                      search_description, weights_description)
from models.figures.caption import caption_figure
from catr.pipeline import caption_files
from catr.token_methods import DESCRIPTIONS, TOKEN_METHODS, token_maps
from data.images import check_unique_stems, list_images, open_rgb
from data.outputs import check_names_fit, check_output_folder, refuse_inputs
from models.figures.explorer import caption_image_entry, check_html_path, check_page_flags, page_image, write_explorer
from models.figures.plots import save_array, save_figure
from models.figures.scores import model_scores
from catr.heads import caption_head_importance
from catr.weights import WEIGHT_URLS
from models.training.runtime import resolve_device

DEFAULT_LAYER = -2
METHODS = ("attention", *TOKEN_METHODS)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--images", nargs="+", metavar="IMG", help="image files to caption")
    inputs.add_argument("--img_dir", help="caption every .jpg/.jpeg/.png in this folder")
    parser.add_argument("--out_dir", help="where the PNGs (and .npy maps) go (needed unless --html)")
    parser.add_argument("--html", metavar="FILE",
                        help="also (or instead) write one interactive page for all the images, a "
                             "self-contained FILE.html that opens offline: every decoder layer and head "
                             "of every word; --heads applies to the PNGs only")
    add_weight_arguments(parser)
    parser.add_argument("--compare", metavar="WEIGHTS2",
                        help="with --html: a second captioner (a checkpoint file, or a published version: "
                             f"{', '.join(WEIGHT_URLS)}) with the same decoder shape, beside the first")
    parser.add_argument("--scores", nargs="+", metavar="FILE",
                        help="with --html: the --out_json of eval_grounding.py, shown beside each map; a second "
                             "FILE for --compare's captioner (a file of several checkpoints serves both)")
    parser.add_argument("--layer", type=int, default=DEFAULT_LAYER,
                        help="decoder layer whose cross-attention is drawn; negative counts from the last "
                             "(default: %(default)s, the second-to-last = 4 of 0..5)")
    parser.add_argument("--heads", choices=("mean", "all"), default="mean",
                        help="draw the mean over heads, or one row per head (default: %(default)s)")
    parser.add_argument("--method", choices=METHODS, default="attention",
                        help="attention: one decoder layer's cross-attention (--layer, --heads); relevancy, "
                             "attnlrp, legrad: each token's map through all layers, heads averaged "
                             "(default: %(default)s)")
    parser.add_argument("--save_npy", action="store_true",
                        help="also write OUT_DIR/<stem>.npy: the maps drawn, (tokens, h, w) or "
                             "(tokens, heads, h, w), one entry per panel after <start>")
    add_search_arguments(parser, batch_size=1)
    return parser.parse_args(argv)


def generated_token_maps(method: str, model, image, decoded, device):
    """(tokens, h, w) maps of `method` (one of TOKEN_METHODS) of the generated tokens, [SEP] last where
    the caption ended."""
    ids = caption_ids(decoded)
    if not ids:
        return np.zeros((0, *decoded.attention.shape[-2:]), dtype=np.float32)
    tensor = catr.preprocess(image).to(device)[None]
    return token_maps(method, model, tensor, torch.tensor([ids], device=device))[0].cpu().numpy()


def word_maps(decoded, method: str = "attention", maps=None) -> dict:
    """The page's named map sets of one caption: name -> (words, layers, heads, h, w) or (words, h, w);
    `maps`, the (words, h, w) maps of a gradient `method`, are a set of their own."""
    sets = {"cross-attention": decoded.attention}
    if maps is not None:
        sets[method] = torch.from_numpy(maps)
    return sets


def beam_rows(decoded, tokenizer) -> list:
    """(caption, log-probability, normalised score) of every finished beam, the chosen one first."""
    return [(tokenizer.decode(beam.ids) + ("" if beam.ended else " (unfinished)"), beam.score, beam.normalized)
            for beam in decoded.beams]


def caption_ids(decoded) -> list:
    """The generated ids, [SEP] last where the caption ended: what the maps and the importance explain."""
    return decoded.ids + ([catr.SEP_ID] if decoded.ended else [])


def page_entry(model, image, decoded, tokenizer, args, device, gradient_maps=None) -> dict:
    """One captioner's page data for one image."""
    ids = torch.tensor(caption_ids(decoded), dtype=torch.long, device=device)
    importance = caption_head_importance(model, catr.preprocess(image).to(device), ids).cpu()
    return caption_image_entry(image, tokenizer.decode(decoded.ids) or "(empty caption)",
                               tokenizer.tokens(decoded.ids) + (["<end>"] if decoded.ended else []),
                               word_maps(decoded, args.method, gradient_maps),
                               beam_rows(decoded, tokenizer) if args.beam > 1 else (), importance)


def compare_args(args) -> argparse.Namespace:
    """The weight flags of --compare's captioner: a published version's name or a file."""
    published = args.compare in WEIGHT_URLS
    return argparse.Namespace(**{**vars(args), "version": args.compare if published else args.version,
                                 "weights": None if published else args.compare, "random_weights": False})


def page_model(args, model, index: int) -> dict:
    """The page's entry of a captioner: its name and the scores of its maps."""
    layers = model.transformer.decoder.layers
    return {"title": weights_description(args), "layers": len(layers), "heads": layers[0].multihead_attn.nheads,
            "scores": model_scores(args.scores, index, args.weights)}


def compared_entries(args, paths, first: dict, device, tokenizer) -> tuple:
    """--compare's captioner: its page entry and its entry of each image, None where unreadable."""
    args = compare_args(args)
    model = load_captioner(args, device)
    check_beam(args, model, device)
    entry = page_model(args, model, 1)
    if (entry["layers"], entry["heads"]) != (first["layers"], first["heads"]):
        raise UserError(f"--compare: the decoders differ ({first['layers']} layers of {first['heads']} heads "
                        f"against {entry['layers']} of {entry['heads']}); one page compares captioners of one shape")
    entries = {}
    for batch in caption_files(model, paths, args.batch_size, args.beam, args.length_penalty, args.max_steps, device,
                               all_beams=True):
        for path, image, decoded in batch:
            if decoded is not None:
                gradient_maps = (generated_token_maps(args.method, model, image, decoded, device)
                                 if args.method != "attention" else None)
                entries[path] = page_entry(model, image, decoded, tokenizer, args, device, gradient_maps)
                tqdm.write(f"{path.name} ({weights_description(args)}): {entries[path]['caption']}")
    return entry, entries


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.out_dir is None and args.html is None:
        raise UserError("nothing to write: pass --out_dir DIR for figures, --html FILE for the page, or both")
    check_search_arguments(args)
    check_page_flags(args, compare_is_file=args.compare not in WEIGHT_URLS)
    if args.method != "attention" and args.heads == "all":
        raise UserError(f"--heads all draws attention heads; {args.method} averages them: use --method attention")
    paths = list_images(args.img_dir) if args.img_dir else [Path(p) for p in args.images]
    html = check_html_path(args.html, inputs=paths) if args.html else None
    check_unique_stems(paths)
    out_dir = None
    if args.out_dir is not None:
        out_dir = check_output_folder(args.out_dir, "--out_dir", inputs=paths)
        suffixes = (".png", ".npy") if args.save_npy else (".png",)
        outputs = [out_dir / f"{path.stem}{suffix}" for path in paths for suffix in suffixes]
        check_names_fit(outputs, "--out_dir, whose figures are named after the images")
        refuse_inputs(outputs, paths, "--out_dir")
    if args.images:
        for path in paths:  # every file named checked before the (slow) model load
            open_rgb(path)
    device = resolve_device(args.device)
    model = load_captioner(args, device)
    check_beam(args, model, device)
    layer = layer_index(args.layer, len(model.transformer.decoder.layers), "the decoder")
    tokenizer = catr.load_tokenizer()
    heads = "mean over heads" if args.heads == "mean" else "one row per head"
    shown = (f"cross-attention of decoder layer {layer}, {heads}" if args.method == "attention" else
             DESCRIPTIONS[args.method])
    note = f"{weights_description(args)}; {search_description(args)}; {shown}"

    unreadable, entries = [], {}
    progress = tqdm(total=len(paths), desc="captioning", unit="image")
    # Only the page lists the beams: the search goes on for the runners-up when --html writes one.
    for batch in caption_files(model, paths, args.batch_size, args.beam, args.length_penalty, args.max_steps,
                               device, all_beams=html is not None):
        for path, image, decoded in batch:
            progress.update()
            if decoded is None:
                unreadable.append(path)
                continue
            caption = tokenizer.decode(decoded.ids) or "(empty caption)"
            gradient_maps = (generated_token_maps(args.method, model, image, decoded, device)
                             if args.method != "attention" else None)
            labels = tokenizer.tokens(decoded.ids) + (["<end>"] if decoded.ended else [])
            if html:
                entries[path] = page_entry(model, image, decoded, tokenizer, args, device, gradient_maps)
            if out_dir is not None:
                if gradient_maps is not None:
                    maps = gradient_maps
                else:
                    maps = decoded.attention[:, layer]
                    maps = (maps.mean(dim=1) if args.heads == "mean" else maps).numpy()
                save_figure(caption_figure(image, caption, labels, maps, note), out_dir / f"{path.stem}.png")
                if args.save_npy:
                    save_array(out_dir / f"{path.stem}.npy", maps)
            tqdm.write(f"{path.name}: {caption}")
    progress.close()
    if html and entries:
        models = [page_model(args, model, 0)]
        per_model = [entries]
        if args.compare:
            del model
            second, compared = compared_entries(args, paths, models[0], device, tokenizer)
            models.append(second)
            per_model.append(compared)
        shared = [path for path in entries if all(path in e for e in per_model)]
        images = [page_image(path.name, [e[path] for e in per_model]) for path in shared]
        size = write_explorer(html, "caption", " against ".join(m["title"] for m in models) +
                              f"; {search_description(args)}", models, images, layer=layer)
        print(f"{len(images)} image{'s' * (len(images) > 1)} -> {html} ({size / 1e6:.1f} MB)")
    if unreadable:
        raise UserError(f"{len(unreadable)} of {len(paths)} images could not be read (see the warnings above)")


if __name__ == "__main__":
    run_main(main)
