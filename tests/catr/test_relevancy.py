"""Word relevancy (Chefer, Gur & Wolf 2021 encoder-decoder rules) against a slow, literal computation."""
import dataclasses

import pytest
import torch

import catr
from catr.relevancy import WordMaps, decoder_inputs, explain_captions, token_log_probs, word_relevancy
from tests.support import random_captions


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return catr.build_model("tiny").eval()


def _literal_norm(relevancy):
    """Equations 8-9 row by row: (R - I) / row sum + I; a row with nothing besides I stays I's row."""
    eye = torch.eye(relevancy.shape[0], dtype=relevancy.dtype)
    out = eye.clone()
    for i, row in enumerate(relevancy - eye):
        if row.sum() > 0:
            out[i] += row / row.sum()
    return out


def _slow_relevancy(model, image, caption, position):
    """One token's map: the full model forward on [CLS] + caption, the gradient of that token's logit
    with respect to every attention by its own autograd.grad, and the rules on full matrices."""
    weights = {"enc": [], "self": [], "cross": []}
    hooks = [layer.self_attn.register_forward_hook(lambda m, a, out: weights["enc"].append(out[1]))
             for layer in model.transformer.encoder.layers]
    for layer in model.transformer.decoder.layers:
        hooks.append(layer.self_attn.register_forward_hook(lambda m, a, out: weights["self"].append(out[1])))
        hooks.append(layer.multihead_attn.register_forward_hook(lambda m, a, out: weights["cross"].append(out[1])))
    try:
        logits = model(image[None], decoder_inputs(caption[None]), None)
    finally:
        for hook in hooks:
            hook.remove()
    target = logits[0, position, caption[position]]
    every = weights["enc"] + weights["self"] + weights["cross"]
    grads = torch.autograd.grad(target, every)
    bars = [(g[0].double() * w[0].double()).clamp(min=0).mean(0) for w, g in zip(every, grads)]
    n_enc, n_dec = len(weights["enc"]), len(weights["self"])
    cells, length = bars[0].shape[0], len(caption)
    r_ii = torch.eye(cells, dtype=torch.float64)
    for a in bars[:n_enc]:
        r_ii = r_ii + a @ r_ii
    r_qq = torch.eye(length, dtype=torch.float64)
    r_qi = torch.zeros(length, cells, dtype=torch.float64)
    for a_self, a_cross in zip(bars[n_enc: n_enc + n_dec], bars[n_enc + n_dec:]):
        r_qq, r_qi = r_qq + a_self @ r_qq, r_qi + a_self @ r_qi
        r_qi = r_qi + _literal_norm(r_qq).T @ a_cross @ _literal_norm(r_ii)
    return r_qi[position].float().detach()


def _relative_error(a, b):
    return float((a - b).abs().max() / b.abs().max())


def test_relevancy_equals_the_literal_rules_one_token_at_a_time(tiny):
    image = torch.randn(3, 64, 80, generator=torch.Generator().manual_seed(1))
    caption = random_captions(6, seed=2)[0]
    maps = word_relevancy(tiny, image[None], caption[None])
    assert maps.shape == (1, 6, 4, 5)
    for position in range(6):
        slow = _slow_relevancy(tiny, image, caption, position)
        assert slow.abs().max() > 0
        assert _relative_error(maps[0, position].flatten(), slow) < 1e-5, position


def test_batched_equals_unbatched(tiny):
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(2, 3, 32, 48, generator=generator)
    captions = random_captions(5, 3, 4, seed=4)
    image_index = torch.tensor([0, 1, 0])
    together = word_relevancy(tiny, images, captions, image_index)
    for row in range(3):
        alone = word_relevancy(tiny, images[image_index[row]][None], captions[row][None])
        assert torch.allclose(together[row], alone[0], rtol=1e-5, atol=1e-7 * float(alone.abs().max()))
    assert (together[1, 3:] == 0).all() and (together[2, 4:] == 0).all()  # padding
    # A small chunk of targets per backward pass changes nothing either.
    chunked = explain_captions(tiny, images[0], captions[[0, 2]], targets_per_backward=2)
    assert torch.allclose(chunked.relevancy, together[[0, 2]], rtol=1e-5, atol=1e-9)


def test_two_words_get_different_maps(tiny):
    image = torch.randn(3, 64, 80, generator=torch.Generator().manual_seed(5))
    maps = word_relevancy(tiny, image[None], random_captions(4, seed=6))[0]
    assert not torch.allclose(maps[0], maps[1], rtol=1e-3)


def test_cross_attention_on_one_cell_gives_relevancy_on_that_cell(tiny, monkeypatch):
    """Every cell but one hidden from the decoder (not the encoder): the word's relevancy peaks there
    and holds at least half the map, the rest what the encoder mixed into that cell."""
    cell = 7
    encode_cells = tiny.encode_cells

    def one_cell(*args, **kwargs):
        encoded = encode_cells(*args, **kwargs)
        hidden = torch.ones_like(encoded.padding_mask)
        hidden[:, cell] = False
        return dataclasses.replace(encoded, padding_mask=hidden)

    monkeypatch.setattr(tiny, "encode_cells", one_cell)
    image = torch.randn(3, 64, 80, generator=torch.Generator().manual_seed(7))
    maps = explain_captions(tiny, image, random_captions(5, seed=8))
    assert torch.allclose(maps.attention[..., :].flatten(-2)[..., cell], torch.ones(3, 1, 5))
    for word in maps.relevancy[0].flatten(1):
        assert word.argmax() == cell
        assert word[cell] >= 0.5 * word.sum() > 0


def test_log_probs_and_attention_are_the_models(tiny):
    image = torch.randn(3, 64, 80, generator=torch.Generator().manual_seed(9))
    captions = random_captions(4, 2, seed=10)
    maps = explain_captions(tiny, image, captions)
    assert isinstance(maps, WordMaps)
    with torch.no_grad():
        logits, attention = tiny(image[None].expand(2, -1, -1, -1), decoder_inputs(captions), None,
                                 return_attention=True)
        cells = tiny.image_cells(image[None])
        removed_none = token_log_probs(tiny, cells, captions)
    expected = logits.log_softmax(-1).gather(-1, captions[..., None])[..., 0]
    assert torch.allclose(maps.log_probs, expected, atol=1e-5)
    assert torch.allclose(removed_none, expected, atol=1e-5)
    assert torch.allclose(maps.attention.flatten(-2), torch.stack(attention), atol=1e-6)


def test_removed_cells_are_seen_by_no_attention(tiny):
    image = torch.randn(3, 64, 80, generator=torch.Generator().manual_seed(11))
    captions = random_captions(4, 4, seed=12)
    removed = torch.zeros(2, 20, dtype=torch.bool)
    removed[1, :10] = True
    with torch.no_grad():
        cells = tiny.image_cells(image[None])
        log_probs = token_log_probs(tiny, cells, captions, removed)
        # Changing the hidden cells' features changes nothing.
        src = cells[0].clone()
        src[:, :10] = torch.randn(1, 10, src.shape[-1])
        changed = token_log_probs(tiny, (src, *cells[1:]), captions, removed)
    assert torch.allclose(log_probs[1], changed[1], atol=1e-5)
    assert not torch.allclose(log_probs[0], changed[0], atol=1e-4)


def test_training_mode_is_refused(tiny):
    tiny.train()
    try:
        with pytest.raises(ValueError, match="eval"):
            explain_captions(tiny, torch.randn(3, 32, 32), random_captions(2))
    finally:
        tiny.eval()
