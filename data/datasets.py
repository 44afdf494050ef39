"""Image-folder data sets: labeled `{label}_{id}` files for training, any names for inference."""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, DistributedSampler
from tqdm import tqdm

from .images import list_images, open_rgb
from .io import UserError, warn
from .pets import NUM_CLASSES, parse_label

SHARED_MEMORY = "/dev/shm"  # where torch keeps tensors shared between processes on Linux


def host_memory() -> tuple:
    """(bytes, where): the memory the system can still give, and which figure that is."""
    try:
        with open("/proc/meminfo") as info:
            fields = dict(line.split(":", 1) for line in info)
        return int(fields["MemAvailable"].split()[0]) * 1024, "MemAvailable"
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free memory"


def available_memory() -> tuple:
    """(bytes, where): the memory a new shared tensor may take, and which limit that is."""
    limits = [host_memory()]
    if os.path.isdir(SHARED_MEMORY):
        shm = os.statvfs(SHARED_MEMORY)
        limits.append((shm.f_bavail * shm.f_frsize, f"free space in {SHARED_MEMORY}"))
    return min(limits)


def _gigabytes(size: int) -> str:
    return f"{size / 1e9:.3g} GB"


def _header_size(path) -> tuple:
    """(width, height) from the file's header, without decoding; (0, 0) if unreadable."""
    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # reported by the decoding pass, which names the file
        return 0, 0


class DecodedImages:
    """Every image of a folder decoded once, as RGB bytes in one shared-memory tensor.

    DataLoader workers, forked or spawned, see the same memory: they only crop and resize.
    """

    def __init__(self, files, folder):
        self.sizes = [_header_size(f) for f in files]
        self.offsets = np.cumsum([0] + [w * h * 3 for w, h in self.sizes])
        needed = int(self.offsets[-1])
        available, limit = available_memory()
        if needed > available:
            raise UserError(f"--cache_images needs {_gigabytes(needed)} for the {len(files)} images in "
                            f"{folder}, but only {_gigabytes(available)} is available ({limit}); "
                            "run without --cache_images")
        self.data = torch.empty(needed, dtype=torch.uint8).share_memory_()

    def store(self, index, image: Image.Image) -> None:
        # The header's size may be the transpose of the decoded one (EXIF orientation): same bytes.
        self.sizes[index] = image.size
        start, end = self.offsets[index], self.offsets[index + 1]
        self.data[start:end].numpy()[:] = np.asarray(image).reshape(-1)

    def image(self, index) -> Image.Image:
        width, height = self.sizes[index]
        start, end = self.offsets[index], self.offsets[index + 1]
        return Image.fromarray(self.data[start:end].numpy().reshape(height, width, 3))


class ImageFolder(Dataset):
    """The images directly in `folder`, each opened as RGB and transformed.

    Labeled: items are (image, label) with the label parsed from `{label}_{id}`. Unlabeled: items
    are (image, index) and `files[index]` names the file. Every image is decoded once up front, so a
    corrupt or truncated file is named before any work starts (or skipped with `skip_bad_images`).
    With `cache_images` that decoding pass keeps the pixels (DecodedImages), and items are made from
    them instead of the files: the same images, without decoding a JPEG per item.
    """

    def __init__(self, folder, transform=None, labeled: bool = True, num_classes: int = NUM_CLASSES,
                 skip_bad_images: bool = False, check_images: bool = True, progress: bool = False,
                 files=None, cache_images: bool = False, check_threads: int = 1):
        """`files`: these images instead of every image in `folder` (e.g. a sample of a large folder).
        `check_threads`: how many images the up-front pass decodes at once."""
        files = list(files) if files is not None else list_images(folder)
        self.labels = [parse_label(f, num_classes) for f in files] if labeled else None
        self.cache, self.cache_index = None, None
        if cache_images:
            self.cache = DecodedImages(files, folder)
        if check_images or cache_images:
            good = self._decode_all(files, f"{'decoding' if cache_images else 'checking'} {folder}",
                                    skip_bad_images, check_threads, progress)
            if not good:
                raise UserError(f"no readable images in {folder}")
            files = [files[i] for i in good]
            if labeled:
                self.labels = [self.labels[i] for i in good]
            self.cache_index = good
        self.files = files
        self.transform = transform
        self.labeled = labeled

    def __len__(self):
        return len(self.files)

    def __getitem__(self, item):
        """`item` is an index, or (index, seed) to make the random transform repeatable (see
        SeededSampler): the same crop in any worker process, persistent or not, and after a resume."""
        index, seed = item if isinstance(item, tuple) else (item, None)
        image = open_rgb(self.files[index]) if self.cache is None else self.cache.image(self.cache_index[index])
        if self.transform is not None:
            if seed is None:
                image = self.transform(image)
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    image = self.transform(image)
        return image, (self.labels[index] if self.labeled else index)


    def _decode_all(self, files, desc: str, skip_bad_images: bool, threads: int, progress: bool) -> list:
        """The indices of the files that decode. Bad files are reported in file order, whatever order
        the threads finish in: the first as an error, or with `skip_bad_images` each with a warning."""
        # Threads, not processes: PIL decodes without holding the GIL, the cache is written in place
        # and nothing is copied back.
        pool = ThreadPoolExecutor(threads) if threads > 1 else None
        errors = (pool.map if pool else map)(self._decode, range(len(files)), files)
        good = []
        try:
            with tqdm(errors, desc=desc, total=len(files), disable=not progress, leave=False) as bar:
                for index, err in enumerate(bar):
                    if err is None:
                        good.append(index)
                    elif not skip_bad_images:
                        raise UserError(f"{err} (pass --skip_bad_images to leave it out and go on)") from None
                    else:
                        warn(f"{err}; skipped")
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)  # after an error, the files not yet started are not read
        return good

    def _decode(self, index, path) -> UserError | None:
        """Decode one file: None if it decodes (its pixels then go to the cache, when there is one),
        else the error that names it."""
        try:
            image = open_rgb(path)
        except UserError as err:
            return err
        if self.cache is not None:
            self.cache.store(index, image)
        return None


class SeededSampler(DistributedSampler):
    """DistributedSampler that yields (index, seed): each item's augmentation is seeded by the run's
    seed, the epoch and the index, never by the state of a worker process."""

    def __iter__(self):
        for index in super().__iter__():
            yield index, ((self.seed * 1_000_003 + self.epoch) * 1_000_033 + index) % 2**63
