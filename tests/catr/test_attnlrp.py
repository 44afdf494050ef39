"""AttnLRP for each word of a caption: conservative down to the image cells and the text embeddings,
batched as one caption at a time, the model left as it was."""
import torch

import catr
from catr.attnlrp import CATR_RULES, cell_relevance, explain_attnlrp
from catr.relevancy import decoder_inputs, image_leaf_cells
from catr.token_methods import token_maps
from catr.transformer import MultiheadAttention
from models.explain.attnlrp import cp_lrp_rules
from tests.support import random_captions


def without_biases(seed=0):
    """A tiny CATR in float64 with every bias (Linear, convolution, LayerNorm) zero."""
    torch.manual_seed(seed)
    model = catr.build_model("tiny").double().eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.zero_()
    return model


def test_cells_and_text_embeddings_hold_the_whole_logit_without_biases():
    """Conservation: for every token, the cells' relevance (the map) plus the relevance of the text
    embeddings (word + position, entering the embedding LayerNorm) is the token's logit."""
    model = without_biases()
    image = torch.randn(3, 48, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    captions = random_captions(5, 3, seed=2)
    maps = explain_attnlrp(model, image, captions)
    src, *rest = image_leaf_cells(model, image)
    embedded = []
    hook = model.transformer.embeddings.LayerNorm.register_forward_pre_hook(lambda _m, args: embedded.append(args[0]))
    try:
        with cp_lrp_rules(model, CATR_RULES):
            encoded = model.encode_cells(src.expand(2, -1, -1), *(r.expand(2, *r.shape[1:]) for r in rest[:2]), rest[2])
            logits = model.mlp(model.decode(encoded, decoder_inputs(captions))[0])
    finally:
        hook.remove()
    for row, length in enumerate((5, 3)):
        for position in range(length):
            logit = logits[row, position, captions[row, position]]
            cells_grad, text_grad = torch.autograd.grad(logit, (src, embedded[0]), retain_graph=True)
            text = (embedded[0] * text_grad).sum()
            torch.testing.assert_close(maps[row, position].sum() + text, logit, rtol=1e-4, atol=0)
            torch.testing.assert_close(maps[row, position].flatten(), cell_relevance(model, src, cells_grad)[0])
    assert (maps[1, 3:] == 0).all()


def test_chunked_backward_passes_equal_one_and_the_model_is_restored(tiny_catr):
    images = torch.randn(2, 3, 32, 48, generator=torch.Generator().manual_seed(3))
    captions = random_captions(5, 3, 4, seed=4)
    together = token_maps("attnlrp", tiny_catr, images, captions, torch.tensor([0, 1, 0]))
    with torch.no_grad():
        cells = [tiny_catr.image_cells(image[None]) for image in images]
    chunked = explain_attnlrp(tiny_catr, images[0], captions[[0, 2]], cells=cells[0], targets_per_backward=2)
    torch.testing.assert_close(chunked, together[[0, 2]], rtol=1e-5, atol=1e-9)
    assert not tiny_catr.training
    assert all(type(m) in (MultiheadAttention, torch.nn.LayerNorm) for m in tiny_catr.modules()
               if isinstance(m, (MultiheadAttention, torch.nn.LayerNorm)))
