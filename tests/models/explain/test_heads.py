"""Head importance (Michel et al. 2019): |dL/dxi_h| of a gate on each head's output, checked against
the loss change measured by scaling each head's values by 1 +- eps (its output scales with them)."""
import torch
import torch.nn.functional as F

import catr
from catr.heads import caption_head_importance
from catr.relevancy import token_log_probs
from models.explain.heads import vit_head_importance
from models.vit import random_vit

EPS = 1e-4


@torch.no_grad()
def scaled_values(weight, bias, head: int, heads: int, factor: float):
    """Scale one head's rows of a value projection in place: that head's output scales with them."""
    rows = slice(head * weight.shape[0] // heads, (head + 1) * weight.shape[0] // heads)
    weight[rows] *= factor
    bias[rows] *= factor


def finite_difference(loss, projections, heads: int) -> torch.Tensor:
    """(layers, heads) |L(xi_h = 1 + eps) - L(xi_h = 1 - eps)| / 2 eps, each head scaled alone."""
    result = torch.zeros(len(projections), heads, dtype=torch.float64)
    for layer, (weight, bias) in enumerate(projections):
        for head in range(heads):
            scaled_values(weight, bias, head, heads, 1 + EPS)
            up = loss()
            scaled_values(weight, bias, head, heads, (1 - EPS) / (1 + EPS))
            down = loss()
            scaled_values(weight, bias, head, heads, 1 / (1 - EPS))
            result[layer, head] = abs(up - down) / (2 * EPS)
    return result


def assert_same_ranking(importance, expected):
    torch.testing.assert_close(importance.double(), expected, rtol=1e-4, atol=1e-9)
    for layer in range(len(expected)):  # the page ranks heads within a layer
        assert importance[layer].argsort(descending=True).tolist() == expected[layer].argsort(descending=True).tolist()


def test_vit_head_ranks_are_the_loss_change_of_scaling_each_head():
    torch.manual_seed(0)
    model = random_vit("micro").double().eval()
    image = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    importance = vit_head_importance(model, image)
    target = model(image).argmax(dim=-1)

    @torch.no_grad()
    def loss():
        return float(F.cross_entropy(model(image), target))

    blocks = model.transformer.blocks
    values = [(block.attn.proj_v.weight, block.attn.proj_v.bias) for block in blocks]
    assert importance.shape == (len(blocks), blocks[0].attn.n_heads) and importance.dtype == torch.float32
    assert_same_ranking(importance, finite_difference(loss, values, blocks[0].attn.n_heads))


def test_caption_head_ranks_are_the_loss_change_of_scaling_each_cross_attention_head():
    torch.manual_seed(0)
    model = catr.build_model("tiny").double().eval()
    image = torch.randn(3, 32, 32, dtype=torch.float64)
    ids = torch.tensor([1996, 3899, catr.SEP_ID])
    importance = caption_head_importance(model, image, ids)
    with torch.no_grad():
        cells = model.image_cells(image[None])  # below every attention: scaling the values leaves it

    @torch.no_grad()
    def loss():
        return float(-token_log_probs(model, cells, ids[None]).sum())

    layers = model.transformer.decoder.layers
    heads = layers[0].multihead_attn.nheads
    dim = layers[0].multihead_attn.out_proj.in_features
    # the value rows of the packed in-projection: rows 2D..3D
    values = [(layer.multihead_attn.in_proj_weight[2 * dim:], layer.multihead_attn.in_proj_bias[2 * dim:])
              for layer in layers]
    assert_same_ranking(importance, finite_difference(loss, values, heads))
    assert (caption_head_importance(model, image, ids[:0]) == 0).all()
