"""Which image cells each word of a caption depends on: CATR's cross-attention, and relevancy.

Relevancy follows the encoder-decoder rules of Chefer, Gur & Wolf (ICCV 2021, "Generic
Attention-model Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers",
equations 5-10). The caption is teacher-forced: [CLS] + its tokens; the target of token t is the logit
of its id at position t - 1, the query that predicted it (the end token [SEP] is a token like any
other). For every attention A of the network (encoder self-attention over the h*w cells, decoder
self-attention over the words, decoder cross-attention from words to cells), A_bar is the mean over
heads of relu(dA * A), dA the gradient of the target logit with respect to A. Starting from
R_ii = I (cells), R_qq = I (words) and R_qi = 0:

- each encoder layer: R_ii += A_bar R_ii;
- each decoder layer, self-attention: R_qq += A_bar R_qq and R_qi += A_bar R_qi; then its
  cross-attention: R_qi += norm(R_qq)^T A_bar norm(R_ii), where norm(R) subtracts I, divides each row
  by its sum and adds I back (equations 8-9). A row that holds nothing besides I (no gradient reached
  it, as for the words after the target) stays the row of I; the reference implementation's 0 / 0 is
  NaN there and zeroes that layer's whole update;
- the map of token t is row t - 1 of R_qi, on the (h, w) grid row-major, as the attention maps.

All tokens of a caption share one forward pass and one backward pass: `torch.autograd.grad` with
`is_grads_batched` back-propagates a batch of one-hot targets, one per token, through the same graph,
as if the batch were repeated once per token with each copy its own target. Only the attention
weights' gradients are computed, never the parameters'. The rules are then applied without any
h*w x h*w product: R_qi is P norm(R_ii), with P the result of the same recursion without norm(R_ii),
and norm(R_ii) = D (R_ii - I) + I, D the inverse row sums, is applied to the one row needed through
the layers' factors of R_ii = (I + A_bar_E) ... (I + A_bar_1): vector-matrix products only.
"""
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .tokenizer import CLS_ID, PAD_ID

TARGETS_PER_BACKWARD = 256  # one-hot targets back-propagated together; bounds the memory of the gradients


@dataclass
class WordMaps:
    """Everything known about each token of teacher-forced captions of one image."""

    relevancy: Tensor  # (B, T, h, w); zeros on padding
    attention: Tensor  # (layers, B, T, h, w): each decoder layer's cross-attention row, mean over heads
    log_probs: Tensor  # (B, T): log-probability of each token given the image and the tokens before it


def decoder_inputs(caption_ids: Tensor) -> Tensor:
    """(B, T) caption tokens (PAD after the end) -> the teacher-forced input [CLS] + tokens[:-1].

    Position j then predicts token j. Padding needs no mask: the decoder is causal, so what follows a
    caption's last token never changes what came before it.
    """
    cls = caption_ids.new_full((caption_ids.shape[0], 1), CLS_ID)
    return torch.cat((cls, caption_ids[:, :-1]), dim=1)


@contextmanager
def recorded_attention(model):
    """Collect every attention's weights (B, heads, queries, keys) during the forward passes inside:
    yields a dict of lists, 'encoder', 'decoder_self' and 'decoder_cross', first layer first."""
    record = {"encoder": [], "decoder_self": [], "decoder_cross": []}
    modules = [(layer.self_attn, "encoder") for layer in model.transformer.encoder.layers]
    for layer in model.transformer.decoder.layers:
        modules += [(layer.self_attn, "decoder_self"), (layer.multihead_attn, "decoder_cross")]
    handles = [module.register_forward_hook(lambda _m, _args, out, key=key: record[key].append(out[1]))
               for module, key in modules]
    try:
        yield record
    finally:
        for handle in handles:
            handle.remove()


def head_hidden(model, states: Tensor) -> Tensor:
    """The vocabulary head's last hidden layer (..., mlp_dim) of decoder states (..., D)."""
    for layer in model.mlp.layers[:-1]:
        states = F.relu(layer(states))
    return states


def teacher_forced_hidden(model, encoded, caption_ids: Tensor) -> Tensor:
    """The head's last hidden layer (B, T, mlp_dim) of the teacher-forced captions."""
    states, _, _ = model.decode(encoded, decoder_inputs(caption_ids))
    return head_hidden(model, states)


def caption_logits(model, hidden: Tensor, caption_ids: Tensor) -> Tensor:
    """(B, T) logits of the caption's own ids: only those rows of the vocabulary head."""
    head = model.mlp.layers[-1]
    return (hidden * head.weight[caption_ids]).sum(dim=-1) + head.bias[caption_ids]


def image_leaf_cells(model, image: Tensor, cells: tuple = None) -> tuple:
    """`model.image_cells` of one preprocessed (3, H, W) image, batch 1, with the cells (1, h*w, D) a
    fresh leaf that requires grad: every gradient method's graph starts there, even with frozen
    weights. `cells`, if already computed, saves running the backbone again. The model must be in eval
    mode (dropout would make the maps random)."""
    if model.training:
        raise ValueError("call model.eval() first: dropout would make the maps random")
    if image.dim() != 3:
        raise ValueError(f"expected one (3, H, W) image, got shape {tuple(image.shape)}")
    if cells is None:
        with torch.no_grad():  # the backbone lies below every attention: no gradient flows there
            cells = model.image_cells(image[None])
    return cells[0].detach().clone().requires_grad_(True), *cells[1:]


def expand_encoding(encoded, rows: int):
    """An encoding of one image seen by `rows` captions (a view, no copy)."""
    return type(encoded)([(k.expand(rows, *k.shape[1:]), v.expand(rows, *v.shape[1:])) for k, v in encoded.memory_kvs],
                         encoded.padding_mask.expand(rows, -1), encoded.grid)


def token_log_probs(model, cells: tuple, caption_ids: Tensor, removed: Tensor = None) -> Tensor:
    """(R, T) log-probabilities of teacher-forced captions (R, T) of one image, whose `cells` are
    `model.image_cells` of it (batch 1); `removed` (R, h*w) hides cells from every attention."""
    src, pos, padding, grid = cells
    rows = caption_ids.shape[0]
    if removed is None:
        encoded = expand_encoding(model.encode_cells(src, pos, padding, grid), rows)
    else:
        encoded = model.encode_cells(src.expand(rows, -1, -1), pos.expand(rows, -1, -1), padding.expand(rows, -1),
                                     grid, removed)
    logits = model.mlp.layers[-1](teacher_forced_hidden(model, encoded, caption_ids))
    return logits.log_softmax(dim=-1).gather(-1, caption_ids[..., None])[..., 0]


def _mean_relu(weights: Tensor, grads: Tensor, index: Tensor) -> Tensor:
    """A_bar per target, in float64: `weights` (N, heads, Q, K), `grads` (targets, N, heads, Q, K) and
    `index` (targets,), the row of N each target's caption reads (N is 1 for the encoder's weights,
    which all the captions of the image share) -> (targets, Q, K)."""
    if weights.shape[0] == 1:
        picked = grads[:, 0] * weights
    else:
        picked = grads[torch.arange(len(index), device=grads.device), index] * weights[index]
    return picked.clamp(min=0).mean(dim=1).double()


def _normalized_residual(relevancy: Tensor) -> Tensor:
    """Equations 8-9: (R - I) with each row divided by its sum, plus I; an empty row stays I's row."""
    eye = torch.eye(relevancy.shape[-1], dtype=relevancy.dtype, device=relevancy.device)
    beyond = relevancy - eye
    sums = beyond.sum(dim=-1, keepdim=True)
    return torch.where(sums > 0, beyond / sums.where(sums > 0, torch.ones_like(sums)), 0.0) + eye


def relevancy_rows(encoder: list, decoder_self: list, decoder_cross: list, positions: Tensor) -> Tensor:
    """The rules for a batch of targets: row `positions[k]` of R_qi (targets, S).

    encoder: per layer A_bar (targets, S, S); decoder_self: per layer (targets, T, T); decoder_cross:
    per layer (targets, T, S); all non-negative.
    """
    targets, length = decoder_self[0].shape[:2]
    dtype, device = decoder_self[0].dtype, decoder_self[0].device
    r_qq = torch.eye(length, dtype=dtype, device=device).expand(targets, length, length)
    p = decoder_cross[0].new_zeros(decoder_cross[0].shape)  # R_qi without its right factor norm(R_ii)
    for a_self, a_cross in zip(decoder_self, decoder_cross, strict=True):
        r_qq = r_qq + a_self @ r_qq
        p = p + a_self @ p
        p = p + _normalized_residual(r_qq).transpose(1, 2) @ a_cross
    row = p[torch.arange(targets, device=device), positions]  # (targets, S)
    # row @ norm(R_ii) = (row * d) @ R_ii - row * d + row, with d the inverse row sums of R_ii - I.
    sums = torch.ones_like(row)
    for a_bar in encoder:  # R_ii @ 1, the first layer's factor applied first
        sums = sums + (a_bar @ sums[..., None])[..., 0]
    beyond = sums - 1
    scaled = torch.where(beyond > 0, row / beyond.where(beyond > 0, torch.ones_like(beyond)), 0.0)
    product = scaled
    for a_bar in reversed(encoder):  # scaled @ R_ii, the last layer's factor applied first
        product = product + (product[:, None, :] @ a_bar)[:, 0]
    return product - scaled + row


def explain_captions(model, image: Tensor, caption_ids: Tensor, targets_per_backward: int = TARGETS_PER_BACKWARD,
                     cells: tuple = None) -> WordMaps:
    """Relevancy, cross-attention and log-probability of every token of B captions of one image.

    `image` (3, H, W) preprocessed; `caption_ids` (B, T) token ids after [CLS], [SEP] included where
    the end should be explained, PAD (0) after a shorter caption. The model must be in eval mode.
    `cells`, `model.image_cells` of the image if already computed, saves running the backbone again.
    """
    cells = image_leaf_cells(model, image, cells)
    with torch.enable_grad(), recorded_attention(model) as record:
        encoded = expand_encoding(model.encode_cells(*cells), caption_ids.shape[0])
        hidden = teacher_forced_hidden(model, encoded, caption_ids)
        logits = caption_logits(model, hidden, caption_ids)
        log_probs = model.mlp.layers[-1](hidden).log_softmax(dim=-1).gather(-1, caption_ids[..., None])[..., 0]
        weights = record["encoder"] + record["decoder_self"] + record["decoder_cross"]
        captions, positions = (caption_ids != PAD_ID).nonzero(as_tuple=True)
        rows = []
        for start in range(0, len(captions), targets_per_backward):
            chunk = slice(start, start + targets_per_backward)
            one_hot = logits.new_zeros(len(captions[chunk]), *logits.shape)
            one_hot[torch.arange(one_hot.shape[0]), captions[chunk], positions[chunk]] = 1
            grads = torch.autograd.grad(logits, weights, one_hot, retain_graph=True, is_grads_batched=True)
            a_bars = [_mean_relu(w.detach(), g, captions[chunk]) for w, g in zip(weights, grads)]
            layers = len(record["encoder"]), len(record["decoder_self"])
            rows.append(relevancy_rows(a_bars[:layers[0]], a_bars[layers[0]: layers[0] + layers[1]],
                                       a_bars[layers[0] + layers[1]:], positions[chunk]))
    grid = cells[3]
    relevancy = torch.zeros(*caption_ids.shape, grid[0] * grid[1], device=image.device)
    if rows:
        relevancy[captions, positions] = torch.cat(rows).float()
    attention = torch.stack([weights.detach().mean(dim=1) for weights in record["decoder_cross"]])
    return WordMaps(relevancy.unflatten(-1, grid), attention.unflatten(-1, grid), log_probs.detach())


def word_relevancy(model, images: Tensor, caption_ids: Tensor, image_index: Tensor = None) -> Tensor:
    """(B, T, h, w): the relevancy map of every token of B teacher-forced captions (see `per_image`);
    token t's map is its row of R_qi."""
    return per_image(lambda image, ids: explain_captions(model, image, ids).relevancy, images, caption_ids,
                     image_index)


def per_image(explain, images: Tensor, caption_ids: Tensor, image_index: Tensor = None) -> Tensor:
    """(B, T, h, w): `explain(image, caption_ids)`, the maps (B', T, h, w) of the captions of one image,
    gathered over the images of a batch.

    `images` (N, 3, H, W) preprocessed, one size; `caption_ids` (B, T) token ids after [CLS] ([SEP]
    included to explain the end, PAD (0) after a shorter caption); `image_index` (B,) the image each
    caption describes (default: caption i describes image i). Padding gets zeros. Each image is
    explained on its own, so a batch gives what its images give alone.
    """
    if image_index is None:
        if len(images) != len(caption_ids):
            raise ValueError(f"{len(images)} images and {len(caption_ids)} captions: pass image_index")
        image_index = torch.arange(len(images))
    image_index = torch.as_tensor(image_index).cpu()
    maps = None
    for image in image_index.unique().tolist():
        rows = (image_index == image).nonzero()[:, 0].to(caption_ids.device)
        image_maps = explain(images[image], caption_ids[rows])
        if maps is None:
            maps = image_maps.new_zeros(len(caption_ids), *image_maps.shape[1:])
        maps[rows] = image_maps
    return maps
