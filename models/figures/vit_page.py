"""The ViT page's data computed from a model (`p1_vis_attention.py --html`).

The page draws [class]-token attention, each patch's attention and rollout from every layer's
attention itself; every other method of the registry (`models.explain.methods`) is computed here
for the top classes (a class-specific method) or once (any other), so a method added to the registry
is on the page. Head importance (`models.explain.heads`) ranks each layer's heads.
"""
import torch

from data.io import UserError
from models.explain.heads import vit_head_importance
from models.explain.maps import collect_attention, position_embedding_similarity
from models.explain.methods import MAP_METHODS, MapOptions, compute_maps
from models.figures.explorer import vit_image_entry, vit_model_entry
from models.vit import grid_size

ATTENTION_VIEWS = ("last", "heads", "rollout")  # the page draws these from the attention of every layer
PAGE_CLASSES = 5  # the class-specific maps: the most probable classes
# The page's name of the map that each registry method measures, where the page draws it itself.
SCORED_AS = {"last": "cls", "rollout": "rollout"}


def page_methods() -> list:
    """The registry's methods the page computes, as the page lists them."""
    return [{"name": m.name, "per_class": "target_class" in m.flags}
            for m in MAP_METHODS.values() if m.name not in ATTENTION_VIEWS]


def vit_page_image(model, x, image, names: list, index: int) -> dict:
    """One model's page data for one image `x` (1, 3, H, W), `image` the input as the model saw it;
    `index` the image's place on the page (it fixes the random baseline's map)."""
    logits, attentions = collect_attention(model, x)
    probs = logits.float().softmax(-1)[0].cpu()
    top = probs.topk(min(PAGE_CLASSES, len(probs)))
    top_classes = [(int(k), names[int(k)], float(p)) for p, k in zip(top.values, top.indices)]
    layers, heads = len(attentions), attentions[0].shape[1]
    methods = []
    for method in MAP_METHODS.values():
        if method.name in ATTENTION_VIEWS:
            continue
        if "target_class" in method.flags:
            options = [MapOptions(target_class=k) for k, _, _ in top_classes]
        else:
            options = [MapOptions(indices=torch.tensor([index]))]
        maps = torch.cat([compute_maps(method.name, model, x, o)[1].float().cpu() for o in options])
        methods.append({"name": method.name, "maps": maps,
                        "captions": [method.describe(o, layers, heads, names) for o in options]})
    return vit_image_entry(image, [a[0].float().cpu() for a in attentions], top_classes, methods, grid_size(model),
                           vit_head_importance(model, x).cpu())


def vit_page_model(model, title: str, scores=None) -> dict:
    """The page's entry of a model: its shape and position-embedding similarity."""
    blocks = model.transformer.blocks
    similarity = position_embedding_similarity(model.positional_embedding.pos_embedding).cpu()
    return vit_model_entry(title, grid_size(model), len(blocks), blocks[0].attn.n_heads, similarity, scores)


def check_comparable(first: dict, second: dict, flag: str = "--compare") -> None:
    """Two models on one page share its controls: the same patch grid, layers and heads."""
    shape = lambda m: (tuple(m["grid"]), m["layers"], m["heads"])  # noqa: E731
    if shape(first) != shape(second):
        (g1, l1, h1), (g2, l2, h2) = shape(first), shape(second)
        raise UserError(f"{flag}: the models differ in shape ({g1[0]}x{g1[1]} patches, {l1} layers, {h1} heads "
                        f"against {g2[0]}x{g2[1]}, {l2}, {h2}); one page compares models of the same shape")
