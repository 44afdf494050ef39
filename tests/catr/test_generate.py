"""catr.generate: beam search and batches against greedy search, full forward passes and exhaustive search."""
import copy
import dataclasses
import itertools

import pytest
import torch

import catr
from catr.backbone import calibrate_batch_norm
from catr.decode import Hypothesis, best_hypothesis


def random_images(count, height=32, width=64, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(3, height, width, generator=generator) for _ in range(count)]


def an_end_id(model, image, step):
    """An id the model emits at `step` when nothing stops it: used as [SEP], the caption ends there."""
    return catr.greedy_decode(model, image, max_steps=step + 1, end_id=None).ids[step]


def recomputed(model, image, decoded, end_id):
    """Score and per-layer cross-attention (steps, layers, heads, h*w) of decoded.ids by one forward pass."""
    caption = torch.tensor([[catr.CLS_ID] + decoded.ids])
    with torch.no_grad():
        logits, attention = model(image[None], caption, torch.zeros_like(caption, dtype=torch.bool),
                                  return_attention=True, average_heads=False)
    log_probs = logits[0].double().log_softmax(dim=-1)
    chosen = decoded.ids + ([end_id] if decoded.ended else [])
    score = sum(log_probs[i, word].item() for i, word in enumerate(chosen))
    rows = torch.stack([weights[0, :, : len(chosen)].transpose(0, 1) for weights in attention], dim=1)
    return score, rows


def test_beam_one_in_a_batch_is_greedy_search(tiny_catr):
    images = random_images(3)
    end_id = an_end_id(tiny_catr, images[0], 2)  # the first image ends early, the others may run to max_steps
    batched = catr.generate(tiny_catr, images, beam_size=1, max_steps=5, end_id=end_id)
    for image, decoded in zip(images, batched):
        alone = catr.greedy_decode(tiny_catr, image, max_steps=5, end_id=end_id)
        reference = catr.reference_greedy_decode(tiny_catr, image, max_steps=5, end_id=end_id)
        assert decoded.ids == alone.ids == reference.ids
        assert decoded.ended == reference.ended
        assert decoded.score == pytest.approx(reference.score, abs=1e-4)
        assert torch.allclose(decoded.attention, reference.attention, atol=1e-6)
    assert batched[0].ended and len(batched[0].ids) == 2


@pytest.mark.parametrize("beam_size", [1, 2])
def test_the_last_image_of_a_batch_may_end_first(tiny_catr, beam_size):
    model = copy.deepcopy(tiny_catr)
    calibrate_batch_norm(model.backbone[0], torch.randn(8, 3, 32, 64, generator=torch.Generator().manual_seed(0)))
    images = random_images(3, seed=7)  # with its batch norm set, the model's words depend on the image
    end_id = an_end_id(model, images[-1], 1)  # only the last image's rows leave the decoder's batch
    batched = catr.generate(model, images, beam_size=beam_size, max_steps=6, end_id=end_id)
    for image, decoded in zip(images, batched):
        assert decoded.ids == catr.generate(model, [image], beam_size=beam_size, max_steps=6, end_id=end_id)[0].ids
    assert len(batched[-1].ids) < min(len(decoded.ids) for decoded in batched[:-1])


def test_beam_one_is_greedy_whatever_the_length_penalty(tiny_catr):
    image = random_images(1)[0]
    end_id = an_end_id(tiny_catr, image, 1)
    for penalty in (0.0, 1.0, 3.0):
        assert catr.generate(tiny_catr, [image], beam_size=1, length_penalty=penalty, end_id=end_id)[0].ids == \
            catr.greedy_decode(tiny_catr, image, end_id=end_id).ids


def test_same_size_images_give_the_beams_they_give_alone_and_mixed_sizes_keep_their_order(tiny_catr):
    images = random_images(2) + random_images(1, height=48, width=32, seed=3) + random_images(1, seed=4)
    end_id = an_end_id(tiny_catr, images[0], 3)
    batched = catr.generate(tiny_catr, images, beam_size=3, max_steps=7, end_id=end_id)
    for image, decoded in zip(images, batched):
        alone = catr.generate(tiny_catr, [image], beam_size=3, max_steps=7, end_id=end_id)[0]
        assert decoded.ids == alone.ids and decoded.ended == alone.ended
        assert decoded.score == pytest.approx(alone.score, abs=1e-6)
        assert torch.allclose(decoded.attention, alone.attention, atol=1e-6)
    assert batched[2].attention.shape[-2:] == (3, 2)  # the 48 x 32 image's own feature grid


def test_all_beams_searches_on_for_the_runners_up_and_keeps_the_best(tiny_catr):
    image = random_images(1)[0]
    end_id = an_end_id(tiny_catr, image, 0)  # the best caption ends at once: nothing can overtake it
    alone = catr.generate(tiny_catr, [image], beam_size=3, max_steps=6, end_id=end_id)[0]
    listed = catr.generate(tiny_catr, [image], beam_size=3, max_steps=6, end_id=end_id, all_beams=True)[0]
    assert len(alone.beams) == 1 and len(listed.beams) == 3
    assert (listed.ids, listed.score, listed.ended) == (alone.ids, alone.score, alone.ended)
    torch.testing.assert_close(listed.attention, alone.attention)
    assert listed.beams[0] == alone.beams[0]
    scores = [beam.normalized for beam in listed.beams]
    assert scores == sorted(scores, reverse=True) and len({tuple(beam.ids) for beam in listed.beams}) == 3


@pytest.mark.parametrize("beam_size", [2, 4])
def test_beam_score_and_attention_are_those_of_a_full_forward_pass(tiny_catr, beam_size):
    images = random_images(2, seed=5)
    end_id = an_end_id(tiny_catr, images[0], 2)
    for image, decoded in zip(images, catr.generate(tiny_catr, images, beam_size=beam_size, max_steps=6, end_id=end_id)):
        score, rows = recomputed(tiny_catr, image, decoded, end_id)
        assert decoded.score == pytest.approx(score, abs=1e-4)
        assert decoded.attention.shape[0] == len(decoded.ids) + decoded.ended
        assert torch.allclose(decoded.attention.flatten(-2), rows, atol=1e-5)


def small_vocabulary_model(words):
    """A tiny captioner that can only say `words`: every other id gets probability 0.

    The vocabulary must still hold [CLS] (101), the first input; the head masks the rest.
    """
    torch.manual_seed(2)
    model = catr.build_model(dataclasses.replace(catr.CONFIGS["tiny"], vocab_size=catr.CLS_ID + 1)).eval()
    head = model.mlp.layers[-1]
    allowed = torch.zeros(head.out_features, dtype=torch.bool)
    allowed[words] = True
    with torch.no_grad():
        head.weight[~allowed] = 0
        head.bias[~allowed] = float("-inf")
    return model


def exhaustive_best(model, image, words, steps, end_id):
    """The highest-scoring caption of at most `steps` ids (ending at end_id, or cut at `steps`)."""
    full = torch.tensor([[catr.CLS_ID, *seq] for seq in itertools.product(words, repeat=steps)])
    with torch.no_grad():
        encoded = model.encode(image[None])
        rows = len(full)
        encoded.memory_kvs = [(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1))
                              for keys, values in encoded.memory_kvs]
        encoded.padding_mask = encoded.padding_mask.expand(rows, -1)
        log_probs = model.mlp(model.decode(encoded, full)[0]).double().log_softmax(dim=-1)
    best = None
    for row, seq in enumerate(full[:, 1:].tolist()):
        for length in range(1, steps + 1):
            prefix = seq[:length]
            if end_id in prefix[:-1] or (length < steps and prefix[-1] != end_id):
                continue  # not a caption: it ended earlier, or it is cut short without ending
            score = sum(log_probs[row, i, word].item() for i, word in enumerate(prefix))
            if best is None or score > best[0] + 1e-9:
                best = (score, [w for w in prefix if w != end_id], prefix[-1] == end_id)
    return best


@pytest.mark.parametrize("end_id", [None, 17])
def test_a_beam_as_wide_as_all_prefixes_finds_the_exhaustive_best(end_id):
    words = [5, 17, 42, 99]
    model = small_vocabulary_model(words)
    images = random_images(2, seed=6)
    found_better_than_greedy = False
    # A beam of |V| keeps every 1-word prefix, so it is exact over 2 steps; over 3 steps exactness
    # needs every 2-word prefix kept, |V|^2 beams (a beam of |V| may drop the best one's prefix).
    for steps, beam_size in ((2, len(words)), (3, len(words) ** 2)):
        for image, decoded in zip(images, catr.generate(model, images, beam_size=beam_size, max_steps=steps,
                                                         end_id=end_id)):
            score, ids, ended = exhaustive_best(model, image, words, steps, end_id)
            assert (decoded.ids, decoded.ended) == (ids, ended)
            assert decoded.score == pytest.approx(score, abs=1e-6)
            greedy = catr.greedy_decode(model, image, max_steps=steps, end_id=end_id)
            found_better_than_greedy |= greedy.score < score - 1e-6
    if end_id is not None:  # random weights barely depend on the words; an end id makes greedy miss the best
        assert found_better_than_greedy


def test_length_penalty_ranks_hand_made_hypotheses():
    short = Hypothesis([7, 8], -2.0, ended=True)  # length 3 with [SEP]
    long = Hypothesis([7, 8, 9, 10, 11], -3.0, ended=True)  # length 6
    cut = Hypothesis([7, 8, 9, 10, 11, 12], -2.9)  # unended: length 6
    assert (short.length, long.length, cut.length) == (3, 6, 6)
    assert best_hypothesis([short, long], 0.0) is short  # raw sums: -2 > -3
    assert best_hypothesis([short, long], 1.0) is long  # per id: -0.5 > -0.67
    assert best_hypothesis([short, long, cut], 1.0) is cut  # -0.483
    assert best_hypothesis([short, long], 0.5) is short  # -1.155 > -1.225


def test_refuses_bad_arguments(tiny_catr):
    image = random_images(1)[0]
    with pytest.raises(ValueError, match="beam_size"):
        catr.generate(tiny_catr, [image], beam_size=0)
    with pytest.raises(ValueError, match="one \\(3, H, W\\) image"):
        catr.generate(tiny_catr, [image[None]])
    with pytest.raises(ValueError, match="max_steps"):
        catr.generate(tiny_catr, [image], max_steps=0)
    assert catr.generate(tiny_catr, []) == []
