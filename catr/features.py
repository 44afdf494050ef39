"""A frozen backbone's features of every image of a caption split, computed once."""
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from data.datasets import available_memory
from data.io import UserError
from models.training.forward import model_inputs

from .caption_data import CaptionPairs


class BackboneFeatures(Dataset):
    """A CaptionPairs set with each image replaced by the frozen backbone's features, computed once:
    items (features (C, h, w), ids), for `caption_step(from_features=True)`.

    Images of one size are computed together and each image's features alone are kept: padding
    would change what the backbone sees at an image's border. Refused, with the size needed, when
    the features would take more than half the memory available.
    """

    def __init__(self, pairs: CaptionPairs, model, device, batch_size: int = 32, progress: bool = False):
        self.pairs = pairs
        model.eval()
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
        batch = model_inputs(model, torch.stack([image for _, image in same]), device)
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
