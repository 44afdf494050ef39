"""Training the captioner: its run's settings and their rules, the teacher-forced loss step, the
optimizer's parameter groups, the features of a frozen backbone computed once, and the validation
captions and their scores.

Teacher forcing: the decoder reads [CLS] w1 ... wn and, at each position, is scored by cross-entropy
on the next token (w1 ... wn [SEP]); [PAD] targets are ignored, so the loss is the mean over the
caption tokens of the batch. That is the objective `generate` decodes with: position i predicts the
word after the i-th.
"""
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from data.datasets import available_memory
from data.io import UserError
from data.transforms import normalize_batch
from models.checkpoint import unwrap
from models.training.distributed import merge_dicts
from models.training.runtime import autocast
from models.training.settings import (TRAINING_RULES, check_settings, finite_number, flag_name, one_of, switch,
                                      text, whole_number)

from .backbone import calibrate_batch_norm
from .caption_data import CaptionPairs
from .captioner import CONFIGS
from .checkpoint import MIN_IMAGE_SIZE, checked_config
from .decode import MAX_STEPS, generate
from .scores import score_captions
from .tokenizer import PAD_ID, load_tokenizer
from .weights import WEIGHT_URLS

MEAN = STD = (0.5, 0.5, 0.5)  # CATR's Normalize


def _data_dir(value, settings):
    return None if isinstance(value, str) and value else "must name the folder of the captions and images"


RUN_RULES = {
    **TRAINING_RULES, "data_dir": _data_dir, "train_split": text(), "val_split": text(),
    "version": one_of(sorted(WEIGHT_URLS)), "weights": text(unset=True), "no_pretrained": switch,
    "config": one_of(sorted(CONFIGS)), "image_size": whole_number(MIN_IMAGE_SIZE, unset=True),
    "freeze_backbone": switch, "cache_features": switch, "closed_vocabulary": switch, "lr_backbone": finite_number(0),
    "score_images": whole_number(0, unset=True), "max_steps": whole_number(1, MAX_STEPS),
}  # the rules of scripts/train_captioner.py's settings


def check_run(settings: dict, name=flag_name) -> dict:
    """The captioner run's settings by RUN_RULES, its recorded CATR configuration (config.json's `catr`)
    and how the settings go together."""
    check_settings(settings, RUN_RULES, name)
    if "catr" in settings:
        checked_config(settings["catr"], name("catr"))
    if settings.get("cache_features") and not settings.get("freeze_backbone"):
        raise UserError(f"{name('cache_features')} needs {name('freeze_backbone')}: a backbone that trains "
                        "changes its features")
    if settings.get("config") != "catr" and not (settings.get("no_pretrained") or settings.get("weights")):
        raise UserError(f"the published weights are of the catr configuration; {name('config')} "
                        f"{settings.get('config')} needs {name('no_pretrained')} or {name('weights')}")
    return settings


# The reference (DETR's backbone rule) trains layer2..layer4 of the ResNet; its stem and layer1 stay frozen.
TRAINED_STAGES = ("layer2", "layer3", "layer4")


def caption_step(model, device, precision="bf16", from_features: bool = False, output_ids=None):
    """The engine's batch step for `collate_captions` batches: (mean token loss, correct next tokens,
    caption tokens). With `from_features` the batches hold a frozen backbone's features. With
    `output_ids`, the open words of a closed vocabulary (`catr.captioner.open_output_ids`), only their
    logits are computed: the same loss, since every other word's probability is 0, and every target
    must be one of them (`check_open_targets`)."""
    if output_ids is not None:  # each vocabulary id's column among the open ones, -1 where it is closed
        position = torch.full((unwrap(model).config.vocab_size,), -1, dtype=torch.long, device=device)
        position[output_ids] = torch.arange(len(output_ids), device=device)

    def step(batch):
        inputs, pixel_mask, ids, caption_mask = batch
        tokens = int((~caption_mask[:, 1:]).sum())
        pixel_mask = pixel_mask.to(device, non_blocking=True)
        if from_features:
            inputs = inputs.to(device, non_blocking=True)
        else:
            # Padding is 0 after normalisation, as in the reference's batches.
            inputs = normalize_batch(inputs, device, MEAN, STD).masked_fill(pixel_mask[:, None], 0.0)
        ids, caption_mask = ids.to(device, non_blocking=True), caption_mask.to(device, non_blocking=True)
        with autocast(device, precision, training=True):
            logits = model(inputs, ids[:, :-1], caption_mask[:, :-1], pixel_mask=pixel_mask,
                           from_features=from_features, output_ids=output_ids)
        targets, ignored = ids[:, 1:], PAD_ID
        if output_ids is not None:
            targets, ignored = position[targets].masked_fill(caption_mask[:, 1:], -1), -1
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=ignored)
        correct = ((logits.detach().argmax(-1) == targets) & ~caption_mask[:, 1:]).sum()
        return loss, correct, tokens
    return step


def caption_vocabulary(pairs: CaptionPairs) -> list:
    """The ids a captioner of these captions must be able to generate: every caption token and [SEP]."""
    return sorted({token for captions in pairs.split.token_ids for ids in captions for token in ids[1:]})


def check_open_targets(pairs: CaptionPairs, output_ids) -> None:
    """Every token of the training captions is open in a closed vocabulary, else one line."""
    closed = sorted(set(caption_vocabulary(pairs)) - set(output_ids.tolist()))
    if closed:
        raise UserError(f"the model's vocabulary is closed to {len(closed)} word pieces of the training captions "
                        f"(ids {', '.join(map(str, closed[:5]))}{', ...' * (len(closed) > 5)}): it was closed on "
                        "other captions; start from open weights")


def set_trainable(model, freeze_backbone: bool) -> None:
    """Freeze the whole backbone, or, as the reference does, its stem and layer1 only."""
    for name, parameter in model.backbone.named_parameters():
        parameter.requires_grad_(not freeze_backbone and any(f".{stage}." in name for stage in TRAINED_STAGES))


def parameter_groups(model, lr: float, lr_backbone: float) -> list:
    """The trainable parameters: the backbone's at `lr_backbone`, the rest at `lr` (the reference's split)."""
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    others = [p for name, p in model.named_parameters() if not name.startswith("backbone.") and p.requires_grad]
    return [{"params": others, "lr": lr}] + ([{"params": backbone, "lr": lr_backbone}] if backbone else [])


CALIBRATION_IMAGES = 64


def calibrate_random_backbone(model, pairs: CaptionPairs, device, count: int = CALIBRATION_IMAGES) -> None:
    """Set a randomly initialised backbone's frozen batch-norm statistics from the first `count` training
    images (see `catr.backbone.calibrate_batch_norm`), each resized to the model's square side."""
    side = model.image_size
    images = torch.stack([F.interpolate(pairs.image(i)[None].float(), size=(side, side), mode="bilinear",
                                        antialias=True)[0].round().clamp(0, 255).to(torch.uint8)
                          for i in range(min(count, len(pairs.split.paths)))])
    calibrate_on_images(model.backbone[0], images, device, "; start from trained weights with --weights")


def calibrate_on_images(backbone, images: torch.Tensor, device, advice: str = "") -> None:
    """`calibrate_batch_norm` on uint8 training images, normalised as CATR's input; fewer than 2 images
    are one line, ending with `advice`."""
    if len(images) < 2:
        raise UserError("training from random weights needs at least 2 training images to set the backbone's "
                        f"batch-norm statistics{advice}")
    calibrate_batch_norm(backbone, normalize_batch(images, device, MEAN, STD))


class BackboneFeatures(Dataset):
    """A CaptionPairs set with each image replaced by the frozen backbone's features, computed once:
    items (features (C, h, w), ids), for `caption_step(from_features=True)`.

    Images of one size are computed together and each image's features alone are kept: padding
    would change what the backbone sees at an image's border. Refused, with the size needed, when
    the features would take more than half the memory available.
    """

    def __init__(self, pairs: CaptionPairs, model, device, batch_size: int = 32, progress: bool = False):
        self.pairs = pairs
        self.features = [None] * len(pairs.split.paths)
        pending = {}  # image shape -> (index, image) pairs waiting for a full batch of that shape
        with torch.no_grad():
            for index in tqdm(range(len(self.features)), desc="backbone features", disable=not progress, leave=False):
                image = pairs.image(index)
                pending.setdefault(tuple(image.shape), []).append((index, image))
                if len(pending[tuple(image.shape)]) == batch_size:
                    self._compute(model, pending.pop(tuple(image.shape)), device)
            for same in pending.values():
                self._compute(model, same, device)

    def _compute(self, model, same: list, device) -> None:
        """The features of same-size (index, image) pairs, as one batch."""
        batch = normalize_batch(torch.stack([image for _, image in same]), device, MEAN, STD)
        no_padding = torch.zeros(batch.shape[0], *batch.shape[-2:], dtype=torch.bool, device=device)
        first = all(f is None for f in self.features)
        for (index, _), features in zip(same, model.backbone[0](batch, no_padding)[0]):
            self.features[index] = features.cpu()
        if first:  # is there room for all?
            self._check_memory(len(self.features))

    def _check_memory(self, count: int) -> None:
        first = next(f for f in self.features if f is not None)
        needed = first.numel() * first.element_size() * count
        available, limit = available_memory()
        if needed > available // 2:
            raise UserError(f"the backbone features of {count} images need about {needed / 1e9:.3g} GB, more "
                            f"than half the {available / 1e9:.3g} GB available ({limit}); train without "
                            "--cache_features")

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, item):
        image, caption = self.pairs.pairs[item]
        return self.features[image], torch.tensor(self.pairs.split.token_ids[image][caption])


def caption_split(model, pairs: CaptionPairs, indices, device, batch_size: int = 32, max_steps: int = 32,
                  progress: bool = False) -> dict:
    """Image id -> greedy caption for the split's images at `indices` (of this process's share)."""
    tokenizer = load_tokenizer()
    captions = {}
    model.eval()
    indices = list(indices)
    for start in tqdm(range(0, len(indices), batch_size), desc="captioning val", disable=not progress, leave=False):
        chunk = indices[start: start + batch_size]
        images = [normalize_batch(pairs.image(i)[None], device, MEAN, STD)[0] for i in chunk]
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
