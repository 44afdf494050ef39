"""The registry of map methods: each entry computes what its definition says, and both scripts list it."""
import pytest
import torch

import p1_vis_attention
from models.explain.attnlrp import attnlrp_maps
from models.explain.maps import (attention_rollout, class_row_map, cls_attention_map, collect_attention, head_maps,
                                 legrad_maps, relevancy_maps)
from models.explain.methods import DRAWN, MAP_METHODS, MEASURED, MapOptions, compute_maps, explanation_maps
from models.vit import random_vit


@pytest.fixture(scope="module")
def model_and_images():
    torch.manual_seed(0)
    return random_vit("micro").eval(), torch.randn(2, 3, 32, 32)


def test_each_method_is_its_definition(model_and_images):
    model, images = model_and_images
    logits, attentions = collect_attention(model, images)
    options = MapOptions(layer=0, head_fusion="max", discard_ratio=0.25, target_class=3)
    expected = {
        "last": cls_attention_map(attentions[0], 4),
        "heads": head_maps(attentions[0], 4),
        "rollout": class_row_map(attention_rollout(attentions[:1], "max", 0.25), 4),
        "relevancy": relevancy_maps(model, images, 3)[2],
        "attnlrp": attnlrp_maps(model, images, 3)[2],
        "legrad": legrad_maps(model, images, 3)[2],
    }
    for name, maps in expected.items():
        got_logits, got = compute_maps(name, model, images, options)
        torch.testing.assert_close(got, maps, msg=name)
        torch.testing.assert_close(got_logits, logits, rtol=1e-5, atol=1e-5, msg=name)


def test_the_measured_defaults_are_the_last_layer_and_the_predicted_class(model_and_images):
    model, images = model_and_images
    predicted, maps = explanation_maps(model, images, ["last", "relevancy"], torch.tensor([0, 1]))
    assert torch.equal(maps["last"], compute_maps("last", model, images, MapOptions(layer=1))[1])
    assert torch.equal(maps["relevancy"], relevancy_maps(model, images, predicted)[2])


def test_both_scripts_take_their_methods_from_the_registry():
    assert set(DRAWN) | set(MEASURED) == set(MAP_METHODS)
    assert p1_vis_attention.parse_args(["--ckpt", "x", "--out_dir", "y", "--method", "heads"]).method == ["heads"]
    needs_gradients = {name for name, method in MAP_METHODS.items() if method.needs_gradients}
    assert needs_gradients == {"relevancy", "attnlrp", "legrad"}
    assert all(name in DRAWN and name in MEASURED for name in needs_gradients)


def test_a_flag_the_method_does_not_read_is_named_in_a_warning(capsys):
    args = p1_vis_attention.parse_args(["--ckpt", "x", "--out_dir", "y", "--method", "last", "--target_class", "2",
                                        "--head_fusion", "max"])
    assert p1_vis_attention.map_options(args).target_class == 2
    assert "--head_fusion and --target_class do not apply to --method last" in capsys.readouterr().err
    p1_vis_attention.map_options(p1_vis_attention.parse_args(["--ckpt", "x", "--out_dir", "y", "--method", "rollout",
                                                              "--head_fusion", "max"]))
    assert capsys.readouterr().err == ""
