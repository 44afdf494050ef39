"""LeGrad for each word of a caption: the gradient of each decoder layer's own prediction of the word
with respect to that layer's cross-attention to the image.

LeGrad (Bousselham et al., ICCV 2025) scores every layer by sending its own token through the
model's output head. Here the score of decoder layer l for token t is the token's logit computed
from layer l's state at the query that predicts it (position t, the caption teacher-forced as in
`catr.relevancy`), through the decoder's final LayerNorm and the vocabulary head, as the last
layer's state is. Its gradient with respect to layer l's cross-attention weights (heads, queries,
image cells) is kept where positive, averaged over heads and queries, and summed over the decoder
layers; each token's map is then min-max scaled. The encoder's layers have no score of their own
(their states are image cells, not words), and the cross-attention is where a decoder layer reads
the image, so only the decoder layers count.

Only the predicting query's row of a layer's gradient is non-zero (a state reads no other row of its
own layer's cross-attention, and the head reads each position alone), so the mean over queries is
that row divided by the caption's length, a factor the min-max removes; for the same reason one
backward pass per layer of all the tokens' scores summed gives each token its own gradients.
"""
import torch
from torch import Tensor

from models.explain.maps import min_max
from .relevancy import caption_logits, decoder_inputs, expand_encoding, head_hidden, image_leaf_cells
from .tokenizer import PAD_ID


def explain_legrad(model, image: Tensor, caption_ids: Tensor, cells: tuple = None) -> Tensor:
    """(B, T, h, w): the LeGrad map of every token of B teacher-forced captions of one image, in [0, 1];
    zeros on padding. Arguments as `catr.relevancy.explain_captions`."""
    src, *rest = image_leaf_cells(model, image, cells)
    grid = rest[-1]
    layers = model.transformer.decoder.layers
    recorded = []  # per decoder layer (states (B, T, D), cross-attention weights (B, heads, T, S))
    handles = [layer.register_forward_hook(lambda _m, _args, out: recorded.append(out[:2])) for layer in layers]
    real = caption_ids != PAD_ID
    summed = 0
    try:
        with torch.enable_grad():
            encoded = expand_encoding(model.encode_cells(src, *rest), caption_ids.shape[0])
            model.decode(encoded, decoder_inputs(caption_ids))
            for index, (states, weights) in enumerate(recorded):
                hidden = head_hidden(model, model.transformer.decoder.norm(states))
                score = (caption_logits(model, hidden, caption_ids) * real).sum()
                (gradient,) = torch.autograd.grad(score, weights, retain_graph=index < len(recorded) - 1)
                summed = summed + gradient.clamp(min=0).mean(dim=1)  # (B, T, S): row t is token t's
    finally:
        for handle in handles:
            handle.remove()
    maps = min_max(summed.unflatten(-1, grid))
    return maps * real[..., None, None]

