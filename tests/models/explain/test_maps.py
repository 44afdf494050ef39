"""The math behind the problem-1 pictures, checked against direct computations on hand-made tensors."""
import numpy as np
import pytest
import torch

from models.attention import FastSelfAttention, explicit_attention, set_attention
from models.explain.maps import (attention_relevancy, attention_rollout, class_row_map, cls_attention_map,
                                 collect_attention, discard_lowest, head_maps, legrad_maps, min_max,
                                 position_embedding_similarity, relevancy_maps, similarity_tiles)
from models.vit import build_vit, grid_size, random_vit


def random_attention(layers, heads, tokens, batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, tokens, tokens, generator=g).mul(2).softmax(-1) for _ in range(layers)]


def micro_model(seed=0):
    torch.manual_seed(seed)
    return build_vit("micro", pretrained=False)


# position embeddings ----------------------------------------------------------------------------

def test_similarity_is_the_cosine_matrix_of_the_patch_embeddings():
    pos = torch.randn(1, 1 + 9, 6, generator=torch.Generator().manual_seed(1))
    sim = position_embedding_similarity(pos).numpy()
    patches = pos[0, 1:].double().numpy()  # the class token's slot is not a patch
    expected = np.array([[a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in patches] for a in patches])
    assert sim.shape == (9, 9)
    np.testing.assert_allclose(sim, expected, atol=1e-6)
    np.testing.assert_allclose(sim, sim.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-6)


def test_similarity_without_class_token_keeps_every_row():
    pos = torch.randn(4, 5)
    sim = position_embedding_similarity(pos, has_class_token=False)
    assert sim.shape == (4, 4)
    np.testing.assert_allclose(sim.numpy(), torch.nn.functional.cosine_similarity(
        pos[:, None], pos[None], dim=-1).numpy(), atol=1e-6)


@pytest.mark.parametrize("grid", [3, (2, 3)])
def test_tile_r_c_holds_row_r_times_g_plus_c(grid):
    gh, gw = (grid, grid) if isinstance(grid, int) else grid
    n = gh * gw
    sim = torch.arange(n * n, dtype=torch.float32).reshape(n, n)  # every entry tells where it came from
    mosaic = similarity_tiles(sim, grid)
    assert mosaic.shape == (gh * gh, gw * gw)
    for r in range(gh):
        for c in range(gw):
            tile = mosaic[r * gh:(r + 1) * gh, c * gw:(c + 1) * gw]
            assert torch.equal(tile, sim[r * gw + c].reshape(gh, gw))


def test_tiles_with_gaps_keep_the_tiles_and_put_nan_between():
    g, gap = 3, 1
    sim = torch.arange(81, dtype=torch.float32).reshape(9, 9)
    mosaic = similarity_tiles(sim, g, gap=gap)
    assert mosaic.shape == (g * g + (g - 1) * gap,) * 2
    step = g + gap
    for r in range(g):
        for c in range(g):
            assert torch.equal(mosaic[r * step:r * step + g, c * step:c * step + g], sim[r * g + c].reshape(g, g))
    assert torch.isnan(mosaic[g]).all() and torch.isnan(mosaic[:, g]).all()
    assert torch.isnan(mosaic).sum() == mosaic.numel() - 81


# [class] attention maps ---------------------------------------------------------------------------

def test_cls_map_is_the_class_row_over_patches_mean_of_heads():
    scores = random_attention(1, heads=3, tokens=1 + 16)[0]
    attn_map = cls_attention_map(scores[0], 4)
    expected = scores[0, :, 0, 1:].mean(0).reshape(4, 4)
    assert torch.allclose(attn_map, expected)
    assert cls_attention_map(scores, 4).shape == (1, 4, 4)  # batched too


def test_patch_index_is_row_times_grid_plus_column():
    g, r, c = 4, 1, 3
    scores = torch.zeros(2, 1 + g * g, 1 + g * g)
    scores[:, 0, 1 + r * g + c] = 1.0  # the class token looks only at patch (r, c)
    attn_map = cls_attention_map(scores, g)
    assert attn_map[r, c] == 1.0 and attn_map.sum() == 1.0


def test_class_to_class_weight_is_dropped():
    scores = torch.zeros(1, 5, 5)
    scores[0, 0, 0] = 1.0
    assert cls_attention_map(scores, 2).sum() == 0


def test_head_maps_give_one_map_per_head():
    scores = random_attention(1, heads=3, tokens=1 + 16)[0][0]
    maps = head_maps(scores, 4)
    assert maps.shape == (3, 4, 4)
    for h in range(3):
        assert torch.equal(maps[h], scores[h, 0, 1:].reshape(4, 4))
    assert torch.allclose(maps.mean(0), cls_attention_map(scores, 4))


# rollout ------------------------------------------------------------------------------------------

def direct_rollout(layers, fusion="mean", discard=0.0):
    """The definition, spelled out with numpy on one image: prod of row-normalised 0.5 A + 0.5 I."""
    result = None
    for scores in layers:
        heads = scores[0].double().numpy()
        a = {"mean": heads.mean(0), "max": heads.max(0), "min": heads.min(0)}[fusion]
        n = a.shape[-1]
        for row in a:
            row[np.argsort(row, kind="stable")[: int(n * discard)]] = 0.0
        a = 0.5 * a + 0.5 * np.eye(n)
        a = a / a.sum(1, keepdims=True)
        result = a if result is None else a @ result
    return result


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
def test_rollout_equals_the_direct_product_and_rows_sum_to_one(fusion):
    layers = random_attention(3, heads=2, tokens=5)
    rollout = attention_rollout(layers, head_fusion=fusion)
    assert rollout.shape == (1, 5, 5)
    np.testing.assert_allclose(rollout[0].numpy(), direct_rollout(layers, fusion), atol=1e-6)
    np.testing.assert_allclose(rollout.sum(-1).numpy(), 1.0, atol=1e-6)


def test_rollout_with_discard_equals_the_direct_product():
    layers = random_attention(3, heads=2, tokens=6, seed=3)
    rollout = attention_rollout(layers, discard_ratio=0.5)
    np.testing.assert_allclose(rollout[0].numpy(), direct_rollout(layers, discard=0.5), atol=1e-6)
    np.testing.assert_allclose(rollout.sum(-1).numpy(), 1.0, atol=1e-6)
    assert not torch.allclose(rollout, attention_rollout(layers))


def test_discard_zeroes_the_lowest_of_each_row():
    a = torch.tensor([[0.1, 0.4, 0.2, 0.3], [0.5, 0.2, 0.2, 0.1]])
    kept = discard_lowest(a, 0.5)
    assert torch.equal(kept, torch.tensor([[0.0, 0.4, 0.0, 0.3], [0.5, 0.2, 0.0, 0.0]])) or \
        torch.equal(kept, torch.tensor([[0.0, 0.4, 0.0, 0.3], [0.5, 0.0, 0.2, 0.0]]))  # a tie: either 0.2
    assert torch.equal(discard_lowest(a, 0.0), a)


def test_rollout_of_one_layer_is_that_layer_with_the_residual():
    layers = random_attention(1, heads=1, tokens=4)
    expected = 0.5 * layers[0][0, 0] + 0.5 * torch.eye(4)  # rows already sum to 1
    assert torch.allclose(attention_rollout(layers)[0], expected, atol=1e-6)


def test_rollout_rejects_bad_arguments():
    layers = random_attention(1, heads=1, tokens=4)
    with pytest.raises(ValueError):
        attention_rollout(layers, head_fusion="median")
    with pytest.raises(ValueError):
        attention_rollout(layers, discard_ratio=1.0)
    with pytest.raises(ValueError):
        attention_rollout([])


# reading a model's attention --------------------------------------------------------------------

def test_collect_attention_keeps_the_forward_and_restores_the_model():
    torch.manual_seed(0)
    model = random_vit("micro")
    set_attention(model, "fast").train()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model.eval()(x)
    model.train()
    logits, attentions = collect_attention(model, x)
    assert torch.allclose(logits, expected, atol=1e-5)
    assert model.training  # the caller's mode comes back
    assert all(type(b.attn) is FastSelfAttention for b in model.transformer.blocks)
    assert len(attentions) == 2
    for scores in attentions:
        assert scores.shape == (2, 2, 17, 17)
        assert torch.allclose(scores.sum(-1), torch.ones(2, 2, 17))


def test_last_map_equals_the_packages_stored_scores():
    model = micro_model(1).eval()
    x = torch.randn(1, 3, 32, 32)
    _, attentions = collect_attention(model, x)
    with explicit_attention(model), torch.no_grad():
        model(x)
        for layer in (0, -1):
            expected = model.transformer.blocks[layer].attn.scores[0, :, 0, 1:].mean(0).reshape(4, 4)
            assert torch.allclose(cls_attention_map(attentions[layer][0], grid_size(model)), expected)


def test_rollout_on_a_model_with_uniform_attention():
    """Zero query and key weights make every attention row uniform: U = 1/N everywhere.

    Then each layer is 0.5 U + 0.5 I and, as U @ U = U, L layers give 0.5^L I + (1 - 0.5^L) U.
    """
    model = micro_model(2)
    with torch.no_grad():
        for block in model.transformer.blocks:
            for proj in (block.attn.proj_q, block.attn.proj_k):
                proj.weight.zero_()
                proj.bias.zero_()
    _, attentions = collect_attention(model, torch.randn(1, 3, 32, 32))
    n, layers = 17, len(attentions)
    assert torch.allclose(attentions[0], torch.full((1, 2, n, n), 1 / n))
    rollout = attention_rollout(attentions)[0]
    expected = 0.5 ** layers * torch.eye(n) + (1 - 0.5 ** layers) * torch.full((n, n), 1 / n)
    assert torch.allclose(rollout, expected, atol=1e-6)
    np.testing.assert_allclose(rollout.numpy(), direct_rollout(attentions), atol=1e-6)


def test_rollout_of_a_real_model_equals_the_direct_product():
    model = micro_model(3)
    _, attentions = collect_attention(model, torch.randn(1, 3, 32, 32))
    rollout = attention_rollout(attentions)
    np.testing.assert_allclose(rollout[0].numpy(), direct_rollout(attentions), atol=1e-5)
    assert class_row_map(rollout, 4).shape == (1, 4, 4)


# relevancy ----------------------------------------------------------------------------------------

def direct_relevancy(layers, grads):
    """The rule spelled out with numpy on one image: R = I; R += mean_h(relu(dA * A)) @ R per layer."""
    n = layers[0].shape[-1]
    r = np.eye(n)
    for a, g in zip(layers, grads):
        a_bar = np.maximum(g[0].double().numpy() * a[0].double().numpy(), 0).mean(0)
        r = r + a_bar @ r
    return r


def package_scores_and_gradients(model, x, target):
    """The package's own `attn.scores` (eval, explicit attention) and their gradients for one logit,
    read with retain_grad after a plain backward pass."""
    model.eval()
    with explicit_attention(model):
        logits = model(x)
        scores = [block.attn.scores for block in model.transformer.blocks]
        for s in scores:
            s.retain_grad()
        logits[0, target].backward()
    return [s.detach() for s in scores], [s.grad for s in scores]


def trained_like_micro(seed=0):
    torch.manual_seed(seed)
    model = random_vit("micro")
    return model


def test_relevancy_rule_on_hand_made_tensors():
    layers = random_attention(3, heads=2, tokens=5, seed=4)
    g = torch.Generator().manual_seed(5)
    grads = [torch.randn(a.shape, generator=g) for a in layers]
    np.testing.assert_allclose(attention_relevancy(layers, grads)[0].numpy(), direct_relevancy(layers, grads),
                               atol=1e-5)
    negative = [-(a + 0.1) for a in layers]  # no weight raises the logit: nothing is added to I
    assert torch.allclose(attention_relevancy(layers, negative)[0], torch.eye(5))
    with pytest.raises(ValueError):
        attention_relevancy([], [])


def test_relevancy_map_equals_the_rule_on_the_packages_scores_and_gradients():
    model = trained_like_micro()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    logits, targets, maps = relevancy_maps(model, x)
    predicted = int(logits.argmax())
    assert targets.tolist() == [predicted]
    assert all(p.grad is None for p in model.parameters())  # relevancy leaves the weights' grads alone
    scores, grads = package_scores_and_gradients(model, x, predicted)
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    expected = direct_relevancy(scores, grads)[0, 1:].reshape(4, 4)
    np.testing.assert_allclose(maps[0].numpy(), expected, rtol=1e-4, atol=1e-6)


def test_relevancy_batched_equals_one_by_one_and_keeps_train_mode():
    model = trained_like_micro(1)
    set_attention(model, "fast").train()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    logits, targets, maps = relevancy_maps(model, x)
    assert model.training and all(type(b.attn) is FastSelfAttention for b in model.transformer.blocks)
    for i in range(4):
        one_logits, one_target, one_map = relevancy_maps(model, x[i:i + 1])
        assert one_target.item() == targets[i].item()
        torch.testing.assert_close(one_map[0], maps[i], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(one_logits[0], logits[i], rtol=1e-4, atol=1e-5)
    # a class per image, or one class for all
    _, chosen, _ = relevancy_maps(model, x, torch.tensor([0, 1, 2, 3]))
    assert chosen.tolist() == [0, 1, 2, 3]
    assert relevancy_maps(model, x, 7)[1].tolist() == [7] * 4


def test_relevancy_maps_for_two_classes_differ():
    model = trained_like_micro(2)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    _, _, first = relevancy_maps(model, x, 0)
    _, _, second = relevancy_maps(model, x, 1)
    assert not torch.allclose(first, second, rtol=1e-2)
    scores, grads = package_scores_and_gradients(model, x, 1)
    np.testing.assert_allclose(second[0].numpy(), direct_relevancy(scores, grads)[0, 1:].reshape(4, 4),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name, grid", [("L_16_imagenet1k", 24), ("L_32_imagenet1k", 12)])
def test_full_size_models_give_the_published_grids(name, grid):
    """Shapes only: on the meta device nothing is computed or allocated."""
    with torch.device("meta"):
        model = build_vit(name, image_size=384, pretrained=False)
        _, attentions = collect_attention(model, torch.zeros(1, 3, 384, 384))
        rollout = attention_rollout(attentions[:2])
        _, _, relevancy = relevancy_maps(model, torch.zeros(1, 3, 384, 384))
    assert relevancy.shape == (1, grid, grid)
    assert grid_size(model) == (grid, grid)
    assert len(attentions) == 24
    assert attentions[-1].shape == (1, 16, 1 + grid * grid, 1 + grid * grid)
    assert cls_attention_map(attentions[-1][0], grid_size(model)).shape == (grid, grid)
    assert head_maps(attentions[-1][0], grid_size(model)).shape == (16, grid, grid)
    assert class_row_map(rollout[0], grid).shape == (grid, grid)
    assert model.positional_embedding.pos_embedding.shape[1] == 1 + grid * grid


# LeGrad ------------------------------------------------------------------------------------------

def literal_legrad(model, image, target):
    """LeGrad by its definition for one image: per layer l a forward pass of its own, the target logit
    of layer l's [class] token through the final norm and head, its gradient with respect to layer l's
    attention (torch.autograd.grad), relu, mean over heads, then over queries; summed, min-max."""
    model.eval()
    total = 0
    for block in model.transformer.blocks:
        states = []
        with explicit_attention(model):
            handle = block.register_forward_hook(lambda _m, _a, out: states.append(out))
            model(image)
            handle.remove()
            score = model.fc(model.norm(states[0]))[0, 0, target]
            (grad,) = torch.autograd.grad(score, block.attn.scores)
        total = total + grad[0].clamp(min=0).mean(dim=0).mean(dim=0)[1:]
    return (total - total.min()) / (total.max() - total.min())


def test_legrad_equals_a_literal_per_layer_gradient_computation():
    model = set_attention(trained_like_micro(5), "fast").train()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    logits, targets, maps = legrad_maps(model, x)
    assert model.training and all(type(b.attn) is FastSelfAttention for b in model.transformer.blocks)
    assert all(p.grad is None for p in model.parameters())
    torch.testing.assert_close(targets, logits.argmax(dim=-1))
    for i in range(3):
        expected = literal_legrad(model, x[i:i + 1], int(targets[i])).reshape(4, 4)
        torch.testing.assert_close(maps[i], expected, rtol=1e-4, atol=1e-5)
    _, _, for_class = legrad_maps(model, x, 2)
    torch.testing.assert_close(for_class[0], literal_legrad(model, x[:1], 2).reshape(4, 4), rtol=1e-4, atol=1e-5)


def test_legrad_batched_equals_one_by_one():
    model = trained_like_micro(6)
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    _, targets, maps = legrad_maps(model, x, torch.tensor([4, 0, 9]))
    assert targets.tolist() == [4, 0, 9]
    assert maps.amin(dim=(1, 2)).tolist() == [0.0] * 3 and maps.amax(dim=(1, 2)).tolist() == [1.0] * 3
    for i, k in enumerate([4, 0, 9]):
        torch.testing.assert_close(legrad_maps(model, x[i:i + 1], k)[2][0], maps[i], rtol=1e-4, atol=1e-5)


def test_min_max_scales_each_map_and_leaves_a_constant_map_at_zero():
    maps = torch.stack([torch.arange(4.0).reshape(2, 2), torch.full((2, 2), 3.0)])
    torch.testing.assert_close(min_max(maps), torch.stack([torch.arange(4.0).reshape(2, 2) / 3, torch.zeros(2, 2)]))
