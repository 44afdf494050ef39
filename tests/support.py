"""What several test files share and is not a fixture: the repository root, the device list, the
fast training flags, a fake huge PNG, readers of run files, the rule for which predictions two
precisions must agree on, random captions for the captioner's word maps and a lock held by another
process. Fixtures live in conftest.py."""
import csv
import struct
import subprocess
import sys
import zlib
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# The scripts are imported by name as `python scripts/x.py` finds them: by their own folder.
for folder in (ROOT, ROOT / "scripts", ROOT / "scripts" / "dev"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

# The same test on the CPU and, where one is present, on a CUDA GPU.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]

# p1_train.py flags for a micro model that learns the synthetic set in seconds.
FAST = ["--model", "micro", "--no_pretrained", "--device", "cpu", "--num_workers", "0", "--no_progress",
        "--optimizer", "adamw", "--lr", "3e-3", "--weight_decay", "0.05", "--batch_size", "32",
        "--augment", "light", "--label_smoothing", "0.1"]


# How far a row's top-two logit gap must exceed bf16's rounding, as a fraction of its largest |logit|,
# for bf16 and fp32 to be bound to pick the same class. bf16 keeps 8 significant bits, so each
# rounding is off by up to 2^-8 relative, and a forward rounds the inputs of every matmul in turn; on
# the random micro ViT of the tests, CPU bf16 autocast moved the gap by up to 5.4 x 2^-8. 0.1 (about
# 26 x 2^-8) leaves 5 times that for the GPU's other kernels, and 21 of 24 of those images clear it.
BF16_TIE_MARGIN = 0.1


def clear_of_bf16_ties(logits: torch.Tensor, margin: float = BF16_TIE_MARGIN) -> torch.Tensor:
    """Which rows of fp32 `logits` (N, classes) have a top class that bf16 rounding cannot change:
    their top-two gap is more than `margin` times the row's largest |logit|."""
    top_two = logits.topk(2, dim=1).values
    return top_two[:, 0] - top_two[:, 1] > margin * logits.abs().amax(dim=1)


def rows(run):
    """metrics.csv of a run folder, one dict per epoch."""
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def huge_png(path, width=14000, height=14000):
    """A 1x1 PNG whose header claims width x height: what PIL checks before decoding a bomb."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = ihdr[4:12]
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    path.write_bytes(bytes(data))
    return path


def png_size(path):
    with Image.open(path) as image:
        image.load()  # a truncated or fake file fails here
        return image.size


def direct_inputs(ckpt, image_path):
    """The model and the eval-transformed image, as the scripts must see them."""
    from data.transforms import eval_transform_from_config
    from models.checkpoint import model_from_checkpoint

    model, config = model_from_checkpoint(ckpt)
    with Image.open(image_path) as image:
        x = eval_transform_from_config(config)(image.convert("RGB"))[None]
    return model, x


def kill_on_image_save(monkeypatch, count: int) -> None:
    """Make the `count`-th PIL save write half a file and raise KeyboardInterrupt, as a kill would."""
    real_save, saved = Image.Image.save, []

    def save(self, fp, *args, **kwargs):
        saved.append(fp)
        if len(saved) == count:
            open(fp, "wb").write(b"\x89PNG half")
            raise KeyboardInterrupt
        real_save(self, fp, *args, **kwargs)
    monkeypatch.setattr(Image.Image, "save", save)


def random_captions(*lengths, seed=0) -> torch.Tensor:
    """Random token ids of captions of the given lengths (the last token [SEP]), PAD after the shorter
    ones: (len(lengths), max(lengths))."""
    from catr.tokenizer import SEP_ID
    generator = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(1000, 30000, (length,), generator=generator)
        ids[row, length - 1] = SEP_ID
    return ids


@contextmanager
def lock_held_elsewhere(path, program: str):
    """Another process holding the lock file `path` as `program` does while it runs. A record lock is the
    process's own: taken again in this process it would not conflict (and closing it would release it)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom data.io import exclusive_lock\n"
         f"with exclusive_lock({str(path)!r}, {program!r}, 'in use', ''):\n"
         "    print('locked', flush=True)\n    time.sleep(60)\n"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait()
