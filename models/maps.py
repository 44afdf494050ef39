"""The tensors behind the problem-1 pictures: position-embedding similarity and [class]-token attention.

Pure functions of tensors (no files, no plotting), so each definition is tested on hand-made inputs:
- `position_embedding_similarity`: the cosine matrix of the patch position embeddings (ViT paper,
  Figure 7), and `similarity_tiles`, the mosaic in which tile (r, c) is row r * g + c as a g x g map;
- `cls_attention_map`: one layer's attention of the [class] query over the patch keys, mean of heads
  (the assignment's attention map); `head_maps`: the same per head;
- `attention_rollout` (Abnar & Zuidema 2020): attention propagated through the layers;
- `collect_attention`: the per-layer attention of a package ViT, read in eval mode.
Attention tensors are the package's `scores`: (..., heads, N, N), softmax over the last axis, token 0
the class token, token 1 + r * gw + c the patch at grid row r, column c.
"""
import torch
import torch.nn.functional as F

from .attention import explicit_attention

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


def attention_rollout(attentions, head_fusion: str = "mean", discard_ratio: float = 0.0) -> torch.Tensor:
    """Attention rollout: the product, first layer rightmost, of each layer's 0.5 * A + 0.5 * I.

    `attentions`: one (..., heads, N, N) tensor per layer, first layer first. Per layer the heads are
    fused into A, optionally the lowest `discard_ratio` of each row is zeroed, the residual connection
    is added as 0.5 * A + 0.5 * I, and rows are renormalised to sum 1 (a query distributes its unit of
    attention over the keys; normalising columns instead is a known slip). The result (..., N, N) has
    rows that sum to 1; its class row over the patches is the rollout map (`class_row_map`).
    """
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), not {discard_ratio}")
    rollout = None
    for scores in attentions:
        a = discard_lowest(fuse_heads(scores.float(), head_fusion), discard_ratio)
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = 0.5 * a + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    if rollout is None:
        raise ValueError("attention_rollout needs at least one layer")
    return rollout


@torch.no_grad()
def collect_attention(model: torch.nn.Module, images: torch.Tensor) -> tuple:
    """(logits, [scores of each layer, (B, heads, N, N)]) of a package ViT on a batch of images.

    The model runs in eval mode (no dropout on the attention weights) with the package's explicit
    attention, which computes the same function as the fused kernel and keeps the softmax output on
    each block; the model's mode and attention class are restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        with explicit_attention(model):
            logits = model(images)
            attentions = [block.attn.scores for block in model.transformer.blocks]
    finally:
        model.train(was_training)
    return logits, attentions
