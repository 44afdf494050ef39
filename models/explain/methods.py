"""The one registry of problem-1 map methods: name -> how the map is computed and how it is named.

`p1_vis_attention.py` draws them and `eval_explanations.py` measures them, so a method added here
exists in both. Each method maps (model, images, options) to (logits, maps): maps are (B, gh, gw),
or (B, heads, gh, gw) for `heads`, on the model's patch grid. `options` holds the flags that some
methods read (the layer, rollout's head fusion and discard ratio, the target class of relevancy,
attnlrp and legrad, the random baseline's seed and image indices); `MapMethod.flags` says which, so
a script can warn about a flag the chosen method ignores.
"""
from dataclasses import dataclass, field
from typing import Callable

import torch

from .attnlrp import attnlrp_maps
from .faithfulness import random_maps
from .maps import (attention_rollout, class_row_map, cls_attention_map, collect_attention, head_maps, legrad_maps,
                   relevancy_maps)
from models.vit import grid_size


@dataclass(frozen=True)
class MapOptions:
    layer: int = -1  # the layer read (last, heads) or the last one included (rollout), from 0
    head_fusion: str = "mean"
    discard_ratio: float = 0.0
    target_class: int | None = None  # relevancy, attnlrp, legrad: None for each image's predicted class
    seed: int = 0  # random: with each image's index in its data set, fixes its map
    indices: torch.Tensor | None = None


@dataclass(frozen=True)
class MapMethod:
    name: str
    compute: Callable  # (model, images, MapOptions) -> (logits, maps)
    describe: Callable  # (MapOptions, layers, heads, class names) -> the map's words in a figure title
    map_title: str  # the heading of the map's own panel
    needs_gradients: bool
    flags: tuple = field(default=())  # the MapOptions fields it reads


def _layer_words(layer: int, layers: int) -> str:
    last = layers - 1
    return f"layer {layer}" + (" (last)" if layer == last else f" of 0-{last}")


def _last(model, images, options):
    logits, attentions = collect_attention(model, images)
    return logits, cls_attention_map(attentions[options.layer], grid_size(model))


def _heads(model, images, options):
    logits, attentions = collect_attention(model, images)
    return logits, head_maps(attentions[options.layer], grid_size(model))


def _rollout(model, images, options):
    logits, attentions = collect_attention(model, images)
    included = attentions[: options.layer % len(attentions) + 1]
    rollout = attention_rollout(included, options.head_fusion, options.discard_ratio)
    return logits, class_row_map(rollout, grid_size(model))


def _relevancy(model, images, options):
    logits, _, maps = relevancy_maps(model, images, options.target_class)
    return logits, maps


def _attnlrp(model, images, options):
    logits, _, maps = attnlrp_maps(model, images, options.target_class)
    return logits, maps


def _legrad(model, images, options):
    logits, _, maps = legrad_maps(model, images, options.target_class)
    return logits, maps


def _random(model, images, options):
    logits, _ = collect_attention(model, images)  # the same forward pass as the other methods
    indices = options.indices if options.indices is not None else range(len(images))
    return logits, random_maps(indices, grid_size(model), options.seed).to(images.device)


def _rollout_words(o, layers, heads, names):
    detail = f", discard {o.discard_ratio:g}" if o.discard_ratio else ""
    return f"Attention rollout, layers 0-{o.layer % layers}, heads fused by {o.head_fusion}{detail}"


def _class_words(method: str):
    """The title words of a class-specific method through all layers."""
    def describe(o, layers, heads, names):
        target = "the predicted class" if o.target_class is None else f"class {o.target_class} {names[o.target_class]}"
        return f"{method} for {target}, all {layers} layers"
    return describe


MAP_METHODS = {m.name: m for m in (
    MapMethod("last", _last, lambda o, layers, heads, names: "[class] attention to the patches, "
              f"{_layer_words(o.layer % layers, layers)}, mean of {heads} heads",
              "Attention map", needs_gradients=False, flags=("layer",)),
    MapMethod("rollout", _rollout, _rollout_words, "Rollout map", needs_gradients=False,
              flags=("layer", "head_fusion", "discard_ratio")),
    MapMethod("heads", _heads, lambda o, layers, heads, names: "[class] attention per head, "
              f"{_layer_words(o.layer % layers, layers)}, each scaled to its own range",
              "Attention map", needs_gradients=False, flags=("layer",)),
    MapMethod("relevancy", _relevancy, _class_words("Relevancy"),
              "Relevancy map", needs_gradients=True, flags=("target_class",)),
    MapMethod("attnlrp", _attnlrp, _class_words("AttnLRP (CP-LRP) relevance"),
              "AttnLRP map", needs_gradients=True, flags=("target_class",)),
    MapMethod("legrad", _legrad, _class_words("LeGrad"),
              "LeGrad map", needs_gradients=True, flags=("target_class",)),
    MapMethod("random", _random, lambda o, layers, heads, names: f"Random map (seed {o.seed}), the baseline",
              "Random map", needs_gradients=False, flags=("seed",)),
)}
DRAWN = ("last", "rollout", "heads", "relevancy", "attnlrp", "legrad")  # what p1_vis_attention draws
# one map per image, what eval_explanations scores
MEASURED = ("random", "last", "rollout", "relevancy", "attnlrp", "legrad")


def compute_maps(method: str, model, images, options: MapOptions = MapOptions()) -> tuple:
    """(logits, maps) of `method` on a batch."""
    if method not in MAP_METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(MAP_METHODS)}")
    return MAP_METHODS[method].compute(model, images, options)


def class_specific(method: str) -> bool:
    """Whether `method`'s map is of one class (it reads the target class), so it can be asked for
    another class than the predicted one."""
    return "target_class" in MAP_METHODS[method].flags


def explanation_maps(model, images, methods, indices, seed: int = 0, target_class=None) -> tuple:
    """(predicted classes (B,), {method: maps (B, gh, gw)}): every method of `methods` on a batch,
    with the defaults of the measured report (the last layer, heads averaged), for `target_class`
    ((B,) classes; None: each image's predicted class)."""
    options = MapOptions(seed=seed, indices=indices, target_class=target_class)
    predicted, maps = None, {}
    for method in methods:
        logits, maps[method] = compute_maps(method, model, images, options)
        predicted = logits.argmax(dim=-1) if predicted is None else predicted
    return predicted, {m: maps[m].float() for m in methods}
