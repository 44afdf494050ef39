"""AttnLRP (CP-LRP) for each word of a caption: how much each image cell contributes to the word's logit.

The rules are those of `models.explain.attnlrp` (Achtibat et al., ICML 2024, LXT's efficient mode):
every LayerNorm's division by its standard deviation and every softmax attention weight (encoder
self-attention, decoder self- and cross-attention) held constant in the backward pass; the ReLUs of
the feed-forward blocks and of the head need no rule (their gradient already is ReLU(x) / x).
Relevance is input x gradient at the encoder's input cells, the image tokens of this transformer:
the backbone's feature cell after the 1x1 projection, less the projection's bias, so a cell's
relevance is that of its content, W f, as the ViT's patch is W x. The positions reach the network
only through queries and keys, whose gradients the rules stop: they hold no relevance. The ResNet
below is left out: LRP through a convolutional network needs rules of its own (LXT pairs it with
zennit's), and input x gradient there would be plain gradient x input.

Conservation: the cells' relevance plus that of the caption's text embeddings (the words so far and
their positions, at the input of the embedding LayerNorm) equals the word's logit when every bias
is zero. The caption is teacher-forced as in `catr.relevancy`; all tokens of a caption share one
forward pass, and their one-hot targets are back-propagated together (`is_grads_batched`).
"""
import torch
from torch import Tensor, nn

from models.explain.attnlrp import ConservativeLayerNorm, cp_lrp_rules
from .relevancy import TARGETS_PER_BACKWARD, caption_logits, expand_encoding, image_leaf_cells, teacher_forced_hidden
from .tokenizer import PAD_ID
from .transformer import MultiheadAttention


class ConstantWeightAttention(MultiheadAttention):
    """CATR's attention with its softmax weights computed without gradient."""

    def attention_weights(self, query: Tensor, keys: Tensor, ignore: Tensor = None) -> Tensor:
        with torch.no_grad():
            return super().attention_weights(query, keys, ignore)


CATR_RULES = {MultiheadAttention: ConstantWeightAttention, nn.LayerNorm: ConservativeLayerNorm}


@torch.no_grad()
def cell_relevance(model, cells: Tensor, gradient: Tensor) -> Tensor:
    """(..., h*w) relevance of the cells' content: (cells - projection bias) . gradient per cell."""
    return ((cells - model.input_proj.bias) * gradient).sum(dim=-1)


def explain_attnlrp(model, image: Tensor, caption_ids: Tensor, cells: tuple = None,
                    targets_per_backward: int = TARGETS_PER_BACKWARD) -> Tensor:
    """(B, T, h, w): the AttnLRP map of every token of B teacher-forced captions of one image, signed;
    zeros on padding. Arguments as `catr.relevancy.explain_captions`."""
    src, *rest = image_leaf_cells(model, image, cells)
    grid = rest[-1]
    captions, positions = (caption_ids != PAD_ID).nonzero(as_tuple=True)
    maps = src.new_zeros(*caption_ids.shape, grid[0] * grid[1])
    with torch.enable_grad(), cp_lrp_rules(model, CATR_RULES):
        encoded = expand_encoding(model.encode_cells(src, *rest), caption_ids.shape[0])
        logits = caption_logits(model, teacher_forced_hidden(model, encoded, caption_ids), caption_ids)
        for start in range(0, len(captions), targets_per_backward):
            chunk = slice(start, start + targets_per_backward)
            one_hot = logits.new_zeros(len(captions[chunk]), *logits.shape)
            one_hot[torch.arange(one_hot.shape[0]), captions[chunk], positions[chunk]] = 1
            (gradient,) = torch.autograd.grad(logits, src, one_hot, retain_graph=True, is_grads_batched=True)
            maps[captions[chunk], positions[chunk]] = cell_relevance(model, src, gradient[:, 0])
    return maps.unflatten(-1, grid)

