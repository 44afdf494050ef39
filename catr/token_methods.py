"""The captioner's gradient map methods, by name: what `p2_vis_caption.py --method` draws and
`scripts/eval_grounding.py` measures beside each decoder layer's cross-attention.

Each explains B teacher-forced captions of one image, (model, image (3, H, W), caption_ids (B, T),
cells=None) -> (B, T, h, w), one map per token (zeros on padding); `token_maps` runs one over a
batch of images.
- relevancy: Chefer, Gur & Wolf's encoder-decoder rules (ICCV 2021), `catr.relevancy`;
- attnlrp: AttnLRP's CP-LRP variant (Achtibat et al., ICML 2024), signed, `catr.attnlrp`;
- legrad: LeGrad over the decoder layers (Bousselham et al., ICCV 2025), in [0, 1], `catr.legrad`.
"""
from torch import Tensor

from .attnlrp import explain_attnlrp
from .legrad import explain_legrad
from .relevancy import explain_captions, per_image


def _relevancy(model, image: Tensor, caption_ids: Tensor, cells: tuple = None) -> Tensor:
    return explain_captions(model, image, caption_ids, cells=cells).relevancy


TOKEN_METHODS = {"relevancy": _relevancy, "attnlrp": explain_attnlrp, "legrad": explain_legrad}

# How a figure's footer names each method.
DESCRIPTIONS = {
    "relevancy": "relevancy (Chefer et al. 2021), all layers, teacher-forced",
    "attnlrp": "AttnLRP, CP-LRP (Achtibat et al. 2024), relevance of the encoder's input cells, teacher-forced",
    "legrad": "LeGrad (Bousselham et al. 2025), all decoder layers' cross-attention, teacher-forced",
}


def token_maps(method: str, model, images: Tensor, caption_ids: Tensor, image_index: Tensor = None) -> Tensor:
    """(B, T, h, w): `method`'s map of every token of B teacher-forced captions; arguments as
    `catr.relevancy.per_image`."""
    explain = TOKEN_METHODS[method]
    return per_image(lambda image, ids: explain(model, image, ids), images, caption_ids, image_index)
