"""Training CATR's ResNet alone, before the captioner: a classifier of each image's annotated labels.

A captioner trained from random weights with its backbone frozen reads what a random ResNet reports,
which is colour far more than shape (docs/captioning.md). Trained first to tell, from the maximum over
its feature grid, which labels an instances file gives each image (its COCO categories and, where the
annotations carry one, the synthetic set's `colour`), the backbone reports what the captions name; the
captioner then trains on it frozen, its features cached.

Multi-label: one logit per label and binary cross-entropy, so an image may hold several shapes, or a
COCO image several categories. Images are resized to a square of the captioner's side: the backbone is
convolutional, and a classifier needs no aspect ratio kept.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import Dataset, RandomSampler, TensorDataset
from tqdm import tqdm

from data.coco_instances import load_instances
from data.datasets import available_memory
from data.images import open_rgb
from data.io import UserError
from data.transforms import MEAN, STD, normalize_batch
from models.training.engine import LossStop, _Totals
from models.training.optim import build_optimizer, build_scheduler
from models.training.loader import make_loader
from models.training.runtime import autocast
from models.training.settings import TRAINING_RULES, image_side, whole_number

from .backbone import CALIBRATION_IMAGES, calibrate_on_images
from .checkpoint import MIN_IMAGE_SIZE

# The rules of scripts/pretrain_backbone.py's flags: the trainers' shared ones, and its own.
PRETRAIN_RULES = {**{key: TRAINING_RULES[key] for key in ("batch_size", "lr", "weight_decay", "seed", "num_workers",
                                                          "precision", "device")},
                  "steps": whole_number(1), "image_size": image_side(MIN_IMAGE_SIZE)}


class LabelledImages(Dataset):
    """Items (uint8 image (3, side, side), labels (len(label_names),) of 0/1) for every image of an
    instances file: its categories' names and its annotations' colours (as "red (colour)").

    `label_names` fixes the labels (a val split takes the training split's; labels it lacks are
    dropped); by default they are every label the file uses, sorted. The images are decoded once and
    kept when they take less than a quarter of the memory available (a small set, drawn from thousands
    of times), else read from their files at every draw.
    """

    def __init__(self, instances_path, img_dir, side: int, label_names=None):
        instances = load_instances(instances_path)
        self.image_ids = sorted(instances.file_names)
        if not self.image_ids:
            raise UserError(f"{instances_path} lists no images")
        labels = {image: instances.present[image] | {f"{colour} (colour)" for colour in instances.colours[image]}
                  for image in self.image_ids}
        self.label_names = list(label_names) if label_names else sorted(set().union(*labels.values()))
        if not self.label_names:
            raise UserError(f"{instances_path} annotates no object in any image: nothing to learn")
        column = {name: index for index, name in enumerate(self.label_names)}
        self.targets = torch.zeros(len(self.image_ids), len(self.label_names))
        for row, image in enumerate(self.image_ids):
            for name in labels[image] & column.keys():
                self.targets[row, column[name]] = 1.0
        self.paths = [img_dir / instances.file_names[image] for image in self.image_ids]
        missing = [path for path in self.paths if not path.is_file()]
        if missing:
            raise UserError(f"{img_dir} lacks {len(missing)} of the {len(self.paths)} images of {instances_path}, "
                            f"such as {missing[0].name}")
        self.side = side
        self.kept = None
        if len(self.paths) * 3 * side * side < available_memory()[0] // 4:
            self.kept = torch.stack([self.image(index) for index in range(len(self.paths))])

    def __len__(self):
        return len(self.paths)

    def image(self, index: int) -> torch.Tensor:
        if self.kept is not None:
            return self.kept[index]
        resized = open_rgb(self.paths[index]).resize((self.side, self.side), Image.BILINEAR)
        return torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1)

    def __getitem__(self, index):
        return self.image(index), self.targets[index]


STEM = 4  # body[:4]: conv1, its batch norm, ReLU and the max pool, kept as initialised and calibrated


def label_logits(backbone: nn.Module, head: nn.Linear, inputs: torch.Tensor, device, precision: str,
                 training: bool = False, from_stem: bool = False) -> torch.Tensor:
    """(B, labels) logits: the head on the maximum of each feature channel over the grid, of uint8 images,
    or, `from_stem`, of the stem's output (the input of layer1)."""
    with autocast(device, precision, training=training):
        if from_stem:
            features = backbone.body[STEM:](inputs.to(device, non_blocking=True))
        else:
            features = backbone.body(normalize_batch(inputs, device, MEAN, STD))
        return head(features.amax(dim=(2, 3))).float()


@torch.no_grad()
def stem_outputs(backbone: nn.Module, images: LabelledImages, device, batch_size: int = 64) -> TensorDataset:
    """(the stem's output, labels) of every image, computed once, on the CPU."""
    outputs = [backbone.body[:STEM](normalize_batch(batch, device, MEAN, STD)).cpu()
               for batch, _ in make_loader(images, batch_size, 0, device)]
    return TensorDataset(torch.cat(outputs), images.targets)


def calibrate_on(backbone: nn.Module, images: LabelledImages, device) -> None:
    """Set a random backbone's frozen batch-norm statistics from the first training images, as
    train_captioner.py does for --no_pretrained."""
    count = min(CALIBRATION_IMAGES, len(images))
    calibrate_on_images(backbone, torch.stack([images.image(index) for index in range(count)]), device)


def train_backbone(backbone: nn.Module, train_set: LabelledImages, steps: int, batch_size: int, lr: float,
                   weight_decay: float, device, precision: str = "bf16", num_workers: int = 0, seed: int = 0,
                   progress: bool = False) -> tuple:
    """Train layer1..layer4 of `backbone` (batch norm frozen) with a new linear head for `steps` AdamW steps
    on batches drawn at random from `train_set`; warm-up over the first 5%, then cosine. The stem stays
    as it is, so its output, half a step's cost, is computed once when the images are kept in memory and
    the outputs take less than a quarter of it. Returns (the head, the mean loss of the last tenth of
    the steps). A NaN or infinite loss stops it as it stops the other trainers (NonFiniteLoss), naming
    the step."""
    head = nn.Linear(backbone.num_channels, len(train_set.label_names)).to(device)
    trained = nn.ModuleList([backbone.body[STEM:], head])
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
    for parameter in trained.parameters():
        parameter.requires_grad_(True)
    backbone.eval()
    trained.train()
    grid = math.ceil(train_set.side / 4)  # the stem's stride
    stem_bytes = len(train_set) * backbone.body.layer1[0].conv1.in_channels * grid * grid * 4
    from_stem = train_set.kept is not None and stem_bytes < available_memory()[0] // 4
    data = stem_outputs(backbone, train_set, device) if from_stem else train_set
    optimizer = build_optimizer(trained, "adamw", lr, weight_decay, 0.0, device)
    scheduler = build_scheduler(optimizer, "cosine", total_steps=steps, warmup_steps=max(1, steps // 20))
    sampler = RandomSampler(data, replacement=True, num_samples=steps * batch_size,
                            generator=torch.Generator().manual_seed(seed))
    losses, totals = [], _Totals(device)
    for step, (inputs, targets) in enumerate(tqdm(make_loader(data, batch_size, num_workers, device, sampler=sampler),
                                total=steps, desc="backbone", disable=not progress, leave=False)):
        if not from_stem:
            with torch.no_grad():
                inputs = backbone.body[:STEM](normalize_batch(inputs, device, MEAN, STD))
        logits = label_logits(backbone, head, inputs, device, precision, training=True, from_stem=True)
        loss = F.binary_cross_entropy_with_logits(logits, targets.to(device, non_blocking=True))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.detach())
        totals.add(step, losses[-1], 0, len(targets))
    totals.read(LossStop(remedies=("a lower --lr", "--precision fp32")))  # no epochs, no --clip_grad
    trained.eval()
    tail = torch.stack(losses[-max(1, steps // 10):])
    return head, float(tail.mean())


@torch.no_grad()
def exact_label_accuracy(backbone: nn.Module, head: nn.Linear, images: LabelledImages, device,
                         precision: str = "bf16", batch_size: int = 64) -> float:
    """The fraction of `images` whose labels (logit > 0) are exactly the annotated ones."""
    backbone.eval()
    right = 0
    for images_batch, targets in make_loader(images, batch_size, 0, device):
        predicted = label_logits(backbone, head, images_batch, device, precision) > 0
        right += int((predicted.cpu() == targets.bool()).all(dim=1).sum())
    return right / len(images)
