"""AttnLRP (CP-LRP): each rule keeps the forward pass and conserves relevance, and the map of a whole
ViT adds up to the target logit once every additive term that is not a pixel is zero."""
import pytest
import torch
import torch.nn.functional as F

from models.attention import FastSelfAttention, set_attention
from models.explain.attnlrp import attnlrp_maps, conservative_layer_norm, cp_lrp_rules, gelu_identity
from models.explain.maps import collect_attention
from models.vit import random_vit


def micro_vit(seed=0):
    torch.manual_seed(seed)
    return random_vit("micro")


def without_additive_terms(model):
    """Every bias (Linear, patch embedding, LayerNorm), the position embedding and the [class] token
    set to zero: what is left of each logit comes from the pixels alone."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias") or name in ("positional_embedding.pos_embedding", "class_token"):
                parameter.zero_()
    return model


def test_layer_norm_rule_keeps_the_forward_and_conserves_relevance():
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(8, dtype=torch.float64)
    y = conservative_layer_norm(x, weight, None, 1e-6)
    torch.testing.assert_close(y, F.layer_norm(x, (8,), weight, None, 1e-6))
    upstream = torch.randn_like(y)
    (grad,) = torch.autograd.grad(y, x, upstream)
    torch.testing.assert_close((x * grad).sum(dim=-1), (y * upstream).sum(dim=-1))  # per token


def test_gelu_rule_keeps_the_forward_and_passes_relevance_unchanged():
    x = torch.randn(100, dtype=torch.float64, requires_grad=True)
    y = gelu_identity(x)
    torch.testing.assert_close(y, F.gelu(x))
    upstream = torch.randn_like(y)
    (grad,) = torch.autograd.grad(y, x, upstream)
    torch.testing.assert_close(x * grad, y * upstream)  # element by element: the identity rule


def test_the_rules_change_the_gradients_only_and_are_undone_afterwards():
    model = set_attention(micro_vit(), "fast").train()
    x = torch.randn(2, 3, 32, 32)
    expected, _ = collect_attention(model, x)
    with cp_lrp_rules(model):
        assert not model.training
        logits = model(x.requires_grad_(True))
        logits[:, 0].sum().backward()
        attention = model.transformer.blocks[0].attn
        assert attention.proj_q.weight.grad is None and attention.proj_k.weight.grad is None  # weights held
        assert attention.proj_v.weight.grad is not None
    torch.testing.assert_close(logits.detach(), expected, rtol=1e-5, atol=1e-5)
    assert model.training and all(type(b.attn) is FastSelfAttention for b in model.transformer.blocks)
    assert type(model.norm) is torch.nn.LayerNorm


@pytest.mark.parametrize("seed", [0, 1])
def test_relevance_sums_to_the_target_logit_without_additive_terms(seed):
    """Conservation: with every bias, the position embedding and the [class] token zero, the patches'
    relevance adds up to the logit (float32, within 1e-4 relative)."""
    model = without_additive_terms(micro_vit(seed))
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    for target in (None, 5):
        logits, targets, maps = attnlrp_maps(model, x, target)
        chosen = logits.gather(1, targets[:, None])[:, 0]
        torch.testing.assert_close(maps.sum(dim=(1, 2)), chosen, rtol=1e-4, atol=0)
    assert all(p.grad is None for p in model.parameters())


def test_with_additive_terms_the_patches_hold_part_of_the_logit_only():
    model = micro_vit(2)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    logits, targets, maps = attnlrp_maps(model, x)
    chosen = logits.gather(1, targets[:, None])[:, 0]
    assert not torch.allclose(maps.sum(dim=(1, 2)), chosen, rtol=1e-2)


def test_attnlrp_batched_equals_one_by_one():
    model = micro_vit(3)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    logits, targets, maps = attnlrp_maps(model, x)
    assert maps.shape == (3, 4, 4)
    for i in range(3):
        one_logits, one_target, one_map = attnlrp_maps(model, x[i:i + 1])
        assert one_target.item() == targets[i].item()
        torch.testing.assert_close(one_map[0], maps[i], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(one_logits[0], logits[i], rtol=1e-4, atol=1e-5)
    _, chosen, per_class = attnlrp_maps(model, x, torch.tensor([0, 1, 2]))
    assert chosen.tolist() == [0, 1, 2]
    torch.testing.assert_close(per_class[1], attnlrp_maps(model, x[1:2], 1)[2][0], rtol=1e-4, atol=1e-6)
