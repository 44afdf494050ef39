"""The tensors behind the problem-1 pictures: position-embedding similarity and [class]-token attention.

Pure functions of tensors (no files, no plotting), so each definition is tested on hand-made inputs:
- `position_embedding_similarity`: the cosine matrix of the patch position embeddings (ViT paper,
  Figure 7), and `similarity_tiles`, the mosaic in which tile (r, c) is row r * g + c as a g x g map;
- `cls_attention_map`: one layer's attention of the [class] query over the patch keys, mean of heads
  (the assignment's attention map); `head_maps`: the same per head;
- `patch_row_maps`: the row of every patch query over the patch keys, each as a map (what a patch
  looks at);
- `attention_rollout` (Abnar & Zuidema 2020): attention propagated through the layers, and
  `layer_rollouts`, the same stopped after each layer;
- `attention_relevancy` (Chefer, Gur & Wolf, ICCV 2021): the layers' attention weighted by the
  gradient of one class's logit, so the map is specific to that class;
- `collect_attention`: the per-layer attention of a package ViT, read in eval mode;
  `relevancy_maps`: the same forward pass plus one backward pass, giving class-specific maps;
- `legrad` (Bousselham et al., ICCV 2025): the positive gradient of each layer's own prediction with
  respect to that layer's attention, summed over the layers; `legrad_maps` computes it for a batch.
Attention tensors are the package's `scores`: (..., heads, N, N), softmax over the last axis, token 0
the class token, token 1 + r * gw + c the patch at grid row r, column c.
"""
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from models.attention import explicit_attention
from models.vit import grid_size

HEAD_FUSIONS = ("mean", "max", "min")


def _grid(grid) -> tuple:
    return (grid, grid) if isinstance(grid, int) else tuple(grid)


def position_embedding_similarity(pos_embedding: torch.Tensor, has_class_token: bool = True) -> torch.Tensor:
    """(N, N) cosine similarities between the N patch position embeddings of a (1, [1 +] N, D) table."""
    emb = pos_embedding.detach().float().reshape(-1, pos_embedding.shape[-1])
    if has_class_token:
        emb = emb[1:]  # the class token has no place in the image
    emb = F.normalize(emb, dim=-1)
    return emb @ emb.T


def similarity_tiles(similarity: torch.Tensor, grid, gap: int = 0) -> torch.Tensor:
    """The Figure-7 mosaic: a gh x gw grid of gh x gw tiles, tile (r, c) = row r * gw + c as a map.

    `gap` rows/columns of NaN between tiles (drawn as background) keep neighbouring tiles apart.
    """
    gh, gw = _grid(grid)
    tiles = similarity.reshape(gh, gw, gh, gw)  # (tile row, tile col, row in tile, col in tile)
    if gap:
        tiles = F.pad(tiles, (0, gap, 0, gap), value=float("nan"))
    th, tw = tiles.shape[2:]
    mosaic = tiles.permute(0, 2, 1, 3).reshape(gh * th, gw * tw)
    return mosaic[: gh * th - gap, : gw * tw - gap] if gap else mosaic


def class_row_map(matrix: torch.Tensor, grid) -> torch.Tensor:
    """The class token's row over the patch columns of a (..., N, N) matrix, as a (..., gh, gw) map."""
    return matrix[..., 0, 1:].reshape(*matrix.shape[:-2], *_grid(grid))


def cls_attention_map(scores: torch.Tensor, grid) -> torch.Tensor:
    """One layer's map: query = class token, keys = patches (class->class dropped), mean over heads.

    (..., heads, N, N) -> (..., gh, gw); for a batch of one this is
    `scores[0, :, 0, 1:].mean(0).reshape(gh, gw)`.
    """
    return class_row_map(scores.mean(dim=-3), grid)


def patch_row_maps(matrix: torch.Tensor, grid) -> torch.Tensor:
    """Each patch query's row over the patch keys of a (..., N, N) matrix: (..., patches, gh, gw).

    Entry [..., r * gw + c] is the map of what the patch at grid row r, column c attends to; the
    class token's row and column are left out, as in `class_row_map`.
    """
    patches = matrix[..., 1:, 1:]
    return patches.reshape(*patches.shape[:-1], *_grid(grid))


def head_maps(scores: torch.Tensor, grid) -> torch.Tensor:
    """The class token's attention over the patches, one map per head: (..., heads, gh, gw)."""
    return class_row_map(scores, grid)


def fuse_heads(scores: torch.Tensor, head_fusion: str = "mean") -> torch.Tensor:
    """(..., heads, N, N) -> (..., N, N) by the mean, max or min over heads."""
    if head_fusion == "mean":
        return scores.mean(dim=-3)
    if head_fusion == "max":
        return scores.amax(dim=-3)
    if head_fusion == "min":
        return scores.amin(dim=-3)
    raise ValueError(f"head_fusion must be one of {HEAD_FUSIONS}, not {head_fusion!r}")


def discard_lowest(attention: torch.Tensor, ratio: float) -> torch.Tensor:
    """Zero the `ratio` fraction of smallest weights in each row of (..., N, N); the rest is kept.

    Per row rather than over the whole matrix, so every query keeps its strongest keys.
    """
    n_drop = int(attention.shape[-1] * ratio)
    if n_drop == 0:
        return attention
    lowest = attention.topk(n_drop, dim=-1, largest=False).indices
    return attention.scatter(-1, lowest, 0.0)


def layer_rollouts(attentions, head_fusion: str = "mean", discard_ratio: float = 0.0) -> list:
    """Attention rollout stopped after each layer: entry k is `attention_rollout(attentions[:k + 1])`.

    `attentions`: one (..., heads, N, N) tensor per layer, first layer first. Per layer the heads are
    fused into A, optionally the lowest `discard_ratio` of each row is zeroed, the residual connection
    is added as 0.5 * A + 0.5 * I, and rows are renormalised to sum 1 (a query distributes its unit of
    attention over the keys; normalising columns instead is a known slip); the layers multiply with
    the first rightmost. Each (..., N, N) result has rows that sum to 1; its class row over the patches
    is the rollout map (`class_row_map`).
    """
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), not {discard_ratio}")
    rollouts = []
    for scores in attentions:
        a = discard_lowest(fuse_heads(scores.float(), head_fusion), discard_ratio)
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = 0.5 * a + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)
        rollouts.append(a @ rollouts[-1] if rollouts else a)
    if not rollouts:
        raise ValueError("attention rollout needs at least one layer")
    return rollouts


def attention_rollout(attentions, head_fusion: str = "mean", discard_ratio: float = 0.0) -> torch.Tensor:
    """Attention rollout through all of `attentions` (see `layer_rollouts`): (..., N, N), rows sum 1."""
    return layer_rollouts(attentions, head_fusion, discard_ratio)[-1]


def attention_relevancy(attentions, gradients) -> torch.Tensor:
    """Relevancy of self-attention (Chefer, Gur & Wolf, ICCV 2021, the self-attention rule).

    `attentions` and `gradients`: one (..., heads, N, N) tensor per layer, first layer first: the
    softmax attention A and the gradient of the target logit with respect to it. Starting from R = I,
    each layer adds A_bar @ R with A_bar = mean over heads of relu(grad * A): only the weights that
    raise the target logit count. Returns R (..., N, N); its class row over the patches is the map
    (`class_row_map`).
    """
    relevancy = None
    for scores, grad in zip(attentions, gradients, strict=True):
        a_bar = (grad.float() * scores.float()).clamp(min=0).mean(dim=-3)
        if relevancy is None:
            relevancy = torch.eye(a_bar.shape[-1], dtype=a_bar.dtype, device=a_bar.device).expand_as(a_bar)
        relevancy = relevancy + a_bar @ relevancy
    if relevancy is None:
        raise ValueError("attention_relevancy needs at least one layer")
    return relevancy


@contextmanager
def _explicit_eval(model: torch.nn.Module):
    """Eval mode (no dropout on the attention weights) and the package's explicit attention, which
    computes the same function as the fused kernel and keeps the softmax output on each block; the
    model's mode and attention class are restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with explicit_attention(model):
            yield model
    finally:
        model.train(was_training)


@torch.no_grad()
def collect_attention(model: torch.nn.Module, images: torch.Tensor) -> tuple:
    """(logits, [scores of each layer, (B, heads, N, N)]) of a package ViT on a batch of images."""
    with _explicit_eval(model):
        logits = model(images)
        attentions = [block.attn.scores for block in model.transformer.blocks]
    return logits, attentions


def _attention_graph(model: torch.nn.Module, images: torch.Tensor) -> tuple:
    """(logits, attentions) of a forward pass that keeps the graph from the attention to the logits.

    Call inside `torch.enable_grad()` and `_explicit_eval(model)`.
    """
    images = images.detach().requires_grad_(True)  # the graph exists even if the weights are frozen
    logits = model(images)
    return logits, [block.attn.scores for block in model.transformer.blocks]


def target_logits(logits: torch.Tensor, target_class=None) -> tuple:
    """(targets (B,), their logits (B,)): each row's predicted class for None, else the int or (B,)
    tensor `target_class`."""
    if target_class is None:
        targets = logits.argmax(dim=-1)
    else:
        targets = torch.as_tensor(target_class, device=logits.device).long().expand(len(logits))
    return targets, logits.gather(1, targets[:, None])[:, 0]


def relevancy_maps(model: torch.nn.Module, images: torch.Tensor, target_class=None) -> tuple:
    """(logits, targets, maps (B, gh, gw)): the relevancy map of each image for its target class.

    `target_class`: None for each image's predicted class, an int for one class for all, or a (B,)
    tensor. One forward pass in eval mode with explicit attention, then one backward pass of the sum
    of the target logits over the batch: an image's logit depends only on its own attention, so each
    image gets exactly the gradients it would get alone. Only the attention's gradients are computed
    (`torch.autograd.grad`); the parameters' `.grad` is left untouched.
    """
    with torch.enable_grad(), _explicit_eval(model):
        logits, attentions = _attention_graph(model, images)
        targets, chosen = target_logits(logits, target_class)
        gradients = torch.autograd.grad(chosen.sum(), attentions)
    relevancy = attention_relevancy([a.detach() for a in attentions], gradients)
    return logits.detach(), targets, class_row_map(relevancy, grid_size(model))


def min_max(maps: torch.Tensor) -> torch.Tensor:
    """Each (..., h, w) map scaled to [0, 1] by its own minimum and maximum; a constant map is 0."""
    low = maps.amin(dim=(-2, -1), keepdim=True)
    span = maps.amax(dim=(-2, -1), keepdim=True) - low
    return torch.where(span > 0, (maps - low) / span.where(span > 0, torch.ones_like(span)), 0.0)


def legrad(gradients, grid) -> torch.Tensor:
    """LeGrad (Bousselham et al., "LeGrad: An Explainability Method for Vision Transformers via
    Feature Formation Sensitivity", ICCV 2025) from each layer's gradient: (..., gh, gw) in [0, 1].

    `gradients`: one (..., heads, N, N) tensor per layer, the gradient of that layer's own score for
    the target with respect to its attention weights. Per layer relu, mean over heads, mean over the
    queries, the class token's key dropped; summed over the layers and min-max scaled per map.
    """
    summed = sum(grad.float().clamp(min=0).mean(dim=(-3, -2))[..., 1:] for grad in gradients)
    return min_max(summed.reshape(*summed.shape[:-1], *_grid(grid)))


@contextmanager
def _block_outputs(model: torch.nn.Module):
    """Collect each block's output (B, N, D) during the forward passes inside, first block first."""
    outputs = []
    handles = [block.register_forward_hook(lambda _m, _args, out: outputs.append(out))
               for block in model.transformer.blocks]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def legrad_maps(model: torch.nn.Module, images: torch.Tensor, target_class=None) -> tuple:
    """(logits, targets, maps (B, gh, gw)): each image's LeGrad map for its target class (None: the
    predicted one; an int or a (B,) tensor).

    The score of layer l is the target logit of that layer's own [class] token sent through the
    model's final LayerNorm and head (the last layer's is the logit itself). One forward pass in eval
    mode with explicit attention, then one backward pass per layer of its scores summed over the
    batch, down to that layer's attention only: a short path (the rest of the block and the head).
    Only row 0 of a layer's gradient is non-zero, since the [class] token's output reads no other row.
    """
    with torch.enable_grad(), _explicit_eval(model), _block_outputs(model) as outputs:
        logits, attentions = _attention_graph(model, images)
        targets, _ = target_logits(logits, target_class)
        gradients = []
        for layer, (state, scores) in enumerate(zip(outputs, attentions)):
            _, score = target_logits(model.fc(model.norm(state[:, 0])), targets)
            gradients += torch.autograd.grad(score.sum(), scores, retain_graph=layer < len(attentions) - 1)
    return logits.detach(), targets, legrad(gradients, grid_size(model))
