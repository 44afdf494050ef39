"""The cascading randomisation: a map that ignores the weights keeps correlation 1 at every stage, a
gradient map falls; the trained weights come back; the stages of both networks."""
import torch
import torch.nn.functional as F

from models.explain.faithfulness import random_maps
from models.explain.sanity import (captioner_stages, cascading_randomisation, randomised_models, sanity_summary,
                                   sanity_verdict, verdict_stage, vit_stages)
from models.vit import random_vit


def edge_maps(images):
    """The gradient magnitude of the image's grey levels: a picture of the image, not of any model."""
    grey = images.mean(dim=1, keepdim=True)
    dx = F.conv2d(grey, torch.tensor([[[[-1.0, 0.0, 1.0]]]]), padding=(0, 1))
    dy = F.conv2d(grey, torch.tensor([[[[-1.0], [0.0], [1.0]]]]), padding=(1, 0))
    return (dx.square() + dy.square()).sqrt()[:, 0]


def gradient_maps(model, images, target):
    """|d logit_target / d pixel|, summed over the channels (Simonyan et al. 2014)."""
    images = images.clone().requires_grad_(True)
    logits = model(images)
    (gradient,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), images)
    return gradient.abs().sum(dim=1)


def test_a_map_that_ignores_the_weights_stays_and_a_gradient_map_falls():
    torch.manual_seed(0)
    model = random_vit("micro").eval()
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = model(images).argmax(dim=1)
    trained = {name: value.clone() for name, value in model.state_dict().items()}

    def maps_of(network):
        return {"edges": edge_maps(images), "random": random_maps(range(8), (4, 4), seed=0),
                "gradient": gradient_maps(network, images, target)}

    stages = vit_stages(model)
    result = cascading_randomisation(model, stages, maps_of, seed=0)
    assert result["stages"] == ["head", "block 1", "block 0"]
    for method in ("edges", "random"):
        assert torch.allclose(result["correlation"][method], torch.ones(3, 8, dtype=torch.float64))
    assert result["correlation"]["gradient"][1:].mean() < 0.5
    summary = sanity_summary(result, verdict_stage(stages, "block"), resamples=200)
    assert summary["edges"]["verdict"] == summary["random"]["verdict"] == "fails"
    assert summary["gradient"]["verdict"] == "passes"
    assert summary["gradient"]["verdict_stage"] == "block 1"
    assert all(torch.equal(value, trained[name]) for name, value in model.state_dict().items())


def test_the_weights_come_back_even_when_the_stages_are_left_early():
    model = random_vit("micro")
    before = {name: value.clone() for name, value in model.state_dict().items()}
    stages = randomised_models(model, vit_stages(model), seed=0)
    _, randomised = next(stages)
    assert not torch.equal(randomised.fc.weight, before["fc.weight"])
    assert torch.equal(randomised.transformer.blocks[0].attn.proj_q.weight, before["transformer.blocks.0.attn.proj_q.weight"])
    stages.close()
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())


def test_the_captioner_is_randomised_from_the_decoder_top_then_the_encoder(tiny_catr):
    stages = captioner_stages(tiny_catr)
    decoder, encoder = len(tiny_catr.transformer.decoder.layers), len(tiny_catr.transformer.encoder.layers)
    names = [name for name, _ in stages]
    assert names == (["head"] + [f"decoder {i}" for i in reversed(range(decoder))]
                     + [f"encoder {i}" for i in reversed(range(encoder))])
    assert verdict_stage(stages, "decoder") == f"decoder {decoder - (decoder + 1) // 2}"


def test_the_verdict_reads_the_interval_against_the_midpoint():
    assert sanity_verdict((0.1, 0.4), floor=0.0) == "passes"
    assert sanity_verdict((0.6, 0.9), floor=0.0) == "fails"
    assert sanity_verdict((0.4, 0.6), floor=0.0) == "unclear"
    assert sanity_verdict((0.5, 0.6), floor=0.4) == "passes"  # midpoint 0.7
