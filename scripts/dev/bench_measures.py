"""What the measures of eval_explanations.py cost per image: the perturbation tests with grey fill and
with ROAD's imputation, and the sanity check.

Random weights and one random batch. A perturbation step is what eval_explanations.py does for one map
of one method: 0-100% of the patches removed in both orders (20 forward passes of the batch), with
the removed pixels set to grey or imputed by ROAD (a conjugate-gradient solve per removal level). The
sanity step is the cascading randomisation of the head and every block with the maps of every
measured method recomputed after each stage. The steps take turns; the last line printed is one JSON
object.

  python scripts/dev/bench_measures.py --model tiny --batch_size 32
"""
import argparse
import json
import statistics
import sys

import _repo  # noqa: F401  (the repository on sys.path)
from data.entry import run_main
import torch

from benchlib import add_step_arguments, check_step_arguments, random_batch, random_model, record_header, time_alternating
from models.attention import set_attention
from models.explain.faithfulness import Removal, perturbation_scores
from models.explain.methods import MEASURED, class_specific, explanation_maps
from models.explain.sanity import cascading_randomisation, vit_stages
from models.training.runtime import resolve_device
from models.vit import native_image_size


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_step_arguments(p, "tiny", batch_size=32, steps=3, warmup=1, device="cpu")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_step_arguments(args)
    device = resolve_device(args.device)
    image_size = args.image_size or native_image_size(args.model)
    model = set_attention(random_model(args.model, image_size, device), "fast").eval()
    images, _ = random_batch(args.batch_size, image_size, model.fc.out_features, device)
    indices = torch.arange(args.batch_size)
    with torch.no_grad():
        logits = model(images)
    targets = logits.argmax(dim=-1)
    maps = explanation_maps(model, images, ["relevancy"], indices)[1]["relevancy"]
    removals = {"grey": Removal("grey"), "road": Removal("road", generator=torch.Generator().manual_seed(0))}

    def maps_of(network):
        return {method: explanation_maps(network, images, [method], indices, 0,
                                         targets if class_specific(method) else None)[1][method]
                for method in MEASURED}

    steps = {f"perturbation_{name}": (lambda removal=removal: perturbation_scores(model, images, maps, targets,
                                                                                  removal, logits))
             for name, removal in removals.items()}
    steps["sanity"] = lambda: cascading_randomisation(model, vit_stages(model), maps_of)
    seconds = time_alternating(steps, args.steps, args.warmup, device)
    per_image = {name: statistics.median(times) / args.batch_size for name, times in seconds.items()}
    record = {
        **record_header("measures", "scripts/dev/bench_measures.py", argv if argv is not None else sys.argv[1:],
                        device),
        "model": args.model,
        "image_size": image_size,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "sanity_methods": list(MEASURED),
        "sanity_stages": len(vit_stages(model)),
        **{f"{name}_s_per_image": round(value, 6) for name, value in per_image.items()},
        **{f"{name}_s": [round(t, 5) for t in times] for name, times in seconds.items()},
        "road_over_grey": round(per_image["perturbation_road"] / per_image["perturbation_grey"], 2),
    }
    print(f"{args.model} at {image_size} px, batch {args.batch_size}, {record['device_name']} "
          f"(torch {torch.__version__}, load average {record['load_avg_1min']})")
    for name, value in per_image.items():
        print(f"{name}: {value:.4g} s per image (median of {args.steps} batches)")
    print(f"ROAD / grey fill: {record['road_over_grey']:.1f}x")
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    run_main(main)
