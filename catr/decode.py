"""Captioning by greedy or beam search, fast and as the reference does it, with each word's cross-attention.

The reference (`predict.py`) fills a 128-slot template that starts with [CLS] and, at step i, runs the
whole network and takes the argmax at position i, until [SEP] or 127 steps. Because the decoder's
self-attention is causal and its positions are fixed per slot, the states of positions 0..i depend only
on the words 0..i: `generate` therefore encodes each image once and, at each step, runs the decoder on
the newest word of every live hypothesis only, reusing the self-attention keys and values of the earlier
words (reordered when beam search picks new parents), and the vocabulary head on that word only.
`greedy_decode` is `generate` with one beam for one image. `reference_greedy_decode` keeps the slow
procedure as the ground truth for tests and the benchmark.
"""
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor

from models.training.runtime import torch_threads
from .tokenizer import CLS_ID, SEP_ID

MAX_STEPS = 127  # 128 slots, the first taken by [CLS]


@dataclass
class Beam:
    """A finished caption of beam search."""

    ids: list  # generated word ids, without [CLS] and [SEP]
    ended: bool  # True when it ended with [SEP]
    score: float  # sum of the log-probabilities of its ids, [SEP] included when it ended
    normalized: float  # score / length ** length_penalty, what beam search ranks by


@dataclass
class Decoded:
    """A caption and, for each step, where every decoder layer's heads looked."""

    ids: list  # generated word ids, without [CLS] and [SEP]
    attention: Tensor  # (steps, layers, heads, h, w): the cross-attention row of the query of each step
    ended: bool  # True when the last step produced [SEP]
    score: float  # sum of the log-probabilities of the chosen ids, [SEP] included when it ended
    beams: list = field(default_factory=list)  # every finished `Beam` of the search, best first


@dataclass
class Hypothesis:
    """A caption under construction in beam search."""

    ids: list  # generated word ids, without [SEP]
    score: float  # sum of the log-probabilities of its ids (and of [SEP] once ended)
    ended: bool = False
    rows: list = field(default_factory=list)  # its row in the batch at each step, to collect attention

    @property
    def length(self) -> int:
        """Generated ids, [SEP] included: what the length penalty counts."""
        return len(self.ids) + self.ended


def normalized_score(hypothesis: Hypothesis, length_penalty: float) -> float:
    """score / length ** length_penalty: 0 ranks by the raw sum, larger values favour longer captions."""
    return hypothesis.score / max(hypothesis.length, 1) ** length_penalty


def best_hypothesis(hypotheses: list, length_penalty: float) -> Hypothesis:
    """The hypothesis with the highest normalised score; the earliest among equals."""
    return max(hypotheses, key=lambda hypothesis: normalized_score(hypothesis, length_penalty))


def vocabulary_size(model) -> int:
    return model.mlp.layers[-1].out_features


def search_memory_bytes(model, beam_size: int, batch_size: int, max_steps: int = MAX_STEPS,
                        grid_cells: int = 19 * 19) -> int:
    """An upper estimate of the bytes `generate` holds for a batch: per decoder row (an image's
    hypothesis) every step's cross-attention rows, the self-attention keys and values of its words
    and its copy of the image's keys and values; per image the scores of every extension (beam x
    vocabulary, float64). `grid_cells` is the feature grid of the largest image (19 x 19: a 299-px
    square at output stride 16). Temporaries of the reordering double the per-row share."""
    layers = model.transformer.decoder.layers
    heads, width = layers[0].self_attn.nheads, model.input_proj.out_channels
    per_row = 4 * len(layers) * (max_steps * heads * grid_cells + 2 * max_steps * width + 2 * grid_cells * width)
    per_row += 12 * vocabulary_size(model)  # the logits (float32) and log-probabilities (float64) of its next word
    per_image = 8 * 3 * beam_size * vocabulary_size(model)  # extension scores, their top-k and indices
    return batch_size * (2 * beam_size * per_row + per_image)


def _check_model(model, max_steps: int):
    if model.training:
        raise ValueError("call model.eval() first: dropout would make the caption random")
    if not 1 <= max_steps <= MAX_STEPS:
        raise ValueError(f"max_steps must be in 1..{MAX_STEPS}, got {max_steps}")


def _check_image(image: Tensor):
    if image.dim() != 3:
        raise ValueError(f"expected one (3, H, W) image, got shape {tuple(image.shape)}")


@torch.no_grad()
def generate(model, images: list, beam_size: int = 1, max_steps: int = MAX_STEPS, length_penalty: float = 0.0,
             end_id=SEP_ID, all_beams: bool = False) -> list:
    """Caption preprocessed (3, H, W) images by beam search; one `Decoded` per image, in order.

    Each step extends every live hypothesis by one word; of all extensions of an image's hypotheses,
    the `beam_size` best by score stay live. An extension by `end_id` that ranks among those best is
    kept aside as finished. An image is done when `beam_size` hypotheses have finished, or when no
    live one can overtake the best finished any more (its score only falls; the bound accounts for
    the length penalty), or after `max_steps` steps, when the live hypotheses join the finished ones
    unended. The result is the best by score / length ** `length_penalty`, length counting the
    generated ids and [SEP]. With `beam_size=1` this is greedy search: the first [SEP] ends it.
    With `end_id=None` no id ends a caption: every one runs exactly `max_steps` steps. `all_beams`
    searches on after the best can no longer be overtaken, until `beam_size` hypotheses have finished
    (or `max_steps`), so that `Decoded.beams` lists the runners-up too; the best is the same.

    Images of the same size are decoded together, in one batch, and give the ids they give alone.
    Images of different sizes are grouped by size and each group is decoded as its own batch:
    padding them into one batch would change what the backbone sees at their borders, and so the
    captions.
    """
    _check_model(model, max_steps)
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    for image in images:
        _check_image(image)
    groups = {}
    for index, image in enumerate(images):
        groups.setdefault(tuple(image.shape), []).append(index)
    results = [None] * len(images)
    for indices in groups.values():
        batch = torch.stack([images[index] for index in indices])
        for index, decoded in zip(indices, _beam_search(model, batch, beam_size, max_steps, length_penalty, end_id,
                                                        all_beams)):
            results[index] = decoded
    return results


def _beam_search(model, batch: Tensor, beam_size: int, max_steps: int, length_penalty: float, end_id,
                 all_beams: bool) -> list:
    """`generate` for a (N, 3, H, W) batch of same-size images."""
    encoded = model.encode(batch)
    live = {image: [Hypothesis([], 0.0)] for image in range(len(batch))}  # the active images, in row order
    finished = {image: [] for image in live}
    row_images = list(live)  # the image of each row of the decoder's batch
    memory = encoded
    words = torch.full((len(batch), 1), CLS_ID, device=batch.device)
    past = None  # each decoder layer's self-attention keys and values of the words so far, per row
    step_rows = []  # per step, (rows, layers, heads, h*w): the cross-attention row of each row's query
    with _one_cpu_thread(batch.device):
        for step in range(max_steps):
            hidden, cross_weights, past = model.decode(memory, words, past=past)
            log_probs = model.mlp(hidden[:, -1]).double().log_softmax(dim=-1)
            step_rows.append(torch.stack([weights[:, :, -1] for weights in cross_weights], dim=1))
            first_row = 0
            for image in list(live):
                hypotheses = live[image]
                rows = slice(first_row, first_row + len(hypotheses))
                extended = _extend(hypotheses, first_row, log_probs[rows], beam_size, end_id, finished[image])
                first_row = rows.stop
                if step == max_steps - 1:
                    finished[image].extend(extended)
                if (step == max_steps - 1 or not extended or len(finished[image]) >= beam_size
                        or (not all_beams and _cannot_overtake(finished[image], extended, step, max_steps,
                                                               length_penalty))):
                    del live[image]
                else:
                    live[image] = extended
            if not live:
                break
            parents = [hypothesis.rows[-1] for hypotheses in live.values() for hypothesis in hypotheses]
            if parents != list(range(len(words))):  # reordered, or rows at the end dropped
                keep = torch.tensor(parents, device=batch.device)
                past = [(keys[keep], values[keep]) for keys, values in past]
            images_now = [image for image, hypotheses in live.items() for _ in hypotheses]
            if images_now != row_images:
                row_images = images_now
                memory = _select_images(encoded, row_images)
            words = torch.tensor([[hypothesis.ids[-1]] for hypotheses in live.values() for hypothesis in hypotheses],
                                 device=batch.device)
    results = []
    for image in range(len(batch)):
        best = best_hypothesis(finished[image], length_penalty)
        rows = [step_rows[step][row] for step, row in enumerate(best.rows)]
        # One step can finish several: the list keeps the beam_size best, as a beam of that size would.
        ranked = sorted(finished[image], key=lambda hypothesis: -normalized_score(hypothesis, length_penalty))
        ranked = ranked[:beam_size]
        beams = [Beam(h.ids, h.ended, h.score, normalized_score(h, length_penalty)) for h in ranked]
        results.append(Decoded(best.ids, _stack_rows(rows, encoded.grid), best.ended, best.score, beams))
    return results


def _extend(hypotheses: list, first_row: int, log_probs: Tensor, beam_size: int, end_id, finished: list) -> list:
    """The best `beam_size` live extensions of one image's hypotheses (rows first_row..); appends to
    `finished` the extensions by `end_id` that rank among the best `beam_size`."""
    scores = torch.tensor([hypothesis.score for hypothesis in hypotheses], dtype=log_probs.dtype,
                          device=log_probs.device)
    candidates = (scores[:, None] + log_probs).flatten()
    # Twice the beam: even if up to beam_size of the best end the caption, beam_size stay live.
    top_scores, top_indices = candidates.topk(min(2 * beam_size, candidates.numel()))
    vocab_size = log_probs.shape[-1]
    extended = []
    for rank, (score, index) in enumerate(zip(top_scores.tolist(), top_indices.tolist())):
        parent, word = divmod(index, vocab_size)
        hypothesis = hypotheses[parent]
        rows = hypothesis.rows + [first_row + parent]
        if word == end_id:
            if rank < beam_size:
                finished.append(Hypothesis(hypothesis.ids, score, True, rows))
        elif len(extended) < beam_size:
            extended.append(Hypothesis(hypothesis.ids + [word], score, False, rows))
    return extended


def _cannot_overtake(finished: list, live: list, step: int, max_steps: int, length_penalty: float) -> bool:
    """Whether no live hypothesis can still end above the best finished one.

    A live score only falls (log-probabilities are <= 0), and a caption it ends in has between
    step + 2 and max_steps ids: the best it can reach is its score over one of those lengths' powers.
    """
    if not finished:
        return False
    best_live = max(hypothesis.score for hypothesis in live)
    reachable = max(best_live / (step + 2) ** length_penalty, best_live / max_steps ** length_penalty)
    return max(normalized_score(hypothesis, length_penalty) for hypothesis in finished) >= reachable


def _select_images(encoded, images: list):
    """The encoding with one row per entry of `images` (indices into the encoded batch)."""
    index = torch.tensor(images, device=encoded.padding_mask.device)
    return type(encoded)([(keys[index], values[index]) for keys, values in encoded.memory_kvs],
                         encoded.padding_mask[index], encoded.grid)


@torch.no_grad()
def greedy_decode(model, image: Tensor, max_steps: int = MAX_STEPS, end_id=SEP_ID) -> Decoded:
    """Caption one preprocessed (3, H, W) image by greedy search: `generate` with one beam.

    Step i's attention row is the one of the query at position i, the query that chose word i+1 (or
    [SEP], the end). With `end_id=None` no id stops the search: it runs exactly `max_steps` steps.
    """
    _check_image(image)
    return generate(model, [image], beam_size=1, max_steps=max_steps, end_id=end_id)[0]


@torch.no_grad()
def reference_greedy_decode(model, image: Tensor, max_steps: int = MAX_STEPS, end_id=SEP_ID) -> Decoded:
    """The reference procedure: the whole network over the 128-slot template at every step."""
    _check_model(model, max_steps)
    _check_image(image)
    slots = MAX_STEPS + 1
    caption = torch.zeros(1, slots, dtype=torch.long, device=image.device)
    caption_mask = torch.ones(1, slots, dtype=torch.bool, device=image.device)
    caption[0, 0], caption_mask[0, 0] = CLS_ID, False
    ids, rows = [], []
    ended = False
    score = 0.0
    for i in range(max_steps):
        # model.forward, spelled out to keep the feature grid: backbone, encoder, decoder, head, all redone.
        encoded = model.encode(image[None])
        hidden, cross_weights, _ = model.decode(encoded, caption, caption_mask)
        logits = model.mlp(hidden)[0, i]
        next_id = logits.argmax().item()
        score += logits.double().log_softmax(dim=-1)[next_id].item()
        rows.append(torch.stack([weights[0, :, i] for weights in cross_weights]))
        if next_id == end_id:
            ended = True
            break
        ids.append(next_id)
        caption[0, i + 1], caption_mask[0, i + 1] = next_id, False
    return Decoded(ids, _stack_rows(rows, encoded.grid), ended, score)


@contextmanager
def _one_cpu_thread(device: torch.device):
    """Run the word steps on one CPU thread, then restore the thread count.

    A step is a few hundred small operations, matrix-vector products bound by reading the weights
    (about 100 MB, 60% of it the vocabulary head): a second thread does not make them faster, and
    on a busy machine, waiting for it can cost a scheduler time slice per operation (measured on 2
    cores beside another process: 13 ms a step on one thread, 226 ms on two).
    """
    if device.type != "cpu":
        yield
        return
    with torch_threads(1):
        yield


def _stack_rows(rows: list, grid: tuple) -> Tensor:
    """Per-step (layers, heads, h*w) rows -> (steps, layers, heads, h, w)."""
    return torch.stack(rows).unflatten(-1, grid).cpu()
