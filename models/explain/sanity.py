"""Does a map depend on the model? Cascading model-parameter randomisation (Adebayo, Gilmer, Muelly,
Goodfellow, Hardt & Kim, "Sanity checks for saliency maps", NeurIPS 2018).

The layers are re-initialised cumulatively from the output down (the head, then the blocks from the
top); after each stage every method's map of the same images, for the same target, is compared with
the trained model's map by Spearman's rank correlation. A map that stays the same once the weights
are random is a picture of the image (an edge detector, say), not of the model. The floor is the
correlation between the trained model's maps of two different images: below it nothing is left.

Re-initialisation: each parameter tensor of a stage's modules is drawn anew from a normal
distribution with that tensor's own mean and standard deviation (a one-element tensor keeps its
value), from a seeded generator on the CPU. The scale of every layer stays what the network was
trained with, so no stage blows the activations up or switches them off, whatever the architecture.

A method passes when its maps have decorrelated once the top half of the blocks is random: the
upper end of the correlation's interval at that stage is below the midpoint between the floor and 1
(it fails when the lower end is above it, and is unclear otherwise).
"""
import torch

from .statistics import RESAMPLES, intervals, spearman


def vit_stages(model) -> list:
    """(stage name, modules) of a package ViT, cumulative from the output: the head (classifier and
    final norm), then each block from the last."""
    blocks = list(model.transformer.blocks)
    return [("head", [model.fc, model.norm])] + [(f"block {i}", [blocks[i]]) for i in reversed(range(len(blocks)))]


def captioner_stages(model) -> list:
    """(stage name, modules) of a CATR captioner: the head (word classifier and the decoder's norm),
    the decoder layers from the last, then the encoder layers from the last (its norm with the first)."""
    decoder = list(model.transformer.decoder.layers)
    encoder = list(model.transformer.encoder.layers)
    stages = [("head", [model.mlp, model.transformer.decoder.norm])]
    stages += [(f"decoder {i}", [decoder[i]]) for i in reversed(range(len(decoder)))]
    encoder_norm = getattr(model.transformer.encoder, "norm", None)
    for i in reversed(range(len(encoder))):
        extra = [encoder_norm] if i == len(encoder) - 1 and encoder_norm is not None else []
        stages.append((f"encoder {i}", [encoder[i], *extra]))
    return stages


def verdict_stage(stages: list, prefix: str) -> str:
    """The stage after which the top half of the `prefix` layers ("block", "decoder") is random."""
    layers = [name for name, _ in stages if name.startswith(prefix)]
    return layers[(len(layers) + 1) // 2 - 1]


@torch.no_grad()
def randomise(modules, generator: torch.Generator) -> None:
    """Re-draw every parameter of `modules` in place from N(its mean, its standard deviation)."""
    for module in modules:
        for parameter in module.parameters():
            if parameter.numel() < 2:
                continue
            mean, std = parameter.mean().item(), parameter.float().std().item()
            fresh = torch.randn(parameter.shape, generator=generator) * std + mean
            parameter.copy_(fresh.to(parameter.device, parameter.dtype))


def randomised_models(model, stages: list, seed: int = 0):
    """Yields (stage name, `model` with that stage and all before it randomised): the weights are
    re-drawn in place and the trained ones put back when the generator ends, however it ends."""
    generator = torch.Generator().manual_seed(seed)
    trained = {name: value.detach().clone() for name, value in model.state_dict().items()}
    try:
        for stage, modules in stages:
            randomise(modules, generator)
            yield stage, model
    finally:
        model.load_state_dict(trained)


def cascading_randomisation(model, stages: list, maps_of, seed: int = 0) -> dict:
    """Each stage's rank correlation with the trained model's maps, per item.

    `maps_of(model)` gives {method: (N, ...) maps} of a fixed set of items (images, or words) for a
    fixed target; it is called once for the trained model and once per stage. Returns {"stages":
    names, "correlation": {method: (stages, N)}, "floor": {method: (N,)}}: the floor pairs item i
    with item i + 1 (the last with the first) of the trained model's maps.
    """
    trained = {method: maps.flatten(1).double().cpu() for method, maps in maps_of(model).items()}
    names, correlation = [], {method: [] for method in trained}
    for stage, randomised in randomised_models(model, stages, seed):
        names.append(stage)
        for method, maps in maps_of(randomised).items():
            correlation[method].append(spearman(trained[method], maps.flatten(1).double().cpu()))
    floor = {method: spearman(maps, maps.roll(1, dims=0)) for method, maps in trained.items()}
    return {"stages": names, "correlation": {m: torch.stack(c) for m, c in correlation.items()}, "floor": floor}


def sanity_verdict(correlation_interval, floor: float) -> str:
    """'passes' when the correlation's interval lies below the midpoint between `floor` and 1,
    'fails' when above it, 'unclear' otherwise."""
    midpoint = (1.0 + floor) / 2
    low, high = correlation_interval
    if high < midpoint:
        return "passes"
    return "fails" if low > midpoint else "unclear"


def sanity_summary(result: dict, at_stage: str, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """The report of `cascading_randomisation`: {method: {"stages", "correlation", "correlation_ci95",
    "floor", "floor_ci95", "verdict_stage", "verdict"}}, means over the items with bootstrap intervals."""
    rows = {}
    for method, values in result["correlation"].items():
        rows.update({(method, i): stage for i, stage in enumerate(values)})
        rows[(method, "floor")] = result["floor"][method]
    found = intervals(rows, resamples, seed)
    at = result["stages"].index(at_stage)
    summary = {}
    for method, values in result["correlation"].items():
        means = [found[(method, i)] for i in range(len(values))]
        floor, floor_bounds = found[(method, "floor")]
        summary[method] = {
            "stages": list(result["stages"]),
            "correlation": [round(value, 3) for value, _ in means],
            "correlation_ci95": [[round(b, 3) for b in bounds] for _, bounds in means],
            "floor": round(floor, 3), "floor_ci95": [round(b, 3) for b in floor_bounds],
            "verdict_stage": at_stage, "verdict": sanity_verdict(means[at][1], floor)}
    return summary


def sanity_table(summary: dict) -> str:
    """A Markdown table: one row per method, its correlation after each stage, the floor, the verdict."""
    stages = next(iter(summary.values()))["stages"]
    lines = ["| method | " + " | ".join(f"{s} random" for s in stages) + " | floor (two images) | verdict |",
             "|---" * (len(stages) + 3) + "|"]
    for method, s in summary.items():
        cells = [f"{v:.2f}" for v in s["correlation"]]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {s['floor']:.2f} | {s['verdict']} "
                     f"(at {s['verdict_stage']}) |")
    return "\n".join(lines)
