"""LeGrad for each word of a caption against a literal computation: a forward pass and an
autograd.grad per token and per decoder layer."""
import torch

from catr.legrad import explain_legrad
from catr.relevancy import decoder_inputs
from tests.support import random_captions


def literal_legrad(model, features, caption):
    """Each token's map by the definition: for each decoder layer l, a forward pass of the model from
    the backbone's `features` (1, C, h, w), and for each token its logit from layer l's state (final
    decoder norm and head), the gradient of that alone with respect to layer l's cross-attention,
    relu, mean over heads and over all queries; summed over the layers, min-max. (tokens, h*w)."""
    totals = [0] * len(caption)
    for layer in model.transformer.decoder.layers:
        recorded = []
        handle = layer.register_forward_hook(lambda _m, _a, out: recorded.append(out[:2]))
        try:
            model(features, decoder_inputs(caption[None]), None, from_features=True)
        finally:
            handle.remove()
        states, weights = recorded[0]
        logits = model.mlp(model.transformer.decoder.norm(states))[0]
        for position, token in enumerate(caption):
            (grad,) = torch.autograd.grad(logits[position, token], weights, retain_graph=True)
            totals[position] = totals[position] + grad[0].clamp(min=0).mean(dim=0).mean(dim=0)
    return torch.stack([(total - total.min()) / (total.max() - total.min()) for total in totals])


def test_legrad_equals_the_literal_computation_for_every_token(tiny_catr):
    image = torch.randn(3, 48, 64, generator=torch.Generator().manual_seed(1))
    captions = random_captions(4, 6, seed=2)
    maps = explain_legrad(tiny_catr, image, captions)
    assert maps.shape == (2, 6, 3, 4)
    with torch.no_grad():
        features = tiny_catr.backbone[0](image[None], torch.zeros(1, 48, 64, dtype=torch.bool))[0]
    for row, length in enumerate((4, 6)):
        expected = literal_legrad(tiny_catr, features, captions[row, :length])
        torch.testing.assert_close(maps[row, :length].flatten(1), expected, rtol=1e-4, atol=1e-5)
    assert (maps[0, 4:] == 0).all()
