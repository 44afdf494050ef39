"""Training the captioner: the teacher-forced loss step, the vocabulary it trains on, which
parameters train and at which learning rate, and the batch norms of a random backbone set first.

Teacher forcing: the decoder reads [CLS] w1 ... wn and, at each position, is scored by cross-entropy
on the next token (w1 ... wn [SEP]); [PAD] targets are ignored, so the loss is the mean over the
caption tokens of the batch. That is the objective `generate` decodes with: position i predicts the
word after the i-th.
"""
import torch
import torch.nn.functional as F

from data.io import UserError
from models.training.forward import model_inputs
from models.training.runtime import unwrap

from .backbone import CALIBRATION_IMAGES, calibrate_on_images
from .caption_data import CaptionPairs
from .tokenizer import PAD_ID


# The reference (DETR's backbone rule) trains layer2..layer4 of the ResNet; its stem and layer1 stay frozen.
TRAINED_STAGES = ("layer2", "layer3", "layer4")


def caption_step(model, device, amp, from_features: bool = False, output_ids=None):
    """The engine's batch step for `collate_captions` batches: (mean token loss, correct next tokens,
    caption tokens), under `amp`, the run's autocast context. With `from_features` the batches hold a frozen backbone's features. With
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
            inputs = model_inputs(model, inputs, device).masked_fill(pixel_mask[:, None], 0.0)
        ids, caption_mask = ids.to(device, non_blocking=True), caption_mask.to(device, non_blocking=True)
        with amp:
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


def calibrate_random_backbone(model, pairs: CaptionPairs, device, count: int = CALIBRATION_IMAGES) -> None:
    """Set a randomly initialised backbone's frozen batch-norm statistics from the first `count` training
    images (see `catr.backbone.calibrate_batch_norm`), each resized to the model's square side."""
    side = model.image_size
    images = torch.stack([F.interpolate(pairs.image(i)[None].float(), size=(side, side), mode="bilinear",
                                        antialias=True)[0].round().clamp(0, 255).to(torch.uint8)
                          for i in range(min(count, len(pairs.split.paths)))])
    calibrate_on_images(model.backbone[0], images, device, "; start from trained weights with --weights")
