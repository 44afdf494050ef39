"""The captioner's cross-attention heads ranked by importance (Michel, Levy & Neubig 2019, see
`models.explain.heads`): the loss is the caption's negative log-likelihood, teacher-forced, so a
head is important when masking it would make the model's own caption less likely."""
import torch

from catr.relevancy import token_log_probs
from models.explain.heads import gate_importance


def caption_head_importance(model, image: torch.Tensor, caption_ids: torch.Tensor) -> torch.Tensor:
    """(decoder layers, heads) importance of each cross-attention head for one caption of one image.

    `image` (3, H, W) preprocessed; `caption_ids` (T,) the caption's ids after [CLS], [SEP] included
    where it ended. The model must be in eval mode; an empty caption gives zeros."""
    if model.training:
        raise ValueError("call model.eval() first: dropout would make the importance random")
    layers = model.transformer.decoder.layers
    heads = layers[0].multihead_attn.nheads
    if caption_ids.numel() == 0:
        return torch.zeros(len(layers), heads)
    with torch.no_grad():  # the backbone lies below every gate
        cells = model.image_cells(image[None])
    return gate_importance(lambda: -token_log_probs(model, cells, caption_ids[None]).sum(),
                           [layer.multihead_attn.out_proj for layer in layers], heads)
