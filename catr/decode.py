"""Greedy captioning, fast and as the reference does it, with each word's cross-attention.

The reference (`predict.py`) fills a 128-slot template that starts with [CLS] and, at step i, runs the
whole network and takes the argmax at position i, until [SEP] or 127 steps. Because the decoder's
self-attention is causal and its positions are fixed per slot, the states of positions 0..i depend only
on the words 0..i: `greedy_decode` therefore encodes the image once and, at each step, runs the decoder
on the newest word only, reusing the self-attention keys and values of the earlier ones, and the
vocabulary head on that word only.
`reference_greedy_decode` keeps the slow procedure as the ground truth for tests and the benchmark.
"""
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor

from .tokenizer import CLS_ID, SEP_ID

MAX_STEPS = 127  # 128 slots, the first taken by [CLS]


@dataclass
class Decoded:
    """A greedy caption and, for each step, where every decoder layer's heads looked."""

    ids: list  # generated word ids, without [CLS] and [SEP]
    attention: Tensor  # (steps, layers, heads, h, w): the cross-attention row of the query of each step
    ended: bool  # True when the last step produced [SEP]


def _check_call(model, image: Tensor, max_steps: int):
    if model.training:
        raise ValueError("call model.eval() first: dropout would make the caption random")
    if image.dim() != 3:
        raise ValueError(f"expected one (3, H, W) image, got shape {tuple(image.shape)}")
    if not 1 <= max_steps <= MAX_STEPS:
        raise ValueError(f"max_steps must be in 1..{MAX_STEPS}, got {max_steps}")


@torch.no_grad()
def greedy_decode(model, image: Tensor, max_steps: int = MAX_STEPS, end_id=SEP_ID) -> Decoded:
    """Caption one preprocessed (3, H, W) image by greedy search.

    Step i's attention row is the one of the query at position i, the query that chose word i+1 (or
    [SEP], the end). With `end_id=None` no id stops the search: it runs exactly `max_steps` steps.
    """
    _check_call(model, image, max_steps)
    encoded = model.encode(image[None])
    word = torch.tensor([[CLS_ID]], device=image.device)
    past = None  # each decoder layer's self-attention keys and values of the words so far
    ids, rows = [], []
    ended = False
    with _one_cpu_thread(image.device):
        for _ in range(max_steps):
            hidden, cross_weights, past = model.decode(encoded, word, past=past)
            next_id = model.mlp(hidden[:, -1]).argmax(dim=-1)
            rows.append(torch.stack([weights[0, :, -1] for weights in cross_weights]))
            if next_id.item() == end_id:
                ended = True
                break
            ids.append(next_id.item())
            word = next_id[:, None]
    return Decoded(ids, _stack_rows(rows, encoded.grid), ended)


@torch.no_grad()
def reference_greedy_decode(model, image: Tensor, max_steps: int = MAX_STEPS, end_id=SEP_ID) -> Decoded:
    """The reference procedure: the whole network over the 128-slot template at every step."""
    _check_call(model, image, max_steps)
    slots = MAX_STEPS + 1
    caption = torch.zeros(1, slots, dtype=torch.long, device=image.device)
    caption_mask = torch.ones(1, slots, dtype=torch.bool, device=image.device)
    caption[0, 0], caption_mask[0, 0] = CLS_ID, False
    ids, rows = [], []
    ended = False
    for i in range(max_steps):
        # model.forward, spelled out to keep the feature grid: backbone, encoder, decoder, head, all redone.
        encoded = model.encode(image[None])
        hidden, cross_weights, _ = model.decode(encoded, caption, caption_mask)
        next_id = model.mlp(hidden)[0, i].argmax().item()
        rows.append(torch.stack([weights[0, :, i] for weights in cross_weights]))
        if next_id == end_id:
            ended = True
            break
        ids.append(next_id)
        caption[0, i + 1], caption_mask[0, i + 1] = next_id, False
    return Decoded(ids, _stack_rows(rows, encoded.grid), ended)


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
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _stack_rows(rows: list, grid: tuple) -> Tensor:
    """Per-step (layers, heads, h*w) rows -> (steps, layers, heads, h, w)."""
    return torch.stack(rows).unflatten(-1, grid).cpu()
