"""The fast attention path computes the package's function: same features, gradients and state dict."""
import copy

import pytest
import torch
from pytorch_pretrained_vit.transformer import MultiHeadedSelfAttention

from models.attention import (FastSelfAttention, SdpaSelfAttention, enable_grad_checkpointing, explicit_attention,
                              set_attention)
from models.vit import build_vit, random_vit


def attention_classes(model):
    return {type(m) for m in model.modules() if isinstance(m, MultiHeadedSelfAttention)}


@pytest.fixture
def micro():
    torch.manual_seed(0)
    model = random_vit("micro", head_std=0.1)
    return model


def features(model, images):
    """The final-norm [class] token, the input of the head."""
    out = []
    handle = model.norm.register_forward_hook(lambda module, args, result: out.append(result[:, 0]))
    logits = model(images)
    handle.remove()
    return out[0], logits


def relative_error(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("mode,cls", [("fast", FastSelfAttention), ("sdpa", SdpaSelfAttention)])
def test_fast_and_explicit_give_the_same_features(micro, mode, cls):
    images = torch.randn(3, 3, 32, 32)
    micro.eval()
    explicit = features(set_attention(micro, "explicit"), images)
    fast = features(set_attention(micro, mode), images)
    assert attention_classes(micro) == {cls}
    for a, b in zip(fast, explicit):
        assert relative_error(a, b) < 1e-5


def test_fast_attention_projects_q_k_v_in_one_matmul_that_follows_weight_updates(micro):
    set_attention(micro, "fast").eval()
    attn = micro.transformer.blocks[0].attn
    for proj in (attn.proj_q, attn.proj_k, attn.proj_v):
        proj.forward = None  # calling any of the three separately would fail
    tokens = torch.randn(2, 17, 32)
    before = attn(tokens, None)
    with torch.no_grad():
        attn.proj_v.weight.mul_(2.0)  # an optimizer step changes the weights in place
    after = attn(tokens, None)
    del attn.proj_q.forward, attn.proj_k.forward, attn.proj_v.forward
    expected = set_attention(micro, "explicit").transformer.blocks[0].attn(tokens, None)
    assert not torch.allclose(before, after)
    assert relative_error(after, expected) < 1e-5


@pytest.mark.parametrize("path", ["fast", "sdpa"])
def test_fast_and_explicit_give_the_same_gradients(micro, path):
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 5, 36, 2])
    grads = {}
    for mode in ("explicit", path):
        model = set_attention(copy.deepcopy(micro), mode).train()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        grads[mode] = {name: p.grad for name, p in model.named_parameters()}
    assert grads[path].keys() == grads["explicit"].keys()
    largest = max(g.abs().max() for g in grads["explicit"].values())
    for name, grad in grads["explicit"].items():
        if name.endswith("proj_k.bias"):
            # softmax ignores a shift shared by all keys: this gradient is zero up to rounding
            assert grads[path][name].abs().max() < 1e-6 * largest
            continue
        assert grad.abs().max() > 0, name
        assert relative_error(grads[path][name], grad) < 1e-5, name


def test_the_package_mask_is_honoured(micro):
    tokens = torch.randn(2, 5, 32)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    attn = micro.transformer.blocks[0].attn
    expected = set_attention(micro, "explicit").transformer.blocks[0].attn(tokens, mask)
    fast = set_attention(micro, "fast").transformer.blocks[0].attn(tokens, mask)
    assert relative_error(fast, expected) < 1e-5
    assert attn is micro.transformer.blocks[0].attn  # the class is swapped, the module kept


def test_state_dict_is_unchanged_by_the_switch(micro):
    before = micro.state_dict()
    after = set_attention(micro, "fast").state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    plain = build_vit("micro", pretrained=False)
    plain.load_state_dict(after, strict=True)  # loads into the package's own (explicit) model


def test_explicit_attention_keeps_scores_and_restores_fast(micro):
    set_attention(micro, "fast").eval()
    with explicit_attention(micro):
        assert attention_classes(micro) == {MultiHeadedSelfAttention}
        micro(torch.randn(2, 3, 32, 32))
        scores = micro.transformer.blocks[-1].attn.scores
        assert scores.shape == (2, 2, 17, 17)  # batch, heads, 1 + 4*4 tokens
        assert torch.allclose(scores.sum(-1), torch.ones(2, 2, 17))
    assert attention_classes(micro) == {FastSelfAttention}
    micro(torch.randn(1, 3, 32, 32))
    assert micro.transformer.blocks[-1].attn.scores is None  # the fast path keeps no N x N tensor


def test_explicit_attention_restores_fast_after_an_error(micro):
    set_attention(micro, "fast")
    with pytest.raises(RuntimeError), explicit_attention(micro):
        raise RuntimeError("drawing failed")
    assert attention_classes(micro) == {FastSelfAttention}


def test_attention_dropout_runs_in_train_mode_only(micro):
    set_attention(micro, "fast")
    for block in micro.transformer.blocks:
        block.attn.drop.p = 0.5  # the package models use 0.1; micro has none
    images = torch.randn(2, 3, 32, 32)
    micro.train()
    torch.manual_seed(1)
    first = micro(images)
    second = micro(images)
    first.sum().backward()
    assert not torch.allclose(first, second)  # dropout on the attention weights draws anew
    assert torch.isfinite(first).all()
    micro.eval()
    assert torch.equal(micro(images), micro(images))


def test_unknown_mode_is_refused(micro):
    with pytest.raises(ValueError, match="attention mode"):
        set_attention(micro, "flash")


def test_grad_checkpointing_gives_the_same_gradients(micro):
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    grads = []
    for checkpointed in (False, True):
        model = set_attention(copy.deepcopy(micro), "fast").train()
        if checkpointed:
            enable_grad_checkpointing(model)
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        grads.append([p.grad for p in model.parameters()])
    for plain, recomputed in zip(*grads):
        assert torch.allclose(plain, recomputed, rtol=1e-5, atol=1e-7)
