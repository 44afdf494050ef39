"""Inputs for the README's layout figures: L_16_imagenet1k at 384 with random weights, and one generated
image (500 x 375, the size of a typical Pets photo). Used by docs/figures/make_figures.sh."""
import argparse

import _repo  # noqa: F401  (the repository on sys.path)
from data.io import atomic_path, make_folder
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from models.checkpoint import model_config, save_checkpoint
from models.vit import random_vit

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("out", help="folder for l16_random.pt (1.2 GB) and pet.jpg")
parser.add_argument("--image_only", action="store_true", help="write pet.jpg only, no checkpoint")
args = parser.parse_args()
out = args.out
make_folder(out)
if not args.image_only:
    torch.manual_seed(0)
    model = random_vit("L_16_imagenet1k", image_size=384, head_std=0.05)
    save_checkpoint(f"{out}/l16_random.pt", model, model_config("L_16_imagenet1k", 384))
rng = np.random.RandomState(1)
y, x = np.mgrid[0:375, 0:500]  # the size of a typical Pets photo
img = Image.fromarray(np.stack([60 + 60 * x / 500, 90 + 40 * y / 375, 70 + 0 * x], -1).astype(np.uint8))
d = ImageDraw.Draw(img)
for _ in range(6):  # clutter
    bx, by = rng.randint(0, 480), rng.randint(0, 360)
    d.rectangle([bx, by, bx + rng.randint(15, 50), by + rng.randint(15, 50)], fill=tuple(rng.randint(40, 200, 3).tolist()))
cx, cy, fur = 250, 190, (230, 220, 200)  # an animal-like shape: body, head, ears, eyes
d.ellipse([cx - 120, cy - 70, cx + 120, cy + 90], fill=fur)
d.ellipse([cx - 60, cy - 150, cx + 60, cy - 40], fill=fur)
d.polygon([(cx - 55, cy - 120), (cx - 35, cy - 190), (cx - 10, cy - 135)], fill=fur)
d.polygon([(cx + 55, cy - 120), (cx + 35, cy - 190), (cx + 10, cy - 135)], fill=fur)
d.ellipse([cx - 30, cy - 110, cx - 15, cy - 95], fill=(20, 20, 20))
d.ellipse([cx + 15, cy - 110, cx + 30, cy - 95], fill=(20, 20, 20))
with atomic_path(f"{out}/pet.jpg") as tmp:
    img.filter(ImageFilter.GaussianBlur(1)).save(tmp, format="JPEG", quality=92)
