"""The captioner's validation captions of a split, greedy, and their BLEU-4 and CIDEr-D, shared by
every process of a run."""
from tqdm import tqdm

from models.training.distributed import merge_dicts
from models.training.forward import model_inputs

from .caption_data import CaptionPairs
from .decode import generate
from .scores import score_captions
from .tokenizer import load_tokenizer


def caption_split(model, pairs: CaptionPairs, indices, device, batch_size: int = 32, max_steps: int = 32,
                  progress: bool = False) -> dict:
    """Image id -> greedy caption for the split's images at `indices` (of this process's share)."""
    tokenizer = load_tokenizer()
    captions = {}
    model.eval()
    indices = list(indices)
    for start in tqdm(range(0, len(indices), batch_size), desc="captioning val", disable=not progress, leave=False):
        chunk = indices[start: start + batch_size]
        images = [model_inputs(model, pairs.image(i)[None], device)[0] for i in chunk]
        for i, decoded in zip(chunk, generate(model, images, max_steps=max_steps)):
            captions[pairs.split.image_ids[i]] = tokenizer.decode(decoded.ids)
    return captions


def validation_scores(model, pairs: CaptionPairs, count: int, rank: int, world_size: int, device,
                      batch_size: int = 32, max_steps: int = 32, progress: bool = False) -> tuple:
    """({"val_bleu4", "val_cider"}, image id -> caption) for the first `count` images of the split,
    captioned by every process in turn (rank, rank + world_size, ...) and scored together."""
    share = range(rank, min(count, len(pairs.split.image_ids)), world_size)
    captions = merge_dicts(caption_split(model, pairs, share, device, batch_size, max_steps, progress))
    scores = score_captions(pairs.split.references, captions)
    return {"val_bleu4": scores["BLEU-4"], "val_cider": scores["CIDEr"]}, captions
