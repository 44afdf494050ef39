"""COCO-format captions for training the captioner: every (image, caption) pair of a split, checked.

A split is an annotations file in the `captions_train2017.json` format and the folder of its images.
Training needs every listed image to be there and to have captions, and every caption to fit the
captioner: such problems are one line naming the file and the entry (`read_caption_split`).
Items are (image, caption ids): the image as uint8 (3, H, W), resized so that its longer side is
`image_size` as CATR's inference does, and the ids from [CLS] to [SEP]. `collate_captions` pads a
batch: images at the bottom and right (with the mask of the padding), captions with [PAD].
"""
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision.transforms.functional import pil_to_tensor

from data.coco_captions import caption_entries
from data.images import open_rgb
from data.io import UserError

from .preprocess import batch_images, resize_longer_side
from .tokenizer import PAD_ID


@dataclass
class CaptionSplit:
    """The images of a split (in file order) and, per image, its captions and their token ids."""

    annotations: Path
    img_dir: Path
    image_ids: list = field(default_factory=list)
    paths: list = field(default_factory=list)  # one per image id
    captions: list = field(default_factory=list)  # per image, its reference captions
    token_ids: list = field(default_factory=list)  # per image, each caption's ids, [CLS] ... [SEP]

    @property
    def references(self) -> dict:
        """Image id -> reference captions, for `catr.scores.score_captions`."""
        return dict(zip(self.image_ids, self.captions))


def read_caption_split(annotations, img_dir, encode) -> CaptionSplit:
    """The split of `annotations` whose images are in `img_dir`; `encode(text)` gives a caption's ids
    from [CLS] to [SEP], and refuses a caption too long for the captioner (UserError), named here with
    its file and entry."""
    images, entries = caption_entries(annotations)
    where = f"annotations file {annotations}"
    img_dir = Path(img_dir)
    if not img_dir.is_dir():
        raise UserError(f"image folder not found: {img_dir}")
    split = CaptionSplit(Path(annotations), img_dir)
    index = {}
    for entry in images:
        if entry["id"] in index:
            raise UserError(f"{where}: image id {entry['id']} is listed twice in 'images'")
        index[entry["id"]] = len(split.image_ids)
        split.image_ids.append(entry["id"])
        split.paths.append(img_dir / entry["file_name"])
        split.captions.append([])
        split.token_ids.append([])
    if not split.image_ids:
        raise UserError(f"{where} lists no images")
    for i, entry in enumerate(entries):
        if entry["image_id"] not in index:
            raise UserError(f"{where}: caption {i} is for image id {entry['image_id']}, which 'images' does not list")
        if not any(character.isalnum() for character in entry["caption"]):  # nothing to learn or score
            raise UserError(f"{where}: caption {i} (image id {entry['image_id']}) {entry['caption']!r} holds no word")
        try:
            ids = encode(entry["caption"])
        except UserError as err:
            raise UserError(f"{where}: caption {i} (image id {entry['image_id']}): {err}") from None
        split.captions[index[entry["image_id"]]].append(entry["caption"])
        split.token_ids[index[entry["image_id"]]].append(ids)
    for image_id, path, captions in zip(split.image_ids, split.paths, split.captions):
        if not captions:
            raise UserError(f"{where}: image id {image_id} ({path.name}) has no captions; give it some or "
                            "leave it out of 'images'")
    missing = [path for path in split.paths if not path.is_file()]
    if missing:
        raise UserError(f"{img_dir} lacks {len(missing)} of the {len(split.paths)} images of {annotations}, "
                        f"such as {missing[0].name}")
    return split


class CaptionPairs(Dataset):
    """Every (image, caption) pair of a split: (uint8 image (3, H, W), ids (L,)).

    `image(i)` is the i-th image of the split, opened and resized; `pairs` lists (image index,
    caption index) in file order.
    """

    def __init__(self, split: CaptionSplit, image_size: int):
        self.split = split
        self.image_size = image_size
        self.pairs = [(image, caption) for image, ids in enumerate(split.token_ids) for caption in range(len(ids))]

    def __len__(self):
        return len(self.pairs)

    def image(self, index: int) -> torch.Tensor:
        return pil_to_tensor(resize_longer_side(open_rgb(self.split.paths[index]), self.image_size))

    def __getitem__(self, item):
        image, caption = self.pairs[item]
        return self.image(image), torch.tensor(self.split.token_ids[image][caption])


def collate_captions(batch: list) -> tuple:
    """(images (B, C, H, W), their padding mask (B, H, W), ids (B, L), caption padding mask (B, L)):
    images (or backbone features) padded at the bottom and right, captions with [PAD]."""
    images, mask = batch_images([image for image, _ in batch])
    length = max(len(ids) for _, ids in batch)
    ids = torch.full((len(batch), length), PAD_ID, dtype=torch.long)
    for row, (_, caption) in zip(ids, batch):
        row[: len(caption)] = caption
    return images, mask, ids, ids == PAD_ID
