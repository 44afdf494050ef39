"""Image-folder data sets: labeled `{label}_{id}` files for training, any names for inference."""
import torch
from torch.utils.data import Dataset, DistributedSampler
from tqdm import tqdm

from .images import list_images, open_rgb
from .io import UserError, warn
from .pets import NUM_CLASSES, parse_label


class ImageFolder(Dataset):
    """The images directly in `folder`, each opened as RGB and transformed.

    Labeled: items are (image, label) with the label parsed from `{label}_{id}`. Unlabeled: items
    are (image, index) and `files[index]` names the file. Every image is decoded once up front, so a
    corrupt or truncated file is named before any work starts (or skipped with `skip_bad_images`).
    """

    def __init__(self, folder, transform=None, labeled: bool = True, num_classes: int = NUM_CLASSES,
                 skip_bad_images: bool = False, check_images: bool = True, progress: bool = False,
                 files=None):
        """`files`: these images instead of every image in `folder` (e.g. a sample of a large folder)."""
        files = list(files) if files is not None else list_images(folder)
        self.labels = [parse_label(f, num_classes) for f in files] if labeled else None
        if check_images:
            with tqdm(files, desc=f"checking {folder}", disable=not progress, leave=False) as bar:
                good = [i for i, f in enumerate(bar) if _readable(f, skip_bad_images)]
            if not good:
                raise UserError(f"no readable images in {folder}")
            files = [files[i] for i in good]
            if labeled:
                self.labels = [self.labels[i] for i in good]
        self.files = files
        self.transform = transform
        self.labeled = labeled

    def __len__(self):
        return len(self.files)

    def __getitem__(self, item):
        """`item` is an index, or (index, seed) to make the random transform repeatable (see
        SeededSampler): the same crop in any worker process, persistent or not, and after a resume."""
        index, seed = item if isinstance(item, tuple) else (item, None)
        image = open_rgb(self.files[index])
        if self.transform is not None:
            if seed is None:
                image = self.transform(image)
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    image = self.transform(image)
        return image, (self.labels[index] if self.labeled else index)


def _readable(path, skip_bad_images: bool) -> bool:
    try:
        open_rgb(path)
        return True
    except UserError as err:
        if not skip_bad_images:
            raise UserError(f"{err} (pass --skip_bad_images to leave it out and go on)") from None
        warn(f"{err}; skipped")
        return False


class SeededSampler(DistributedSampler):
    """DistributedSampler that yields (index, seed): each item's augmentation is seeded by the run's
    seed, the epoch and the index, never by the state of a worker process."""

    def __iter__(self):
        for index in super().__iter__():
            yield index, ((self.seed * 1_000_003 + self.epoch) * 1_000_033 + index) % 2**63
